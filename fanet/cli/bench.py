"""fanet-trt-bench: per-resolution FPS of FANet, honestly measured, on every backend.

Python 3.6 compatible: on a Jetson, ``fanet-trt-bench --engine X.engine`` or ``--onnx``
needs only numpy, OpenCV, TensorRT and cuda-python/pycuda. ``--weights`` (or no model)
exports on the fly and needs the host side (PyTorch, onnx).
"""

import argparse
import glob
import logging
import os
import sys
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from fanet.cli.common import EXIT_INTERRUPTED, new_parser, parse_resolution, run_command
from fanet.errors import ConfigError
from fanet.runtime import bench_report
from fanet.runtime.backends import metadata_for, open_backend
from fanet.runtime.benchmark import METRICS, Budget, measure
from fanet.runtime.device_info import TegraStats, device_info
from fanet.runtime.engine_record import read_record
from fanet.runtime.metadata import onnx_variants, read_sidecar, variant_for
from fanet.runtime.segmenter import Segmenter

logger = logging.getLogger("fanet.cli.bench")

PAPER_RESOLUTIONS = [(256, 512), (512, 512), (512, 1024), (1024, 1024), (1024, 2048)]
PRECISIONS = ("fp32", "fp16", "int8")
BACKEND_PRECISIONS = {
    "tensorrt": ("fp32", "fp16", "int8"),
    "onnxruntime": ("fp32", "fp16", "int8"),
    "torch": ("fp32", "fp16"),
}


class Row(NamedTuple):
    backend: str
    precision: str
    variant: str  # "" or "eager"

    @property
    def label(self) -> str:
        return " ".join(part for part in (self.backend, self.variant, self.precision) if part)


def resolution_arg(text: str) -> List[Tuple[int, int]]:
    return list(PAPER_RESOLUTIONS) if text == "paper" else [parse_resolution(text)]


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "fanet-trt-bench",
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
        help="resolution, repeatable; 'paper' = Table V's five (default 512x1024)",
    )
    what.add_argument(
        "--precision", action="append", choices=PRECISIONS, help="repeatable (default fp32)"
    )
    what.add_argument(
        "--backend",
        action="append",
        choices=("auto", "tensorrt", "onnxruntime", "torch"),
        help="repeatable (default auto)",
    )
    what.add_argument(
        "--torch-eager",
        action="store_true",
        help="add PyTorch eager FP32 (unfused BN), as the authors timed",
    )
    what.add_argument("--device", help="cpu or cuda for onnxruntime/torch (default: best)")
    what.add_argument("--channels-last", action="store_true", help="torch: channels-last")
    what.add_argument("--cuda-graph", action="store_true", help="torch/tensorrt: CUDA graphs")
    what.add_argument("--threads", type=int, help="onnxruntime CPU threads")
    how = parser.add_argument_group("how long")
    how.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds (default 2)")
    how.add_argument("--duration", type=float, default=5.0, help="seconds per metric (5)")
    how.add_argument("--iterations", type=int, help="iterations per metric (instead of time)")
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
    out.add_argument(
        "--work-dir",
        default=os.path.join(os.path.expanduser("~"), ".cache", "fanet", "bench"),
        help="where on-the-fly exports go",
    )
    out.add_argument("--cache-dir", help="TensorRT engine cache (default ~/.cache/fanet/engines)")
    return parser


def _rows(args: argparse.Namespace) -> List[Row]:
    backends = args.backend or ["auto"]
    precisions = args.precision or ["fp32"]
    rows = []
    for requested in backends:
        backend = _auto_backend(args) if requested == "auto" else requested
        for precision in precisions:
            if precision not in BACKEND_PRECISIONS[backend]:
                raise ConfigError("the {} backend cannot run {}".format(backend, precision))
            rows.append(Row(backend, precision, ""))
    if args.torch_eager:
        rows.append(Row("torch", "fp32", "eager"))
    return rows


def _auto_backend(args: argparse.Namespace) -> str:
    from fanet.runtime.trt_versions import installed_tensorrt_version

    if args.engine or installed_tensorrt_version() is not None:
        return "tensorrt"
    return "onnxruntime"


def _local_export() -> Optional[str]:
    """An FP32 ONNX exported in the working directory, if any."""
    for path in sorted(glob.glob("*.onnx")):
        has_sidecar = os.path.isfile(os.path.splitext(path)[0] + ".json")
        if has_sidecar and read_sidecar(path).get("precision") == "fp32":
            return path
    return None


def _model_for(args: argparse.Namespace, row: Row, size: Tuple[int, int]) -> Any:
    """What to open for ``row`` at ``size``: a path or a torch module."""
    if args.engine:
        if row.backend != "tensorrt":
            raise ConfigError("--engine runs only with the tensorrt backend")
        record = read_record(args.engine) or {}
        if record.get("precision", row.precision) != row.precision:
            raise ConfigError(
                "{} is a {} engine, not {}".format(
                    args.engine, record.get("precision"), row.precision
                )
            )
        return args.engine
    if row.backend == "torch":
        if args.weights:
            return args.weights
        try:
            from fanet.model import random_model
        except ImportError:
            raise ConfigError("the torch backend needs PyTorch: pip install torch") from None

        logger.warning("PyTorch rows use RANDOM weights (no --weights), those of the exports")
        return random_model(args.arch or "fanet18")
    onnx = args.onnx or (None if args.weights else _local_export())
    if onnx:
        return _onnx_variant(onnx, row, size)
    try:
        from fanet.export.bench_artefacts import bench_onnx
    except ImportError:
        raise ConfigError(
            "no model: pass --engine, --onnx or --weights (exporting needs PyTorch and onnx, "
            "absent here), or run in a folder holding fanet-export's output"
        ) from None

    if not args.weights:
        logger.warning("no model given and none exported here: RANDOM weights, speed only")
    precision = "fp32" if row.backend == "tensorrt" else row.precision
    return bench_onnx(args.weights, args.arch, size, precision, args.work_dir, args.calib_data)


def _onnx_variant(onnx: str, row: Row, size: Tuple[int, int]) -> str:
    variants = onnx_variants(onnx)
    wanted = "fp32" if row.backend == "tensorrt" else variant_for(row.backend, row.precision)
    if wanted not in variants and wanted == "int8_onnxruntime" and "int8" in variants:
        logger.warning("no %s graph: running TensorRT's INT8 form (slower on ONNX Runtime)", wanted)
        wanted = "int8"
    if wanted not in variants:
        raise ConfigError(
            "no {} graph beside {}: run fanet-export --{}".format(wanted, onnx, row.precision)
        )
    sidecar = read_sidecar(variants[wanted])
    fixed = sidecar.get("input_size")
    if fixed and tuple(fixed) != tuple(size):
        raise ConfigError(
            "{} is exported for {}x{}, not {}x{}: export with --dynamic or that --res".format(
                variants[wanted], fixed[0], fixed[1], size[0], size[1]
            )
        )
    return variants[wanted]


def _open(args: argparse.Namespace, row: Row, size: Tuple[int, int]) -> Segmenter:
    model = _model_for(args, row, size)
    options: Dict[str, Any] = {}
    if row.backend == "torch":
        options = {"fuse": row.variant != "eager"}
        if row.variant != "eager":
            options.update(channels_last=args.channels_last, cuda_graph=args.cuda_graph)
    elif row.backend == "tensorrt":
        options = {"cuda_graph": args.cuda_graph, "cache_dir": args.cache_dir, "input_size": size}
    elif args.threads:
        options = {"threads": args.threads}
    backend = open_backend(
        model,
        backend=row.backend,
        device=None if row.backend == "tensorrt" else args.device,
        precision=row.precision,
        **options,
    )
    metadata = metadata_for(model, backend)
    if not metadata.get("input_size"):
        metadata["input_size"] = list(size)
    return Segmenter(backend, metadata)


def _main(args: argparse.Namespace) -> int:
    sizes = [size for group in (args.res or [[(512, 1024)]]) for size in group]
    rows = _rows(args)
    budget = Budget(args.warmup, None if args.iterations else args.duration, args.iterations)
    modules = ["numpy", "cv2", "tensorrt", "onnxruntime", "torch"]
    report: Dict[str, Any] = {
        "schema": bench_report.SCHEMA_ID,
        "metric": args.metric,
        "method": bench_report.METRIC_TEXT,
        "budget": budget._asdict(),
        "device": device_info(modules),
        "results": [],
        "interrupted": False,
    }
    with TegraStats() as tegra:
        # Resolution-major: the rows compared at one size are measured minutes apart at
        # most, so a shared machine's drift moves them together.
        for size in sizes:
            for row in rows:
                label = "{} {}x{}".format(row.label, size[0], size[1])
                logger.info("measuring %s", label)
                try:
                    with _open(args, row, size) as segmenter:
                        stats, interrupted = measure(segmenter, size, budget, label=label)
                except KeyboardInterrupt:
                    interrupted, stats = True, {}
                metric = stats.get(args.metric)
                report["results"].append(
                    {
                        "backend": row.backend,
                        "precision": row.precision,
                        "variant": row.variant,
                        "label": row.label,
                        "resolution": "{}x{}".format(*size),
                        "height": size[0],
                        "width": size[1],
                        "metric": args.metric,
                        "fps": metric["fps"] if metric else None,
                        "stats": stats,
                    }
                )
                if interrupted:
                    report["interrupted"] = True
                    break
            if report["interrupted"]:
                break
    report["device"].update(tegra.summary())
    _emit(args, report)
    if report["interrupted"]:
        print("interrupted: the figures above are what was measured so far", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _emit(args: argparse.Namespace, report: Dict[str, Any]) -> None:
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
    return run_command(build_parser(), _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
