"""fanet-export: checkpoint -> ONNX (FP32, FP16-typed, INT8 Q/DQ) with sidecars.

PyTorch and onnx are imported inside the functions ``run_command`` calls, so that a
Ctrl-C or SIGTERM while they load (seconds) ends the command cleanly too.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from typing import TYPE_CHECKING

from fanet.cli.common import (
    frame_window,
    new_parser,
    parse_resolution,
    positive_int,
    run_command,
)
from fanet.core import strict_json
from fanet.core.errors import ConfigError

if TYPE_CHECKING:
    from fanet.export.pipeline import ExportConfig, ExportedFile


PROG = "fanet-export"


def build_parser() -> argparse.ArgumentParser:
    from fanet.conformance.rules import KNOWN_VERSIONS
    from fanet.export.int8 import CALIBRATION_METHODS
    from fanet.export.onnx_export import OUTPUT_KINDS, SUPPORTED_OPSETS
    from fanet.model import list_models
    from fanet.model.temporal import REDUCTIONS

    parser = new_parser(
        PROG,
        "Export a FANet checkpoint to ONNX for TensorRT 8.2-11 and ONNX Runtime: FP32 always, "
        "an FP16-typed graph with --fp16 (attention kept in FP32), an explicit INT8 Q/DQ graph "
        "calibrated on real images with --int8. Each graph is checked, run by ONNX Runtime, "
        "compared with its reference, and described in a JSON sidecar.",
        [
            "fanet-export --weights fanet18.pth --fp16",
            "fanet-export --weights fanet18.pth --int8 --calib-data /data/cityscapes",
            "fanet-export --weights fanet18.pth --opset 13 --res 512x1024   # Jetson Nano, TRT 8.2",
            "fanet-export --weights fanet34.pkl --dynamic --output labels --full-res",
            "fanet-export --weights fanet18.pth --int8 --calib-data D --target-trt 10.3  # Orin",
            "fanet-export --weights fanet18.pth --int8 --calib-data D --int8-budget 0.5",
            "fanet-export --weights fanet18.pth --int8 --calib-data D --res 1024x2048 "
            "--int8-float /net/clslayer/conv_out/Conv   # a float set found at 512x1024",
            "fanet-export --random-weights --res 1024x2048 --fp16         # speed tests only",
            "fanet-export --weights fanet18.pth --temporal 2 --fp16     # video: 2-frame attention",
            "fanet-export --weights fanet18.pth --fp16 --build-engines  # engines for this GPU too",
        ],
    )
    model = parser.add_argument_group("model")
    model.add_argument("--weights", metavar="PATH", help="checkpoint (.pth/.pt/.pkl)")
    model.add_argument(
        "--random-weights",
        action="store_true",
        help="export untrained weights (speed tests only; noted in the sidecar)",
    )
    model.add_argument("--arch", choices=list_models(), help="override the checkpoint's")
    model.add_argument("--num-classes", type=positive_int, help="override the checkpoint's")
    graph = parser.add_argument_group("graph")
    shape = graph.add_mutually_exclusive_group()
    shape.add_argument(
        "--res",
        type=parse_resolution,
        default=(512, 1024),
        metavar="HxW",
        help="input resolution (default 512x1024)",
    )
    shape.add_argument("--dynamic", action="store_true", help="dynamic height and width")
    graph.add_argument(
        "--opset",
        type=int,
        default=17,
        choices=list(SUPPORTED_OPSETS),
        help="ONNX opset (default 17; 13 for TensorRT 8.2 on the Jetson Nano)",
    )
    graph.add_argument(
        "--output",
        choices=OUTPUT_KINDS,
        default="logits",
        help="logits at 1/8 (default) or int32 labels (ArgMax in the graph)",
    )
    graph.add_argument(
        "--full-res",
        action="store_true",
        help="with --output labels: labels at the input resolution",
    )
    graph.add_argument(
        "--target-trt",
        action="append",
        type=_tensorrt_version,
        metavar="X.Y",
        help="TensorRT version every graph must conform to (repeatable; default: every known "
        "version the opset serves: {})".format(", ".join("%d.%d" % v for v in KNOWN_VERSIONS)),
    )
    graph.add_argument(
        "--max-batch",
        type=int,
        default=1,
        metavar="N",
        help="a dynamic batch axis up to N (serving several streams, Triton's dynamic "
        "batching; default 1: fixed batch of one)",
    )
    graph.add_argument(
        "--triton-repo",
        metavar="DIR",
        help="also add the FP32 graph to this Triton model repository (config.pbtxt)",
    )
    graph.add_argument(
        "--build-engines",
        action="store_true",
        help="also build a TensorRT engine of each exported precision here (needs TensorRT "
        "and the GPU the engines will run on; else run fanet-build on the device)",
    )
    temporal = parser.add_argument_group("video (spatial-temporal attention, paper Sec. III-D)")
    temporal.add_argument(
        "--temporal",
        type=frame_window,
        default=1,
        metavar="T",
        help="attend over the last T frames: the graph carries each attention's k^T v of "
        "T-1 earlier frames as FP32 state inputs/outputs (default 1: single frame)",
    )
    temporal.add_argument(
        "--temporal-reduce",
        choices=REDUCTIONS,
        default="mean",
        help="mean over the frames held (default: the scale single-frame weights were trained "
        "with) or their sum (the paper's Eq. 6)",
    )
    precision = parser.add_argument_group("precision")
    precision.add_argument("--fp16", action="store_true", help="also write an FP16-typed graph")
    precision.add_argument(
        "--fp16-io",
        action="store_true",
        help="FP16 input/output tensors in the FP16 graph (default FP32)",
    )
    precision.add_argument("--int8", action="store_true", help="also write an INT8 Q/DQ graph")
    calibration = parser.add_argument_group("INT8 calibration")
    calibration.add_argument(
        "--calib-data", metavar="PATH", help="Cityscapes root, folder of images, or video file"
    )
    calibration.add_argument("--calib-split", default="train", help="Cityscapes split (train)")
    calibration.add_argument(
        "--calib-count", type=positive_int, default=500, help="number of crops (default 500)"
    )
    calibration.add_argument(
        "--calib-method",
        choices=CALIBRATION_METHODS + ("auto",),
        default="minmax",
        help="activation range estimator (default minmax); auto: each from one pass over the "
        "crops, the one whose worst INT8 form scores the best mIoU on the --eval-data kept",
    )
    calibration.add_argument(
        "--calib-cache", metavar="PATH", help="range cache (default <name>_int8.calib.json)"
    )
    calibration.add_argument("--seed", type=int, default=0, help="crop sampling seed (0)")
    budget = parser.add_argument_group("INT8 accuracy budget")
    budget.add_argument(
        "--int8-budget",
        type=_budget,
        metavar="POINTS",
        help="the most mIoU points each INT8 form may lose against FP32: groups whose "
        "quantization costs most stay float until each is within it; prints what each "
        "group costs",
    )
    budget.add_argument(
        "--int8-float",
        action="append",
        default=[],
        metavar="NODE",
        help="keep this quantization group (an ONNX node name from an --int8-budget report or "
        "sidecar's float_groups) float in every INT8 form, without judging; repeatable",
    )
    budget.add_argument(
        "--eval-data",
        metavar="PATH",
        help="images INT8 is judged on: a Cityscapes root (its labels are the reference) or "
        "images or a video (the FP32 graph's labels are); default: the calibration images "
        "calibration did not use",
    )
    budget.add_argument("--eval-split", default="val", help="Cityscapes split (val)")
    budget.add_argument(
        "--eval-count", type=positive_int, default=16, help="images judged on (default 16)"
    )
    files = parser.add_argument_group("output files")
    files.add_argument("-o", "--output-dir", default=".", help="folder (default .)")
    files.add_argument("--name", help="file stem (default <arch>_<HxW>)")
    files.add_argument(
        "--force", action="store_true", help="replace files even where they are read-only"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _budget(text: str) -> float:
    try:
        points = float(text)
    except ValueError:
        points = math.nan
    if not math.isfinite(points) or points < 0:
        raise argparse.ArgumentTypeError(f"must be mIoU points >= 0 (0.5, 1), got {text!r}")
    return points


def _tensorrt_version(text: str) -> tuple[int, int]:
    from fanet.runtime.trt.versions import parse_version

    if not re.match(r"^\s*\d+\.\d+(\.\d+)*\s*$", text):
        raise argparse.ArgumentTypeError(
            f"TensorRT version must look like 8.6 or 10.3, got {text!r}"
        )
    return parse_version(text)


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    from fanet.export.pipeline import ExportConfig

    return ExportConfig(
        weights=args.weights,
        random_weights=args.random_weights,
        arch=args.arch,
        num_classes=args.num_classes,
        size=None if args.dynamic else args.res,
        opset=args.opset,
        output=args.output,
        full_res=args.full_res,
        fp16=args.fp16,
        fp16_io=args.fp16_io,
        int8=args.int8,
        calib_data=args.calib_data,
        calib_split=args.calib_split,
        calib_count=args.calib_count,
        calib_method=args.calib_method,
        calib_cache=args.calib_cache,
        int8_budget=args.int8_budget,
        int8_float=tuple(dict.fromkeys(args.int8_float)),
        eval_data=args.eval_data,
        eval_split=args.eval_split,
        eval_count=args.eval_count,
        seed=args.seed,
        output_dir=args.output_dir,
        name=args.name,
        target_trt=tuple(args.target_trt or ()),
        force=args.force,
        temporal=args.temporal,
        temporal_reduce=args.temporal_reduce,
        max_batch=args.max_batch,
    )


def _print_table(files: list[ExportedFile]) -> None:
    print(f"{'graph':<16}  {'argmax agreement':>16}  {'max rel. error':>14}  file")
    for exported in files:
        agreement = exported.agreement
        print(
            f"{exported.variant:<16}  {agreement.get('argmax_agreement', float('nan')):16.4%}  "
            f"{agreement.get('max_rel', float('nan')):14.2e}  {exported.path}"
        )
    print("agreement: FP32 against PyTorch, FP16/INT8 against the FP32 graph (ONNX Runtime, CPU)")


def _build_commands(files: list[ExportedFile]) -> str:
    """The fanet-build commands that make an engine of each exported precision."""
    precisions = {f.precision for f in files}
    commands = [f"  fanet-build {files[0].path}"]
    commands += [
        f"  fanet-build {files[0].path} --{p}" for p in ("fp16", "int8") if p in precisions
    ]
    return "\n".join(commands)


def _check_engines_buildable() -> None:
    from fanet.runtime.trt.versions import installed_tensorrt_version

    if installed_tensorrt_version() is None:
        raise ConfigError(
            "--build-engines needs TensorRT here: install it, or run fanet-build on the device"
        )


def _main(args: argparse.Namespace) -> int:
    from fanet.core.sidecar import read_sidecar
    from fanet.export.int8_budget import report_table
    from fanet.export.pipeline import run_export
    from fanet.serving.triton import check_repository, write_model

    if args.triton_repo:
        check_repository(args.triton_repo, args.force)  # before minutes of work
    if args.build_engines:
        _check_engines_buildable()
    files = run_export(config_from_args(args))
    if args.triton_repo:
        fp32 = files[0].path
        folder = write_model(args.triton_repo, fp32, read_sidecar(fp32), force=args.force)
        print(f"Triton model: {folder}", file=sys.stderr)
    if args.json:
        print(strict_json.dumps([vars(f) for f in files], indent=2))
    else:
        _print_table(files)
        for report in (f.report for f in files if f.report):
            print("\n" + report_table(report))
    if args.build_engines:
        from fanet.runtime.trt.builder import build_for_exports

        for engine in build_for_exports(files[0].path):
            print(f"engine: {engine}", file=sys.stderr)
    else:
        print(
            "\nEngines are built on the device that runs them:\n" + _build_commands(files),
            file=sys.stderr,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, build_parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
