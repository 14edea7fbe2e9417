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
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from fanet.calibration.cache import Ranges, load_ranges, save_ranges, write_tensorrt_cache
from fanet.calibration.crops import CropStats, sample_crops
from fanet.calibration.errors import CalibrationError
from fanet.calibration.sources import ImageSource
from fanet.core.attention_islands import attention_islands
from fanet.core.errors import ConfigError
from fanet.core.progress import with_progress
from fanet.core.sidecar import INPUT_NAME
from fanet.export.fp16 import attention_nodes, constant_names, convert_to_fp16
from fanet.export.int8 import CALIBRATION_METHODS, calibrate_ranges, shape_inferred
from fanet.export.int8_budget import BudgetFitter
from fanet.export.int8_eval import Scorer, eval_set
from fanet.export.int8_forms import Int8Forms, fake_quant, quantization_groups
from fanet.export.onnx_runs import carried_feeds
from fanet.export.qdq_tensorrt import missing_ranges
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
    """The INT8 forms, calibrated on ``source`` (or the cached ranges); with a budget, the
    fewest groups kept float that bring each within it (``--int8-budget``)."""
    fp32_now = run.staged(run.fp32_path)
    fp32 = onnx.load(fp32_now)
    config = run.config
    methods = CALIBRATION_METHODS if config.calib_method == "auto" else (config.calib_method,)
    typed = any(version >= WEAK_TYPING_DEPRECATED for version in run.targets)
    variants = ("int8",) + (("int8_fp16",) if typed else ()) + ("int8_onnxruntime",)
    _check_given_floats(fp32, variants, config.int8_float)  # before calibrating
    by_method, stats = _ranges(run, source, fp32, methods)
    inferred = shape_inferred(fp32_now)

    def forms_for(method: str) -> Int8Forms:
        return Int8Forms(fp32, inferred, by_method[method], method, variants, config.opset)

    judged = len(methods) > 1 or config.int8_budget is not None  # a budget of 0 too
    scorer = _scorer(run, source, stats) if judged else None
    method = methods[0]
    tried: dict[str, dict[str, float]] = {}
    if scorer is not None and len(methods) > 1:
        method, tried = _best_method(forms_for, methods, scorer)
        _save_ranges(run, source, method, by_method[method])
    forms = forms_for(method)
    report = None
    if scorer is not None and config.int8_budget is not None:
        report = BudgetFitter(forms, scorer, config.int8_budget).fit()
    ranges = by_method[method]
    write_tensorrt_cache(run.files.stage(run.artefacts.tensorrt_cache), ranges)
    calibration = {
        "source": os.path.abspath(config.calib_data or ""),
        "kind": source.kind,
        "split": config.calib_split if source.kind == "cityscapes" else None,
        "count": config.calib_count,
        "seed": config.seed,
        "method": method,
        "methods_tried": tried,  # method -> form -> mIoU (--calib-method auto)
        "skipped_images": len(stats.skipped),
        "enlarged_images": len(stats.enlarged),
        "cache": os.path.abspath(_ranges_cache(run)),
        "verified_on": f"{len(verify_batches)} crops drawn with seed {config.seed + 1}",
    }
    floats = report.float_groups if report is not None else list(config.int8_float)
    budget = {"int8_budget": config.int8_budget, "float_groups": floats}
    islands = _islands(fp32)
    quantizers = {"int8": TENSORRT_QUANTIZER, "int8_fp16": TENSORRT_QUANTIZER}
    written = []
    for variant in variants:
        recipe = dict(
            islands if variant in quantizers else {},
            calibration=calibration,
            quantizer=quantizers.get(variant, CPU_QUANTIZER),
            **budget,
        )
        if variant in quantizers:
            recipe["float_parts"] = "float16" if variant == "int8_fp16" else "float32"
        if report is not None:
            recipe["int8_judged"] = report.judged(variant)
        proto = forms.build(variant, floats)
        opset = _default_opset(proto) if variant == "int8_fp16" else None
        exported = run.write_variant(
            Variant(proto, variant, "int8", recipe, opset=opset), verify_batches
        )
        written.append(exported)
    if report is not None:
        written[0].report = report.to_json()
    return written


def _check_given_floats(
    fp32: onnx.ModelProto, variants: tuple[str, ...], given: tuple[str, ...]
) -> None:
    """``ConfigError`` naming each of ``given`` (``--int8-float``) that no form quantizes."""
    groups = {group.node for group in quantization_groups(fp32, variants)}
    unknown = [node for node in given if node not in groups]
    if unknown:
        raise ConfigError(
            f"--int8-float {', '.join(unknown)}: no INT8 form quantizes a node of that name; "
            "the groups are the node names of an --int8-budget report"
        )


def _scorer(run: ExportRun, source: ImageSource, stats: CropStats) -> Scorer:
    """The images INT8 is judged on: ``--eval-data``, else calibration images it did not
    use (with cached ranges, the crops are drawn again to know which)."""
    config = run.config
    assert config.size is not None  # validated: INT8 needs a fixed size
    if config.eval_data is None and not stats.indices:
        for _ in sample_crops(source, config.calib_count, config.size, config.seed, stats):
            pass
    images = eval_set(
        config.eval_data, config.eval_split, config.eval_count, config.size, source, stats
    )
    logger.info("judging INT8 on %d images of %s", len(images.batches), images.origin)
    return Scorer(images, run.common.output_tensor, run.common.num_classes)


def _best_method(
    forms_for: Callable[[str], Int8Forms], methods: tuple[str, ...], scorer: Scorer
) -> tuple[str, dict[str, dict[str, float]]]:
    """The calibration method whose worst INT8 form scores best, and every form's mIoU
    by each method."""
    fp32 = 100 * scorer.use_as_reference(forms_for(methods[0]).fp32).miou()
    tried = {}
    for method in methods:
        forms = forms_for(method)
        tried[method] = {
            variant: 100
            * scorer.score(forms.build(variant, check=False), fake_quant(variant)).miou()
            for variant in forms.variants
        }
    chosen = max(methods, key=lambda method: (min(tried[method].values()), -methods.index(method)))
    logger.info(
        "calibration method %s: its worst INT8 form scores %.2f mIoU (FP32 %.2f)",
        chosen,
        min(tried[chosen].values()),
        fp32,
    )
    return chosen, tried


def _ranges_cache(run: ExportRun) -> str:
    return run.config.calib_cache or run.artefacts.ranges_cache


def _fingerprint(run: ExportRun, source: ImageSource, method: str) -> dict:
    config = run.config
    return {
        "onnx_sha256": run.common.provenance.fp32_sha256,
        "data": source.fingerprint(),
        "count": config.calib_count,
        "seed": config.seed,
        "size": list(config.size or ()),
        "method": method,
    }


def _save_ranges(run: ExportRun, source: ImageSource, method: str, ranges: Ranges) -> None:
    save_ranges(run.files.stage(_ranges_cache(run)), _fingerprint(run, source, method), ranges)


def _ranges(
    run: ExportRun, source: ImageSource, fp32: onnx.ModelProto, methods: tuple[str, ...]
) -> tuple[dict[str, Ranges], CropStats]:
    """The activation ranges by each of ``methods`` (one method's may come from the
    cache; calibrated ones are staged there), and what sampling the crops did (nothing,
    for cached ranges)."""
    config = run.config
    cache_path = _ranges_cache(run)
    ranges = load_ranges(cache_path, _fingerprint(run, source, methods[0]))
    ranges = ranges if len(methods) == 1 else None  # "auto" compares fresh ranges
    missing = missing_ranges(fp32, ranges) if ranges is not None else []
    if missing:
        raise CalibrationError(
            f"calibration cache {cache_path} has no range for {len(missing)} tensors "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): delete it to "
            "recalibrate"
        )
    stats = CropStats()
    if ranges is not None:
        return {methods[0]: ranges}, stats
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
    by_method = calibrate_ranges(fp32_now, feeds, methods)
    if len(methods) == 1:
        _save_ranges(run, source, methods[0], by_method[methods[0]])
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
    return by_method, stats


def _default_opset(proto: onnx.ModelProto) -> int:
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
