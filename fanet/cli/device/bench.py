"""fanet-trt-bench: per-resolution FPS of FANet, honestly measured, on every backend.

Python 3.6 compatible: on a Jetson, ``fanet-trt-bench --engine X.engine`` or ``--onnx``
needs only numpy, OpenCV, TensorRT and cuda-python/pycuda. ``--weights`` (or no model)
exports on the fly and needs the host side (PyTorch, onnx). The runtime is imported
inside the functions ``run_command`` calls, so a signal while it loads is handled too.
"""

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING, List, Optional, Tuple

from fanet.cli.common import (
    DEVICE_HELP,
    EXIT_INTERRUPTED,
    frame_window,
    new_parser,
    non_negative_seconds,
    parse_resolution,
    positive_int,
    positive_seconds,
    run_command,
    warn_if_oversubscribed,
)
from fanet.core.errors import ConfigError, require
from fanet.core.files import check_replaceable

if TYPE_CHECKING:
    from fanet.bench.plan import BenchRequest
    from fanet.bench.report import BenchReport

PROG = "fanet-trt-bench"

logger = logging.getLogger("fanet.cli.device.bench")

PAPER_RESOLUTIONS = [(256, 512), (512, 512), (512, 1024), (1024, 1024), (1024, 2048)]


def resolution_arg(text: str) -> List[Tuple[int, int]]:
    return list(PAPER_RESOLUTIONS) if text == "paper" else [parse_resolution(text)]


def build_parser() -> argparse.ArgumentParser:
    from fanet.bench.measure import METRICS
    from fanet.bench.plan import BenchRequest
    from fanet.runtime.registry import BACKEND_NAMES
    from fanet.runtime.trt.versions import PRECISIONS

    parser = new_parser(
        PROG,
        "Measure FANet FPS per resolution on TensorRT, ONNX Runtime or PyTorch: GPU compute, "
        "host latency (with copies) and the full uint8-image-to-labels pipeline, with median, "
        "mean, p90, p99, min, max and throughput. Prints a table in the paper's layout.",
        [
            "fanet-trt-bench --res 512x1024          # ONNX exported here, best backend",
            "fanet-trt-bench --engine fanet18_512x1024_fp16.engine --res 512x1024",
            "fanet-trt-bench --onnx fanet18_512x1024.onnx --backend tensorrt --precision fp16",
            "fanet-trt-bench --weights fanet18.pth --res paper --backend onnxruntime "
            "--precision fp32 --precision int8 --torch-eager --markdown",
            "fanet-trt-bench --weights fanet18.pth --backend torch --device cuda --precision fp16 "
            "--channels-last --cuda-graph --res paper --json --plot fps.png",
            "fanet-trt-bench --res 512x1024 --temporal 1 --temporal 2 --temporal 4 "
            "--temporal 8   # per-frame time of temporal attention (Table VIII)",
            "fanet-trt-bench --onnx fanet18_512x1024.onnx --precision fp32 --precision int8 "
            "--data /data/cityscapes --data-limit 100   # mIoU beside FPS",
        ],
    )
    model = parser.add_argument_group("model (default: exported ONNX here, else random weights)")
    source = model.add_mutually_exclusive_group()
    source.add_argument("--onnx", help="exported FP32 ONNX (its _fp16/_int8 siblings are used)")
    source.add_argument("--engine", help="a built TensorRT engine")
    source.add_argument("--weights", help="checkpoint: exported per resolution on the fly")
    model.add_argument("--arch", help="architecture for --weights or random weights")
    what = parser.add_argument_group("what to measure")
    what.add_argument(
        "--res",
        action="append",
        type=resolution_arg,
        metavar="HxW|paper",
        help="resolution, repeatable; 'paper' = Table V's five (default: a fixed-size model's "
        "own, else 512x1024)",
    )
    what.add_argument(
        "--precision", action="append", choices=PRECISIONS, help="repeatable (default fp32)"
    )
    what.add_argument(
        "--backend",
        action="append",
        choices=BACKEND_NAMES,
        help="repeatable (default auto)",
    )
    what.add_argument(
        "--torch-eager",
        action="store_true",
        help="add PyTorch eager FP32 (unfused BN), as the authors timed",
    )
    what.add_argument("--device", help=DEVICE_HELP)
    what.add_argument("--channels-last", action="store_true", help="torch: channels-last")
    what.add_argument("--cuda-graph", action="store_true", help="torch/tensorrt: CUDA graphs")
    what.add_argument("--threads", type=positive_int, help="onnxruntime/openvino CPU threads")
    what.add_argument(
        "--temporal",
        action="append",
        type=frame_window,
        metavar="T",
        help="attention over T frames, the state carried from frame to frame: per-frame "
        "mean and max time, as the paper's Table VIII (repeatable; needed for temporal "
        "exports)",
    )
    how = parser.add_argument_group("how long")
    how.add_argument(
        "--warmup", type=non_negative_seconds, default=2.0, help="warm-up seconds (default 2)"
    )
    how.add_argument(
        "--duration",
        type=positive_seconds,
        default=5.0,
        help="seconds per metric, the metrics taken in turn (5)",
    )
    how.add_argument(
        "--iterations", type=positive_int, help="iterations per metric (instead of time)"
    )
    how.add_argument(
        "--metric",
        choices=METRICS,
        default="host",
        help="what the table shows (default host latency)",
    )
    out = parser.add_argument_group("output")
    fmt = out.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON (schema: docs/bench-schema.json)")
    fmt.add_argument("--csv", action="store_true")
    fmt.add_argument("--markdown", action="store_true")
    out.add_argument("--plot", metavar="PNG", help="write FPS against resolution")
    out.add_argument("--calib-data", help="INT8 calibration images for --weights exports")
    accuracy = parser.add_argument_group("accuracy beside speed")
    accuracy.add_argument(
        "--data", metavar="ROOT", help="Cityscapes root: add each row's mIoU on its val split"
    )
    accuracy.add_argument(
        "--data-limit", type=positive_int, metavar="N", help="evaluate the first N val images"
    )
    out.add_argument(
        "--work-dir",
        default=BenchRequest().work_dir,
        help="where on-the-fly exports go",
    )
    out.add_argument("--cache-dir", help="TensorRT engine cache (default ~/.cache/fanet/engines)")
    out.add_argument(
        "--force",
        action="store_true",
        help="measure an ONNX that is not a FANet graph (no sidecar, metadata or attention), "
        "and replace a read-only --plot file",
    )
    return parser


def request_from_args(args: argparse.Namespace) -> "BenchRequest":
    from fanet.bench.plan import BenchRequest

    return BenchRequest(
        onnx=args.onnx,
        engine=args.engine,
        weights=args.weights,
        arch=args.arch,
        backends=tuple(args.backend or ["auto"]),
        precisions=tuple(args.precision or ["fp32"]),
        torch_eager=args.torch_eager,
        device=args.device,
        channels_last=args.channels_last,
        cuda_graph=args.cuda_graph,
        threads=args.threads,
        calib_data=args.calib_data,
        work_dir=args.work_dir,
        cache_dir=args.cache_dir,
        force=args.force,
        temporals=tuple(args.temporal or ()),
        data=args.data,
        data_limit=args.data_limit,
    )


def _main(args: argparse.Namespace) -> int:
    from fanet.bench.measure import Budget
    from fanet.bench.plan import check_model_files, own_size, run_benchmark, with_local_export
    from fanet.core.artefact_set import DEFAULT_SIZE

    if args.plot:  # before minutes of measuring, not after
        plot_folder = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(plot_folder):
            raise ConfigError("--plot folder {} does not exist".format(plot_folder))
        check_replaceable(args.plot, args.force)
        require("matplotlib", "bench")
    warn_if_oversubscribed(args.threads, logger)
    request = request_from_args(args)
    check_model_files(request)
    request = with_local_export(request)  # the export here, found once
    sizes = [
        size for group in (args.res or [[own_size(request) or DEFAULT_SIZE]]) for size in group
    ]
    budget = Budget(args.warmup, None if args.iterations else args.duration, args.iterations)
    report = run_benchmark(request, sizes, budget, args.metric)
    _emit(args, report)
    if report.interrupted:
        print("interrupted: the figures above are what was measured so far", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _emit(args: argparse.Namespace, report: "BenchReport") -> None:
    from fanet.bench import report as bench_report

    if args.json:
        print(bench_report.as_json(report))
    elif args.csv:
        print(bench_report.as_csv(report), end="")
    elif args.markdown:
        print(bench_report.as_markdown(report), end="")
    else:
        print(bench_report.as_table(report), end="")
    if args.plot:
        bench_report.write_plot(report, args.plot)
        logger.info("wrote %s", args.plot)


def main(argv: Optional[List[str]] = None) -> int:
    return run_command(PROG, build_parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
