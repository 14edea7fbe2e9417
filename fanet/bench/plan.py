"""What ``fanet-trt-bench`` measures and how: rows, the model for each, the run (Python 3.6).

A request names the model (engine, ONNX, checkpoint, or nothing: the export in the
working folder, else random weights), backends, precisions and temporal windows;
``run_benchmark`` measures every row at every size, resolution-major, the rows of a size
together, in turn, and returns a ``BenchReport``.
Exports made on the fly (``--weights``, or no model at all) need the host side, which is
reached by name: on a device without it they are a clear error.
"""

import contextlib
import logging
import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from fanet.bench.device_info import TegraStats, device_info, int8_gains_little
from fanet.bench.measure import Budget, Probe, measure_together, probe
from fanet.bench.report import BenchReport, BenchResult
from fanet.core.artefact_set import ArtefactSet
from fanet.core.engine_record import read_record
from fanet.core.errors import ConfigError
from fanet.core.host import import_host
from fanet.core.identity import why_not_fanet
from fanet.core.int8_budget_record import Int8Budget
from fanet.core.onnx_graph import read_model
from fanet.core.sidecar import read_sidecar, sidecar_path
from fanet.evaluation.datasets import Pairs, cityscapes_pairs
from fanet.evaluation.scoring import LabelTable, Predictor, evaluate, label_table, one_frame_each
from fanet.runtime.options import (
    OnnxRuntimeOptions,
    OpenVinoOptions,
    TensorRTOptions,
    TorchOptions,
)
from fanet.runtime.registry import (
    CHECKPOINT_SUFFIXES,
    ENGINE_SUFFIXES,
    ONNX_SUFFIXES,
    backend_entry,
    check_precision,
    choose_backend,
    cpu_backends,
)
from fanet.runtime.segmenter import Segmenter
from fanet.runtime.temporal import check_window, require_window

logger = logging.getLogger(__name__)

Size = Tuple[int, int]
HOST_ARTEFACTS = "fanet.export.bench_artefacts"  # on-the-fly exports (host side, by name)
REPORTED_MODULES = ["numpy", "cv2", "tensorrt", "onnxruntime", "openvino", "torch"]


class BenchRequest(NamedTuple):
    """A benchmark's model and settings (``fanet-trt-bench --help`` describes each)."""

    onnx: Optional[str] = None
    engine: Optional[str] = None
    weights: Optional[str] = None
    arch: Optional[str] = None
    backends: Tuple[str, ...] = ("auto",)
    precisions: Tuple[str, ...] = ("fp32",)
    torch_eager: bool = False
    device: Optional[str] = None
    channels_last: bool = False
    cuda_graph: bool = False
    threads: Optional[int] = None
    calib_data: Optional[str] = None
    work_dir: str = os.path.join(os.path.expanduser("~"), ".cache", "fanet", "bench")
    cache_dir: Optional[str] = None
    force: bool = False  # measure an ONNX that is not a FANet graph
    temporals: Tuple[int, ...] = ()  # frames per attention window; (): single-frame models
    data: Optional[str] = None  # a Cityscapes root: each row's mIoU on its val split
    data_limit: Optional[int] = None  # the first N images of it


class Row(NamedTuple):
    backend: str
    precision: str
    variant: str  # "" or "eager"
    temporal: Optional[int] = None  # the window of a temporal benchmark (None: not one)

    @property
    def label(self) -> str:
        window = "t={}".format(self.temporal) if self.temporal is not None else ""
        parts = (self.backend, self.variant, self.precision, window)
        return " ".join(part for part in parts if part)


def plan_rows(request: BenchRequest) -> List[Row]:
    """One row per backend x precision x window (auto resolved), then PyTorch eager."""
    windows = tuple(require_window(w) for w in request.temporals) or (None,)
    rows = []
    for requested in request.backends:
        backends = _auto_backends(request) if requested == "auto" else [requested]
        for backend in backends:
            entry = backend_entry(backend)
            for precision in request.precisions:
                check_precision(entry, precision)
                rows += [Row(backend, precision, "", window) for window in windows]
    if request.torch_eager:
        rows += [Row("torch", "fp32", "eager", window) for window in windows]
    return rows


def _auto_backends(request: BenchRequest) -> List[str]:
    """TensorRT for an engine; else the best available backend that runs ONNX, or where
    that runs on the CPU (and no --device cuda), every CPU backend there is, side by
    side."""
    on_cpu = [] if request.engine or request.device == "cuda" else cpu_backends()
    if on_cpu:
        return [entry.name for entry in on_cpu]
    return [choose_backend(".engine" if request.engine else ".onnx").name]


def _host_artefacts(needed_for: str) -> Any:
    return import_host(HOST_ARTEFACTS, needed_for)


def local_export(temporal: Optional[int] = None) -> Optional[str]:
    """The FP32 graph of the export here that ``ArtefactSet.find``'s rule picks, if any;
    ``ConfigError`` where there are exports but none spans ``temporal`` frames."""
    found = ArtefactSet.find(".", temporal)
    if found is None and temporal is not None and ArtefactSet.find(".") is not None:
        raise ConfigError(
            "no export here attends to {} frames: export one with --temporal {}, or pass "
            "--onnx".format(temporal, temporal)
        )
    return found.graph("fp32") if found else None


def with_local_export(request: BenchRequest) -> BenchRequest:
    """``request``, with the export here as its ``onnx`` where it names no model and at
    most one temporal window: found (and logged) once for every row and size."""
    if request.onnx or request.engine or request.weights or len(request.temporals) > 1:
        return request
    found = local_export(request.temporals[0] if request.temporals else None)
    return request._replace(onnx=found) if found else request


MODEL_FILES = {  # option: what it takes, and the file names that have it
    "onnx": ("an ONNX graph", ONNX_SUFFIXES),
    "engine": ("a TensorRT engine", ENGINE_SUFFIXES),
    "weights": ("a checkpoint", CHECKPOINT_SUFFIXES),
}


def check_model_files(request: BenchRequest) -> None:
    """One line for a model file that is missing, a folder, or of another kind."""
    for option, (kind, suffixes) in MODEL_FILES.items():
        path = getattr(request, option)
        if path is None:
            continue
        flag = "--" + option
        if os.path.isdir(path):
            raise ConfigError("{} {}: a folder, not a model file".format(flag, path))
        if not os.path.isfile(path):
            raise ConfigError("{} {}: no such file".format(flag, path))
        if not path.lower().endswith(suffixes):
            raise ConfigError("{} {}: not {} ({})".format(flag, path, kind, ", ".join(suffixes)))


def own_size(request: BenchRequest) -> Optional[Size]:
    """The input size a fixed-size ``onnx`` or ``engine`` was made for (None: dynamic, a
    checkpoint, or no model)."""
    if request.engine:
        record = read_record(request.engine)
        sidecar = record.sidecar if record else None
        return sidecar.input_size if sidecar else None
    onnx = request.onnx
    if onnx:
        if os.path.isfile(sidecar_path(onnx)):
            return read_sidecar(onnx).input_size
        for tensor in read_model(onnx).inputs:  # a lone graph: its image input's
            shape = tensor.shape
            fixed = len(shape) == 4 and all(isinstance(side, int) and side > 0 for side in shape)
            if fixed and shape[1] == 3:
                return (shape[2], shape[3])
    return None


def model_for(request: BenchRequest, row: Row, size: Size) -> Any:
    """What to open for ``row`` at ``size``: a path, or a torch module."""
    if request.engine:
        if row.backend != "tensorrt":
            raise ConfigError("--engine runs only with the tensorrt backend")
        record = read_record(request.engine)
        built = record.precision if record else None
        if built and built != row.precision:
            raise ConfigError(
                "{} is a {} engine, not {}".format(request.engine, built, row.precision)
            )
        return request.engine
    if row.backend == "torch":
        if request.weights:
            return request.weights
        logger.warning("PyTorch rows use RANDOM weights (no --weights), those of the exports")
        return _host_artefacts("PyTorch rows").random_module(request.arch or "fanet18")
    onnx = request.onnx or (None if request.weights else local_export(row.temporal))
    if onnx:
        chosen = onnx_variant(onnx, row, size)
        reason = None if request.force else why_not_fanet(chosen)
        if reason:
            raise ConfigError(reason + ": pass --force to measure it anyway")
        return chosen
    artefacts = _host_artefacts(
        "exporting --weights"
        if request.weights
        else "no model: pass --engine or --onnx, or run in a folder holding fanet-export's "
        "output; exporting one with random weights"
    )
    if not request.weights:
        logger.warning("no model given and none exported here: RANDOM weights, speed only")
    precision = "fp32" if row.backend == "tensorrt" else row.precision
    return artefacts.bench_onnx(request, size, precision, row.temporal or 1)


def onnx_variant(onnx: str, row: Row, size: Size) -> str:
    """The graph beside ``onnx`` that ``row`` runs, checked against ``size``."""
    chosen = ArtefactSet.of(onnx).graph_for(row.backend, row.precision)
    fixed = read_sidecar(chosen).input_size
    if fixed and tuple(fixed) != tuple(size):
        raise ConfigError(
            "{} is exported for {}x{}, not {}x{}: export with --dynamic or that --res".format(
                chosen, fixed[0], fixed[1], size[0], size[1]
            )
        )
    return chosen


def open_row(request: BenchRequest, row: Row, size: Size) -> Segmenter:
    """A Segmenter for ``row`` at ``size``, with the row's backend options."""
    model = model_for(request, row, size)
    device = None if row.backend == "tensorrt" else request.device
    segmenter = Segmenter.from_file(
        model,
        row.backend,
        device,
        precision=row.precision,
        typed_options=_options(request, row, size),
    )
    try:
        name = model if isinstance(model, str) else row.label
        check_window(segmenter.sidecar.temporal, row.temporal, name, implicit=False)
    except BaseException:
        segmenter.close()
        raise
    if segmenter.input_size is None:  # dynamic graphs and checkpoints: the row's size
        segmenter.input_size = size
    return segmenter


def _options(request: BenchRequest, row: Row, size: Size) -> Any:
    """The options record of ``row``'s backend."""
    if row.backend == "torch":
        fused = row.variant != "eager"
        return TorchOptions(
            channels_last=request.channels_last and fused,
            cuda_graph=request.cuda_graph and fused,
            fuse=fused,
            temporal=row.temporal or 1,
        )
    if row.backend == "tensorrt":
        return TensorRTOptions(
            cuda_graph=request.cuda_graph, cache_dir=request.cache_dir, input_size=size
        )
    if row.backend == "openvino":
        return OpenVinoOptions(threads=request.threads)
    return OnnxRuntimeOptions(threads=request.threads)


def run_benchmark(
    request: BenchRequest, sizes: List[Size], budget: Budget, metric: str
) -> BenchReport:
    """Measure every row at every size; Ctrl-C stops early with what was measured."""
    request = with_local_export(request)
    rows = plan_rows(request)
    data = _accuracy_data(request)  # found once, before any model is opened
    results: List[BenchResult] = []
    interrupted = False
    device = device_info(REPORTED_MODULES, request.threads)
    with TegraStats() as tegra:
        # Resolution-major, and the rows of a size measured together, in turn: a shared
        # machine's drift moves the rows compared alike.
        for size in sizes:
            try:
                measured = measure_rows(request, rows, size, budget, data)
            except KeyboardInterrupt:
                measured = SizeResults.nothing(len(rows))
            by_row = zip(rows, measured.stats, measured.accuracy, measured.models, measured.budgets)
            for row, stats, miou, model, int8_budget in by_row:
                results.append(
                    BenchResult(
                        row.backend,
                        row.precision,
                        row.variant,
                        row.label,
                        size,
                        metric,
                        stats,
                        row.temporal,
                        miou,
                        model,
                        row_note(row, device, request.device),
                        int8_budget,
                    )
                )
            if measured.interrupted:
                interrupted = True
                break
    device.update(tegra.summary())
    return BenchReport(metric, budget, device, results, interrupted)


INT8_ON_PLAIN_CPU = (
    "this CPU has no VNNI or AMX (integer dot products): INT8 gains little over FP32 here"
)


def row_note(row: Row, device: Dict[str, Any], device_asked: Optional[str] = None) -> str:
    """What to know reading ``row``'s figures on ``device`` (``device_info``);
    ``device_asked``: ``--device``."""
    cpu_onnxruntime = device_asked == "cpu" or "gpu" not in device
    on_cpu = row.backend == "openvino" or (row.backend == "onnxruntime" and cpu_onnxruntime)
    if row.precision == "int8" and on_cpu and int8_gains_little(device["cpu_isa"]):
        return INT8_ON_PLAIN_CPU
    return ""


def _accuracy_data(request: BenchRequest) -> Optional[Tuple[Pairs, LabelTable]]:
    """The labelled val images of ``request.data`` and the label table, if asked for."""
    if not request.data:
        return None
    return cityscapes_pairs(request.data, "val"), label_table("label_ids")


class SizeResults(NamedTuple):
    """What the rows of one size gave, row by row, and whether Ctrl-C stopped them."""

    stats: List[Any]
    accuracy: List[Optional[float]]
    models: List[str]  # the file each row measured
    budgets: List[Optional[Int8Budget]]  # what an INT8 file's export decided, else None
    interrupted: bool

    @classmethod
    def nothing(cls, rows: int) -> "SizeResults":
        return cls([{} for _ in range(rows)], [None] * rows, [""] * rows, [None] * rows, True)


def measure_rows(
    request: BenchRequest,
    rows: List[Row],
    size: Size,
    budget: Budget,
    data: Optional[Tuple[Pairs, LabelTable]] = None,
) -> SizeResults:
    """Statistics of every row at ``size``, measured together, and each row's mIoU on
    ``data`` (None without). A temporal model is measured in a session that carries its
    state."""
    with contextlib.ExitStack() as opened:
        probes: List[Probe] = []
        predictors: List[Predictor] = []
        models: List[str] = []
        budgets: List[Optional[Int8Budget]] = []
        for row in rows:
            label = "{} {}x{}".format(row.label, size[0], size[1])
            segmenter = opened.enter_context(open_row(request, row, size))
            models.append(segmenter.model)
            budgets.append(Int8Budget.of(segmenter.sidecar, segmenter.model))
            logger.info("measuring %s: %s", label, segmenter.model)
            session = None
            if segmenter.sidecar.temporal > 1:
                session = opened.enter_context(segmenter.temporal_session())
            probes.append(probe(segmenter, size, label=label, session=session))
            predictors.append(one_frame_each(session) if session else segmenter)
        measured, interrupted = measure_together(probes, budget)
        if data is None or interrupted:
            return SizeResults(measured, [None] * len(rows), models, budgets, interrupted)
        report = evaluate(predictors, *data, limit=request.data_limit)
        mious = [scores.miou() for scores in report.scores]
        shown = ", ".join(
            "{} {:.2f} %".format(row.label, 100 * miou) for row, miou in zip(rows, mious)
        )
        accuracy: List[Optional[float]] = list(mious)
        logger.info("mIoU on %d images of %s: %s", report.images, request.data, shown)
        return SizeResults(measured, accuracy, models, budgets, interrupted)
