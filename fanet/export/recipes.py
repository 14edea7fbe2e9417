"""The lower precisions an export makes from its FP32 graph: FP16 with the fast attention
kept FP32, and INT8 in three forms from one calibration (host side).

INT8: the activation ranges come from ``--calib-data`` crops (or the range cache of an
earlier run on the same data and graph); from them, TensorRT's Q/DQ graph with FP32 float
parts (``_int8``), the same with FP16 float parts for strongly typed builds
(``_int8_fp16``, where a targeted TensorRT deprecates weak typing), and ONNX Runtime's CPU
form (``_int8_onnxruntime``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import onnx

from fanet.calibration.cache import load_ranges, save_ranges, write_tensorrt_cache
from fanet.calibration.crops import CropStats, sample_crops
from fanet.calibration.errors import CalibrationError
from fanet.calibration.sources import ImageSource
from fanet.core.attention_islands import attention_islands
from fanet.core.progress import with_progress
from fanet.core.sidecar import INPUT_NAME
from fanet.export.fp16 import attention_nodes, constant_names, convert_to_fp16
from fanet.export.int8 import calibrate_ranges, quantize_qdq
from fanet.export.onnx_runs import carried_feeds
from fanet.export.qdq_tensorrt import fp16_typed, missing_ranges, quantize_for_tensorrt
from fanet.export.run import ExportedFile, ExportRun, Variant
from fanet.runtime.trt.versions import WEAK_TYPING_DEPRECATED

logger = logging.getLogger(__name__)

TENSORRT_QUANTIZER = (
    "fanet Q/DQ for TensorRT (symmetric int8, per-channel Conv weights, float biases, "
    "residual inputs quantized, attention and logits float)"
)
CPU_QUANTIZER = "onnxruntime QDQ (symmetric int8, per-channel Conv weights, a pair per Conv)"


def _islands(proto: onnx.ModelProto) -> dict[str, Any]:
    names = attention_islands(proto.graph.node, constant_names(proto.graph))
    return {
        "fp32_islands": "fast attention: normalisation, k^T v, q (k^T v), latlayer3",
        "fp32_nodes": names,
    }


def export_fp16(run: ExportRun, batches: list[np.ndarray]) -> ExportedFile:
    """The FP16 graph (FP16 image input and output with ``--fp16-io``)."""
    model = onnx.load(run.staged(run.fp32_path))
    converted = convert_to_fp16(model, attention_nodes(model), fp16_io=run.config.fp16_io)
    io_dtype = "float16" if run.config.fp16_io else "float32"
    return run.write_variant(Variant(converted, "fp16", "fp16", _islands(model), io_dtype), batches)


def export_int8(
    run: ExportRun, source: ImageSource, verify_batches: list[np.ndarray]
) -> list[ExportedFile]:
    """The INT8 forms, calibrated on ``source`` (or the cached ranges)."""
    fp32_now = run.staged(run.fp32_path)
    fp32 = onnx.load(fp32_now)
    ranges, stats = _ranges(run, source, fp32)
    write_tensorrt_cache(run.files.stage(run.artefacts.tensorrt_cache), ranges)
    config = run.config
    calibration = {
        "source": os.path.abspath(config.calib_data or ""),
        "kind": source.kind,
        "split": config.calib_split if source.kind == "cityscapes" else None,
        "count": config.calib_count,
        "seed": config.seed,
        "method": config.calib_method,
        "skipped_images": len(stats.skipped),
        "enlarged_images": len(stats.enlarged),
        "cache": os.path.abspath(_ranges_cache(run)),
        "verified_on": f"{len(verify_batches)} crops drawn with seed {config.seed + 1}",
    }
    for_tensorrt = quantize_for_tensorrt(fp32, ranges)
    tensorrt_recipe = dict(_islands(fp32), calibration=calibration, quantizer=TENSORRT_QUANTIZER)
    variants = [Variant(for_tensorrt, "int8", "int8", dict(tensorrt_recipe, float_parts="float32"))]
    if any(version >= WEAK_TYPING_DEPRECATED for version in run.targets):
        typed = fp16_typed(for_tensorrt, config.opset)
        recipe = dict(tensorrt_recipe, float_parts="float16")
        variants.append(Variant(typed, "int8_fp16", "int8", recipe, opset=_default_opset(typed)))
    for_cpu = quantize_qdq(fp32_now, ranges, config.calib_method)
    cpu_recipe = {"calibration": calibration, "quantizer": CPU_QUANTIZER}
    variants.append(Variant(for_cpu, "int8_onnxruntime", "int8", cpu_recipe))
    return [run.write_variant(variant, verify_batches) for variant in variants]


def _ranges_cache(run: ExportRun) -> str:
    return run.config.calib_cache or run.artefacts.ranges_cache


def _ranges(run: ExportRun, source: ImageSource, fp32: onnx.ModelProto) -> tuple[Any, CropStats]:
    """The activation ranges (cached, else calibrated and staged), and what sampling the
    crops did (nothing, for cached ranges)."""
    config = run.config
    cache_path = _ranges_cache(run)
    fingerprint = {
        "onnx_sha256": run.common.provenance.fp32_sha256,
        "data": source.fingerprint(),
        "count": config.calib_count,
        "seed": config.seed,
        "size": list(config.size or ()),
        "method": config.calib_method,
    }
    ranges = load_ranges(cache_path, fingerprint)
    missing = missing_ranges(fp32, ranges) if ranges is not None else []
    if missing:
        raise CalibrationError(
            f"calibration cache {cache_path} has no range for {len(missing)} tensors "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): delete it to "
            "recalibrate"
        )
    stats = CropStats()
    if ranges is not None:
        return ranges, stats
    logger.info(
        "calibrating on %d crops of %s (%d images)",
        config.calib_count,
        config.calib_data,
        len(source),
    )
    assert config.size is not None  # validated: INT8 needs a fixed size
    crops = sample_crops(source, config.calib_count, config.size, config.seed, stats)
    crops = with_progress(crops, config.calib_count, "crop", "calibrating", logger)
    fp32_now = run.staged(run.fp32_path)
    if run.common.state:  # each frame's state is the frame before's output
        feeds = (feed for feed, _ in carried_feeds(fp32_now, crops, run.common.state))
    else:  # no state to carry: the calibrator's own run is the only one per crop
        feeds = ({INPUT_NAME: crop} for crop in crops)
    ranges = calibrate_ranges(fp32_now, feeds, config.calib_method)
    save_ranges(run.files.stage(cache_path), fingerprint, ranges)
    if stats.skipped:
        logger.warning(
            "%d unreadable images were skipped (first: %s)", len(stats.skipped), stats.skipped[0]
        )
    if stats.enlarged:
        logger.warning(
            "%d images smaller than the %dx%d crop were enlarged to it (first: %s)",
            len(stats.enlarged),
            config.size[0],
            config.size[1],
            stats.enlarged[0],
        )
    return ranges, stats


def _default_opset(proto: onnx.ModelProto) -> int:
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
