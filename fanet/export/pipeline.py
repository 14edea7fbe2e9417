"""``fanet-export`` as a library call: checkpoint -> FP32 / FP16 / INT8 ONNX with sidecars.

Every graph is checked by ``onnx.checker`` and, before it is saved, against the parser
rules of every targeted TensorRT version (``fanet.conformance.check``); then it is
run by ONNX Runtime on the CPU and compared with its reference (PyTorch for FP32, the
FP32 graph for FP16 and INT8); the figures are logged and stored in the sidecar.

The files of one export form an ``ArtefactSet``: written under temporary names while a
lock on the stem is held, renamed into place together when all succeeded. Files of the
previous set that the new one does not rewrite stay only if they were made from the
same FP32 graph (each sidecar records it as ``fp32_sha256``).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import torch

from fanet import __version__
from fanet.calibration.cache import load_ranges, save_ranges, write_tensorrt_cache
from fanet.calibration.crops import CropStats, sample_crops
from fanet.calibration.errors import CalibrationError
from fanet.calibration.sources import open_source
from fanet.conformance.check import require_conformance, version_text
from fanet.conformance.rules import Version, generation, serves, versions_for_opset
from fanet.core.artefact_set import ArtefactSet
from fanet.core.attention_islands import attention_islands
from fanet.core.errors import ConfigError
from fanet.core.files import check_replaceable, check_writable_folder, sha256_file
from fanet.core.metrics import labels_agreement, logits_agreement
from fanet.core.names import check_name
from fanet.core.onnx_graph import parse_model
from fanet.core.sidecar import (
    CONSUMERS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    VARIANT_SUFFIXES,
    Sidecar,
    read_json_or_none,
    sidecar_path,
    variant_of,
    write_sidecar,
)
from fanet.export.errors import ExportError
from fanet.export.fp16 import attention_nodes, constant_names, convert_to_fp16
from fanet.export.int8 import calibrate_ranges, quantize_qdq
from fanet.export.onnx_export import (
    DYNAMIC_EXAMPLE_SIZE,
    export_onnx,
    save_model,
    set_metadata,
)
from fanet.export.onnx_runs import carried_feeds, run_frames
from fanet.export.qdq_tensorrt import fp16_typed, missing_ranges, quantize_for_tensorrt
from fanet.model import model_from_checkpoint, random_model
from fanet.model.fanet import FANet
from fanet.model.temporal import TemporalFANet, check_window
from fanet.runtime.trt.versions import WEAK_TYPING_DEPRECATED

logger = logging.getLogger(__name__)

FP32_TOLERANCE = 1e-3  # max relative logit error of ONNX vs PyTorch before export fails
VERIFY_CROPS = 8
VERIFY_FRAMES = 3  # frames in turn per verification size of a temporal graph


@dataclass
class ExportConfig:
    """Everything ``fanet-export`` can be asked for (see ``fanet-export --help``)."""

    weights: str | None = None
    random_weights: bool = False
    arch: str | None = None
    num_classes: int | None = None
    size: tuple[int, int] | None = (512, 1024)  # None: dynamic height and width
    opset: int = 17
    output: str = "logits"
    full_res: bool = False
    fp16: bool = False
    fp16_io: bool = False
    int8: bool = False
    calib_data: str | None = None
    calib_split: str = "train"
    calib_count: int = 500
    calib_method: str = "minmax"
    calib_cache: str | None = None
    seed: int = 0
    output_dir: str = "."
    name: str | None = None
    target_trt: tuple[Version, ...] = ()  # empty: every known version the opset serves
    force: bool = False  # replace read-only files
    max_batch: int = 1  # > 1: a dynamic batch axis up to this (serving with Triton)
    temporal: int = 1  # frames each attention spans (paper Sec. III-D); 1: single-frame
    temporal_reduce: str = "mean"  # "mean" (single-frame weights) or "sum" (Eq. 6)

    def targets(self) -> tuple[Version, ...]:
        """The TensorRT versions every graph must conform to."""
        return self.target_trt or versions_for_opset(self.opset)


@dataclass
class ExportedFile:
    """One written graph: its path, precision, variant and measured agreement."""

    path: str
    precision: str
    agreement: dict[str, float] = field(default_factory=dict)
    variant: str = ""

    def __post_init__(self) -> None:
        self.variant = self.variant or variant_of(self.path)


def _validate(config: ExportConfig) -> None:
    if config.weights is None and not config.random_weights:
        raise ConfigError(
            "no --weights given; pass a checkpoint, or --random-weights for speed tests only"
        )
    if config.weights is not None and config.random_weights:
        raise ConfigError("--weights and --random-weights exclude each other")
    if config.fp16_io and not config.fp16:
        raise ConfigError("--fp16-io needs --fp16")
    if config.int8 and config.calib_data is None:
        raise ConfigError("--int8 needs --calib-data (a Cityscapes root, image folder or video)")
    if config.int8 and config.size is None:
        raise ConfigError("--int8 needs a fixed --res: calibration crops have the export size")
    if config.name is not None:
        check_name(config.name, "--name")
    if config.calib_count < 1:
        raise ConfigError(f"--calib-count must be at least 1, got {config.calib_count}")
    check_window(config.temporal, config.temporal_reduce)
    if config.max_batch < 1:
        raise ConfigError(f"--max-batch must be at least 1, got {config.max_batch}")
    for version in config.target_trt:
        if version < (8, 2):
            raise ConfigError(f"--target-trt {version_text(version)}: fanet supports 8.2 and newer")
        rules = generation(version)
        if not serves(version, config.opset):
            raise ConfigError(
                f"TensorRT {version_text(version)} parses opsets {rules.min_opset}.."
                f"{rules.max_opset}, not --opset {config.opset}: choose an opset in that range"
            )


def _load_model(config: ExportConfig) -> FANet:
    if config.weights is not None:
        return model_from_checkpoint(config.weights, config.arch, config.num_classes)
    return random_model(config.arch or "fanet18", config.seed, config.num_classes or 19)


def _stem(config: ExportConfig, model: FANet) -> str:
    if config.name:
        return config.name
    size = "dynamic" if config.size is None else f"{config.size[0]}x{config.size[1]}"
    temporal = f"_t{config.temporal}" if config.temporal > 1 else ""
    return f"{model.arch}_{size}{temporal}" + ("_labels" if config.output == "labels" else "")


def _compare(reference: np.ndarray, candidate: np.ndarray, num_classes: int) -> dict[str, float]:
    if reference.dtype.kind == "f":
        return logits_agreement(reference, candidate.astype(np.float32), num_classes)
    return labels_agreement(reference, candidate, num_classes)


def _pooled(results: list[dict[str, float]]) -> dict[str, float]:
    """One figure per metric over several inputs: the worst error, the mean agreement."""
    pooled = {}
    for key in results[0]:
        values = [r[key] for r in results]
        if key in ("max_abs", "max_rel"):
            pooled[key] = float(max(values))
        elif key == "finite":
            pooled[key] = float(min(values))
        else:
            pooled[key] = float(np.mean(values))
    return pooled


def _agreement_with(
    reference_path: str, candidate_path: str, batches: list[np.ndarray], common: Sidecar
) -> dict[str, float]:
    """Agreement of two graphs over ``batches`` taken in turn (a temporal graph's state
    carried in each), output by output."""
    output = common.output_tensor
    references = run_frames(reference_path, batches, common.state)
    candidates = run_frames(candidate_path, batches, common.state)
    return _pooled(
        [
            _compare(reference[output], candidate[output], common.num_classes)
            for reference, candidate in zip(references, candidates)
        ]
    )


def _verify_fp32(model: FANet, path: str, config: ExportConfig, common: Sidecar) -> dict:
    """Agreement of the ONNX graph with PyTorch on random inputs: a temporal graph on
    ``VERIFY_FRAMES`` frames in turn per size, its state carried in both."""
    from fanet.export.onnx_export import DeployableFANet

    sizes = [config.size] if config.size else [DYNAMIC_EXAMPLE_SIZE, (200, 328)]
    reference_model = DeployableFANet(
        model, config.output, config.full_res, config.temporal, config.temporal_reduce
    ).eval()
    frames = VERIFY_FRAMES if config.temporal > 1 else 1
    rng = np.random.default_rng(config.seed)
    results = []
    images = min(config.max_batch, 2)  # a dynamic batch axis is checked with two images
    for height, width in sizes:
        shape = (images, 3, height, width)
        batches = [rng.standard_normal(shape).astype(np.float32) for _ in range(frames)]
        candidates = run_frames(path, batches, common.state)
        x = torch.from_numpy(batches[0])
        state = reference_model.initial_state(x)
        for batch, candidate in zip(batches, candidates):
            with torch.no_grad():
                reference, *state = _as_tuple(reference_model(torch.from_numpy(batch), *state))
            results.append(_compare(reference.numpy(), candidate[config.output], model.num_classes))
    agreement = _pooled(results)
    _require_finite(path, "PyTorch", agreement)
    if agreement.get("max_rel", 0.0) > FP32_TOLERANCE:
        raise ExportError(
            f"ONNX output differs from PyTorch by {agreement['max_rel']:.2e} "
            f"(relative); the exported graph is wrong"
        )
    return agreement


def _require_finite(path: str, reference: str, agreement: dict[str, float]) -> None:
    """Refuse a graph whose outputs, or whose comparison with ``reference``, are not
    finite numbers: its labels would be meaningless, whatever the figures say."""
    broken = {k: v for k, v in agreement.items() if not math.isfinite(v)}
    if broken or agreement.get("finite", 1.0) < 1.0:
        raise ExportError(
            f"{os.path.basename(path)} gives outputs that are not finite numbers on the "
            f"verification inputs (finite {agreement.get('finite', 0.0):.4g}; "
            f"{', '.join(sorted(broken)) or 'no figure'} not finite against {reference}): "
            "not written"
        )


def _as_tuple(outputs: Any) -> tuple:
    return outputs if isinstance(outputs, tuple) else (outputs,)


def _log_agreement(path: str, reference: str, agreement: dict[str, float]) -> None:
    shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(agreement.items()))
    logger.info("%s vs %s: %s", os.path.basename(path), reference, shown)


def run_export(config: ExportConfig) -> list[ExportedFile]:
    """Export as ``config`` asks; returns the written graphs (FP32 first).

    All files appear together or none does: a failure or interruption leaves the folder
    as it was (a graph a targeted TensorRT would reject is never saved).
    """
    _validate(config)
    check_writable_folder(config.output_dir)
    source = None
    if config.int8 and config.calib_data is not None:
        source = open_source(config.calib_data, config.calib_split)
    model = _load_model(config)
    stem = os.path.join(config.output_dir, _stem(config, model))
    common = Sidecar(
        arch=model.arch,
        num_classes=model.num_classes,
        input_size=config.size,
        dynamic=config.size is None,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        output=config.output,
        output_stride=1 if config.full_res else 8,
        opset=config.opset,
        fanet_version=__version__,
        max_batch=config.max_batch,
        temporal=config.temporal,
        temporal_reduce=config.temporal_reduce if config.temporal > 1 else None,
        state=TemporalFANet(model, config.temporal, config.temporal_reduce).state_tensors(),
        details={
            "checkpoint_sha256": sha256_file(config.weights) if config.weights else None,
            "random_weights": config.random_weights,
        },
    )
    if config.random_weights:
        logger.warning("exporting RANDOM weights (seed %d): for speed tests only", config.seed)
    for path in _artefact_paths(stem, config):
        check_replaceable(path, config.force)  # before minutes of work, not after
    with ArtefactSet(stem, config.force) as files:
        written, fp32_sha256 = _export_all(model, stem, config, common, source, files)
        files.commit(obsolete=_obsolete(stem, fp32_sha256))
    return written


def _artefact_paths(stem: str, config: ExportConfig) -> list[str]:
    graphs = [stem + suffix + ".onnx" for suffix in VARIANT_SUFFIXES.values()]
    caches = [stem + "_int8.calib.cache", config.calib_cache or stem + "_int8.calib.json"]
    return graphs + [sidecar_path(g) for g in graphs] + caches


def _obsolete(stem: str, fp32: str) -> list[str]:
    """Files of the previous set not made from the FP32 graph (sha256 ``fp32``) this
    export wrote."""
    obsolete = []
    for suffix in VARIANT_SUFFIXES.values():
        graph = stem + suffix + ".onnx"
        record = read_json_or_none(sidecar_path(graph)) or {}
        if os.path.exists(graph) and record.get("fp32_sha256") != fp32:
            obsolete += [graph, sidecar_path(graph)]
    if stem + "_int8.onnx" in obsolete:
        obsolete.append(stem + "_int8.calib.cache")
    default_cache = stem + "_int8.calib.json"  # a --calib-cache elsewhere is the user's
    cache = read_json_or_none(default_cache) or {}
    if cache and cache.get("fingerprint", {}).get("onnx_sha256") != fp32:
        obsolete.append(default_cache)
    return [path for path in obsolete if os.path.exists(path)]


def _conform(proto: onnx.ModelProto, label: str, targets: tuple[Version, ...]) -> list[str]:
    """Refuse ``proto`` if a targeted TensorRT that reads its opset would reject it."""
    graph = parse_model(proto.SerializeToString())
    served = [version for version in targets if serves(version, graph.opset)]
    require_conformance(graph, served, label)
    return [version_text(v) for v in served]


def _export_all(
    model: FANet, stem: str, config: ExportConfig, common: Sidecar, source, files: ArtefactSet
) -> tuple[list[ExportedFile], str]:
    """The staged graphs (FP32 first) and the FP32 graph's sha256."""
    fp32_path = stem + ".onnx"
    targets = config.targets()
    checked: list[str] = []

    def prepare(proto: onnx.ModelProto) -> None:
        checked[:] = _conform(proto, os.path.basename(fp32_path), targets)
        _stamp(proto, common, "fp32")

    export_onnx(
        model,
        files.stage(fp32_path),
        config.size,
        config.opset,
        config.output,
        config.full_res,
        prepare,
        config.temporal,
        config.temporal_reduce,
        config.max_batch > 1,
    )
    fp32_now = files.current(fp32_path)
    fp32 = ExportedFile(fp32_path, "fp32", _verify_fp32(model, fp32_now, config, common))
    _log_agreement(fp32_path, "PyTorch", fp32.agreement)
    fp32_sha256 = sha256_file(fp32_now)
    common = common._replace(details=dict(common.details, fp32_sha256=fp32_sha256))
    _write_sidecar(fp32, common, {"reference": "pytorch", "tensorrt_checked": checked}, files)
    written = [fp32]

    verify_batches = None
    if source is not None and config.size is not None:
        verify_batches = list(
            sample_crops(source, min(VERIFY_CROPS, len(source)), config.size, config.seed + 1)
        )
    if config.fp16:
        written.append(_export_fp16(fp32_path, stem, config, common, verify_batches, files))
    if source is not None and verify_batches is not None:
        written += _export_int8(fp32_path, stem, config, common, source, verify_batches, files)
    return written, fp32_sha256


def _random_batches(config: ExportConfig) -> list[np.ndarray]:
    height, width = config.size or DYNAMIC_EXAMPLE_SIZE
    rng = np.random.default_rng(config.seed)
    return [rng.standard_normal((1, 3, height, width)).astype(np.float32)]


def _write_sidecar(
    exported: ExportedFile, common: Sidecar, extra: dict[str, Any], files: ArtefactSet
) -> None:
    """The export's record plus this graph's precision, consumer, agreement and hash."""
    details = dict(
        common.details,
        consumer=CONSUMERS[variant_of(exported.path)],
        agreement=exported.agreement,
        onnx_sha256=sha256_file(files.current(exported.path)),
        **extra,
    )
    record = common._replace(precision=exported.precision, details=details)
    write_sidecar(exported.path, record, to=files.stage(sidecar_path(exported.path)))


def _stamp(proto: onnx.ModelProto, common: Sidecar, precision: str) -> None:
    """Put the sidecar's essentials into the graph's ``metadata_props``."""
    set_metadata(proto, common._replace(precision=precision).props())


def _default_opset(proto: onnx.ModelProto) -> int:
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def _islands(proto: onnx.ModelProto) -> dict[str, Any]:
    names = attention_islands(proto.graph.node, constant_names(proto.graph))
    return {
        "fp32_islands": "fast attention: normalisation, k^T v, q (k^T v), latlayer3",
        "fp32_nodes": names,
    }


def _export_fp16(fp32_path, stem, config, common, verify_batches, files) -> ExportedFile:
    model = onnx.load(files.current(fp32_path))
    converted = convert_to_fp16(model, attention_nodes(model), fp16_io=config.fp16_io)
    extra = dict(_islands(model), io_dtype="float16" if config.fp16_io else "float32")
    batches = verify_batches or _random_batches(config)
    path = stem + "_fp16.onnx"
    return _write_variant(converted, path, "fp16", fp32_path, batches, common, extra, config, files)


def _write_variant(
    proto, path, precision, fp32_path, batches, common, extra, config, files, tensorrt=True
) -> ExportedFile:
    """Check a lower-precision graph, save it, measure it against the FP32 graph, write
    its sidecar. ``tensorrt=False`` for graphs no TensorRT reads (the CPU INT8 form)."""
    if tensorrt:
        extra = dict(
            extra, tensorrt_checked=_conform(proto, os.path.basename(path), config.targets())
        )
    _stamp(proto, common, precision)
    save_model(proto, files.stage(path))
    agreement = _agreement_with(files.current(fp32_path), files.current(path), batches, common)
    _require_finite(path, "the FP32 graph", agreement)
    exported = ExportedFile(path, precision, agreement)
    _log_agreement(path, "FP32 ONNX", agreement)
    _write_sidecar(exported, common, dict(extra, reference="fp32 onnx"), files)
    return exported


TENSORRT_QUANTIZER = (
    "fanet Q/DQ for TensorRT (symmetric int8, per-channel Conv weights, float biases, "
    "residual inputs quantized, attention and logits float)"
)


def _export_int8(fp32_path, stem, config, common, source, verify_batches, files) -> list:
    fp32_now = files.current(fp32_path)
    fingerprint = {
        "onnx_sha256": common.details["fp32_sha256"],
        "data": source.fingerprint(),
        "count": config.calib_count,
        "seed": config.seed,
        "size": list(config.size),
        "method": config.calib_method,
    }
    cache_path = config.calib_cache or stem + "_int8.calib.json"
    fp32 = onnx.load(fp32_now)
    ranges = load_ranges(cache_path, fingerprint)
    missing = missing_ranges(fp32, ranges) if ranges is not None else []
    if missing:
        raise CalibrationError(
            f"calibration cache {cache_path} has no range for {len(missing)} tensors "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): delete it to "
            "recalibrate"
        )
    stats = CropStats()
    if ranges is None:
        logger.info(
            "calibrating on %d crops of %s (%d images)",
            config.calib_count,
            config.calib_data,
            len(source),
        )
        crops = sample_crops(source, config.calib_count, config.size, config.seed, stats)
        feeds = (feed for feed, _ in carried_feeds(fp32_now, crops, common.state))
        ranges = calibrate_ranges(fp32_now, feeds, config.calib_method)
        save_ranges(files.stage(cache_path), fingerprint, ranges)
        if stats.skipped:
            logger.warning("%d unreadable images were skipped", len(stats.skipped))
    write_tensorrt_cache(files.stage(stem + "_int8.calib.cache"), ranges)
    extra = {
        "quantizer": "onnxruntime QDQ (symmetric int8, per-channel Conv weights, a pair per Conv)",
        "calibration": {
            "source": os.path.abspath(config.calib_data),
            "kind": source.kind,
            "split": config.calib_split if source.kind == "cityscapes" else None,
            "count": config.calib_count,
            "seed": config.seed,
            "method": config.calib_method,
            "skipped_images": len(stats.skipped),
            "cache": os.path.abspath(cache_path),
            "verified_on": f"{len(verify_batches)} crops drawn with seed {config.seed + 1}",
        },
    }
    for_tensorrt = quantize_for_tensorrt(fp32, ranges)
    islands = _islands(fp32)
    written = [
        _write_variant(
            for_tensorrt,
            stem + "_int8.onnx",
            "int8",
            fp32_path,
            verify_batches,
            common,
            {**extra, **islands, "quantizer": TENSORRT_QUANTIZER, "float_parts": "float32"},
            config,
            files,
        )
    ]
    if any(version >= WEAK_TYPING_DEPRECATED for version in config.targets()):
        typed = fp16_typed(for_tensorrt, config.opset)
        written.append(
            _write_variant(
                typed,
                stem + "_int8_fp16.onnx",
                "int8",
                fp32_path,
                verify_batches,
                common._replace(opset=_default_opset(typed)),
                {**extra, **islands, "quantizer": TENSORRT_QUANTIZER, "float_parts": "float16"},
                config,
                files,
            )
        )
    for_cpu = quantize_qdq(fp32_now, ranges, config.calib_method)
    written.append(
        _write_variant(
            for_cpu,
            stem + "_int8_onnxruntime.onnx",
            "int8",
            fp32_path,
            verify_batches,
            common,
            extra,
            config,
            files,
            tensorrt=False,
        )
    )
    return written
