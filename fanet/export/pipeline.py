"""``fanet-export`` as a library call: checkpoint -> FP32 / FP16 / INT8 ONNX with sidecars.

Every graph is checked by ``onnx.checker``, run by ONNX Runtime on the CPU right after it
is written, and compared with its reference (PyTorch for FP32, the FP32 graph for FP16
and INT8); the figures are logged and stored in the sidecar.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np
import onnx
import torch

from fanet import __version__
from fanet.calibration.cache import load_ranges, save_ranges, write_tensorrt_cache
from fanet.calibration.crops import CropStats, sample_crops
from fanet.calibration.sources import open_source
from fanet.errors import ConfigError
from fanet.export.errors import ExportError
from fanet.export.fp16 import attention_nodes, convert_to_fp16
from fanet.export.int8 import calibrate_ranges, quantize_qdq
from fanet.export.onnx_export import DYNAMIC_EXAMPLE_SIZE, export_onnx, save_model
from fanet.metrics import labels_agreement, logits_agreement
from fanet.model import model_from_checkpoint, random_model
from fanet.model.fanet import FANet
from fanet.runtime.files import check_writable_folder, sha256_file
from fanet.runtime.metadata import IMAGENET_MEAN, IMAGENET_STD, INPUT_NAME, write_sidecar

logger = logging.getLogger(__name__)

FP32_TOLERANCE = 1e-3  # max relative logit error of ONNX vs PyTorch before export fails
VERIFY_CROPS = 8


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


@dataclass
class ExportedFile:
    """One written graph: its path, precision and measured agreement."""

    path: str
    precision: str
    agreement: dict[str, float] = field(default_factory=dict)


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
    if config.calib_count < 1:
        raise ConfigError(f"--calib-count must be at least 1, got {config.calib_count}")


def _load_model(config: ExportConfig) -> FANet:
    if config.weights is not None:
        return model_from_checkpoint(config.weights, config.arch, config.num_classes)
    return random_model(config.arch or "fanet18", config.seed, config.num_classes or 19)


def _stem(config: ExportConfig, model: FANet) -> str:
    if config.name:
        return config.name
    size = "dynamic" if config.size is None else f"{config.size[0]}x{config.size[1]}"
    return f"{model.arch}_{size}" + ("_labels" if config.output == "labels" else "")


def _run_onnx(path: str, batch: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed_type = session.get_inputs()[0].type
    feed = batch.astype(np.float16) if "float16" in feed_type else batch
    return session.run(None, {INPUT_NAME: feed})[0]


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
    reference_path: str, candidate_path: str, batches: list[np.ndarray], num_classes: int
) -> dict[str, float]:
    return _pooled(
        [
            _compare(_run_onnx(reference_path, b), _run_onnx(candidate_path, b), num_classes)
            for b in batches
        ]
    )


def _verify_fp32(model: FANet, path: str, config: ExportConfig) -> dict[str, float]:
    from fanet.export.onnx_export import DeployableFANet

    sizes = [config.size] if config.size else [DYNAMIC_EXAMPLE_SIZE, (200, 328)]
    reference_model = DeployableFANet(model, config.output, config.full_res).eval()
    rng = np.random.default_rng(config.seed)
    results = []
    for height, width in sizes:
        batch = rng.standard_normal((1, 3, height, width)).astype(np.float32)
        with torch.no_grad():
            reference = reference_model(torch.from_numpy(batch)).numpy()
        results.append(_compare(reference, _run_onnx(path, batch), model.num_classes))
    agreement = _pooled(results)
    if agreement.get("max_rel", 0.0) > FP32_TOLERANCE:
        raise ExportError(
            f"ONNX output differs from PyTorch by {agreement['max_rel']:.2e} "
            f"(relative); the exported graph is wrong"
        )
    return agreement


def _log_agreement(path: str, reference: str, agreement: dict[str, float]) -> None:
    shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(agreement.items()))
    logger.info("%s vs %s: %s", os.path.basename(path), reference, shown)


def run_export(config: ExportConfig) -> list[ExportedFile]:
    """Export as ``config`` asks; returns the written graphs (FP32 first)."""
    _validate(config)
    check_writable_folder(config.output_dir)
    source = None
    if config.int8 and config.calib_data is not None:
        source = open_source(config.calib_data, config.calib_split)
    model = _load_model(config)
    stem = os.path.join(config.output_dir, _stem(config, model))
    common = {
        "arch": model.arch,
        "num_classes": model.num_classes,
        "input_size": list(config.size) if config.size else None,
        "dynamic": config.size is None,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "opset": config.opset,
        "output": config.output,
        "output_stride": 1 if config.full_res else 8,
        "checkpoint_sha256": sha256_file(config.weights) if config.weights else None,
        "random_weights": config.random_weights,
        "fanet_version": __version__,
    }
    if config.random_weights:
        logger.warning("exporting RANDOM weights (seed %d): for speed tests only", config.seed)

    fp32_path = stem + ".onnx"
    export_onnx(model, fp32_path, config.size, config.opset, config.output, config.full_res)
    fp32 = ExportedFile(fp32_path, "fp32", _verify_fp32(model, fp32_path, config))
    _log_agreement(fp32_path, "PyTorch", fp32.agreement)
    _write_sidecar(fp32, common, {"reference": "pytorch"})
    written = [fp32]

    verify_batches = None
    if source is not None and config.size is not None:
        verify_batches = list(
            sample_crops(source, min(VERIFY_CROPS, len(source)), config.size, config.seed + 1)
        )
    if config.fp16:
        written.append(_export_fp16(fp32_path, stem, config, common, verify_batches))
    if source is not None and verify_batches is not None:
        written.append(_export_int8(fp32_path, stem, config, common, source, verify_batches))
    return written


def _random_batches(config: ExportConfig) -> list[np.ndarray]:
    height, width = config.size or DYNAMIC_EXAMPLE_SIZE
    rng = np.random.default_rng(config.seed)
    return [rng.standard_normal((1, 3, height, width)).astype(np.float32)]


def _write_sidecar(exported: ExportedFile, common: dict, extra: dict) -> None:
    record = dict(
        common,
        precision=exported.precision,
        agreement=exported.agreement,
        onnx_sha256=sha256_file(exported.path),
        **extra,
    )
    write_sidecar(exported.path, record)


def _export_fp16(fp32_path, stem, config, common, verify_batches) -> ExportedFile:
    model = onnx.load(fp32_path)
    converted = convert_to_fp16(model, attention_nodes(model), fp16_io=config.fp16_io)
    extra = {
        "io_dtype": "float16" if config.fp16_io else "float32",
        "fp32_islands": "fast attention: normalisation, k^T v, q (k^T v), latlayer3",
    }
    batches = verify_batches or _random_batches(config)
    return _write_variant(converted, stem + "_fp16.onnx", "fp16", fp32_path, batches, common, extra)


def _write_variant(proto, path, precision, fp32_path, batches, common, extra) -> ExportedFile:
    """Save a lower-precision graph, measure it against the FP32 graph, write its sidecar."""
    save_model(proto, path)
    agreement = _agreement_with(fp32_path, path, batches, common["num_classes"])
    exported = ExportedFile(path, precision, agreement)
    _log_agreement(path, "FP32 ONNX", agreement)
    _write_sidecar(exported, common, dict(extra, reference="fp32 onnx"))
    return exported


def _export_int8(fp32_path, stem, config, common, source, verify_batches) -> ExportedFile:
    fingerprint = {
        "onnx_sha256": sha256_file(fp32_path),
        "data": source.fingerprint(),
        "count": config.calib_count,
        "seed": config.seed,
        "size": list(config.size),
        "method": config.calib_method,
    }
    cache_path = config.calib_cache or stem + "_int8.calib.json"
    ranges = load_ranges(cache_path, fingerprint)
    stats = CropStats()
    if ranges is None:
        logger.info(
            "calibrating on %d crops of %s (%d images)",
            config.calib_count,
            config.calib_data,
            len(source),
        )
        crops = sample_crops(source, config.calib_count, config.size, config.seed, stats)
        ranges = calibrate_ranges(fp32_path, crops, config.calib_method)
        save_ranges(cache_path, fingerprint, ranges)
        if stats.skipped:
            logger.warning("%d unreadable images were skipped", len(stats.skipped))
    write_tensorrt_cache(stem + "_int8.calib.cache", ranges)
    extra = {
        "quantizer": "onnxruntime QDQ (symmetric int8, per-channel Conv weights)",
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
    quantized = quantize_qdq(fp32_path, ranges, config.calib_method)
    return _write_variant(
        quantized, stem + "_int8.onnx", "int8", fp32_path, verify_batches, common, extra
    )
