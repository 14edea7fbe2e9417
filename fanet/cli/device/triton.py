"""fanet-triton: add an exported ONNX or a built engine to a Triton Inference Server model
repository (Python 3.6 compatible: it reads the sidecar or the engine's record alone)."""

import argparse
import logging
import os
from typing import List, Optional

from fanet.cli.common import new_parser, positive_int, run_command
from fanet.core.errors import ConfigError

PROG = "fanet-triton"
logger = logging.getLogger("fanet.cli.device.triton")


def build_parser() -> argparse.ArgumentParser:
    from fanet.serving.triton import KINDS

    parser = new_parser(
        PROG,
        "Write a Triton model repository entry for a FANet graph or engine: config.pbtxt with "
        "the sidecar's tensor names, shapes and types, dynamic batching for --max-batch "
        "exports, a sequence batcher with implicit state for temporal ones, and instance groups.",
        [
            "fanet-triton --onnx out/fanet18_512x1024.onnx -o models/",
            "fanet-triton --engine fanet18_512x1024_fp16.engine -o models/ --instances 2",
            "fanet-triton --onnx out/fanet18_512x1024_t2.onnx -o models/ --name fanet_video",
            "tritonserver --model-repository models/       # then serve it",
        ],
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--onnx", help="an exported ONNX (served by onnxruntime_onnx)")
    model.add_argument("--engine", help="a built TensorRT engine (served by tensorrt_plan)")
    parser.add_argument("-o", "--repository", required=True, help="the model repository folder")
    parser.add_argument("--name", help="the model's name (default: the file's stem)")
    parser.add_argument("--instances", type=positive_int, default=1, help="copies run side by side")
    parser.add_argument("--kind", choices=KINDS, default="gpu", help="where they run (gpu)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-repository folder, or replace a model",
    )
    return parser


def _main(args: argparse.Namespace) -> int:
    from fanet.core.artefact_set import ArtefactSet, variant_of
    from fanet.runtime.registry import sidecar_for
    from fanet.serving.triton import Placement, write_model

    path = args.onnx or args.engine
    if args.engine and not args.engine.lower().endswith((".engine", ".plan", ".trt")):
        raise ConfigError("--engine takes a .engine, .plan or .trt file, got {}".format(path))
    if args.onnx and not args.onnx.lower().endswith(".onnx"):
        raise ConfigError("--onnx takes an .onnx file, got {}".format(path))
    if not os.path.isfile(path):
        raise ConfigError("{} not found: {}".format("ONNX file" if args.onnx else "engine", path))
    if os.path.getsize(path) == 0:
        raise ConfigError("{} is empty: not a model".format(path))
    if args.onnx:
        ArtefactSet.of(path).check(variant_of(path))
    placement = Placement(args.name, args.instances, args.kind)
    folder = write_model(args.repository, path, sidecar_for(path), placement, args.force)
    print(folder)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_command(PROG, build_parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
