"""fanet-build: ONNX -> TensorRT engine on the device that runs it (Python 3.6 compatible)."""

import argparse
import os
from typing import List, Optional

from fanet.cli.common import new_parser, parse_resolution, positive_int, run_command
from fanet.core.errors import ConfigError

PROG = "fanet-build"


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        PROG,
        "Build a TensorRT engine from an exported FANet ONNX, for this GPU and this TensorRT "
        "(8.2 to 11). Picks the right ONNX variant and builder settings: precision flags on "
        "TensorRT 8.x-10.x, FP16/INT8-typed graphs on 11.x. Writes X.engine and X.engine.json "
        "(TensorRT version, GPU, compute capability, precision, shapes, ONNX hash).",
        [
            "fanet-build fanet18_512x1024.onnx --fp16",
            "fanet-build fanet18_512x1024.onnx --int8            # uses fanet18_512x1024_int8.onnx",
            "fanet-build fanet18_512x1024.onnx --fp16 --workspace 256 --timing-cache trt.cache",
            "fanet-build fanet18_dynamic.onnx --fp16 --min 256x512 --opt 512x1024 --max 1024x2048",
            "fanet-build fanet18_512x1024.onnx --int8 --implicit-int8   # TensorRT 8.x-10.x",
        ],
    )
    parser.add_argument("onnx", help="exported FP32 ONNX (its _fp16/_int8 siblings are found)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="FP16 engine")
    precision.add_argument("--int8", action="store_true", help="INT8 engine")
    parser.add_argument(
        "--implicit-int8",
        action="store_true",
        help="INT8 via IInt8EntropyCalibrator2 and the exported cache (8.x-10.x)",
    )
    parser.add_argument(
        "-o", "--output", help="engine path (default <onnx stem>_<precision>.engine)"
    )
    parser.add_argument(
        "--workspace",
        type=positive_int,
        metavar="MIB",
        help="builder workspace in MiB (default: 256 on Jetson, TensorRT's elsewhere)",
    )
    parser.add_argument(
        "--timing-cache",
        metavar="PATH",
        help="read this timing cache and merge what the build learns into it (locked)",
    )
    parser.add_argument(
        "--dla", type=int, metavar="N", help="build for DLA core N (Jetson Xavier/Orin)"
    )
    for name in ("min", "opt", "max"):
        parser.add_argument(
            "--" + name,
            type=parse_resolution,
            metavar="HxW",
            help="{} input size of a dynamic ONNX".format(name),
        )
    parser.add_argument(
        "--force", action="store_true", help="replace the engine even where it is read-only"
    )
    return parser


def _main(args: argparse.Namespace) -> int:
    from fanet.runtime.options import BuildOptions
    from fanet.runtime.registry import TENSORRT_NEEDS, load_module
    from fanet.runtime.trt.versions import require_tensorrt

    if not os.path.isfile(args.onnx):
        raise ConfigError("ONNX file not found: {}".format(args.onnx))
    require_tensorrt()
    builder = load_module("fanet.runtime.trt.builder", "the TensorRT builder", TENSORRT_NEEDS)
    profile = None
    sizes = (args.min, args.opt, args.max)
    if any(sizes):
        if not all(sizes):
            raise ConfigError("--min, --opt and --max go together")
        profile = sizes
    precision = "fp16" if args.fp16 else "int8" if args.int8 else "fp32"
    options = BuildOptions(
        workspace_mib=args.workspace,
        timing_cache=args.timing_cache,
        dla_core=args.dla,
        profile=profile,
        implicit_int8=args.implicit_int8,
        force=args.force,
    )
    path = builder.build_engine(args.onnx, precision, args.output, options)
    print(path)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_command(PROG, build_parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
