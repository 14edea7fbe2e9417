"""Explicit INT8: activation ranges from ONNX Runtime, Q/DQ pairs inserted (host side).

Symmetric int8 with zero point 0, per-channel weight scales on every Conv and per-tensor
activation scales: the Q/DQ form TensorRT 8.0-11 builds. The attention MatMuls stay
float (their unnormalised sums have no stable range).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable

import numpy as np

from fanet.calibration.cache import Ranges
from fanet.export.errors import ExportError
from fanet.runtime.metadata import INPUT_NAME

logger = logging.getLogger(__name__)

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
QUANTIZED_OPS = ["Conv"]


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[name]


class _Batches:
    """ONNX Runtime CalibrationDataReader over preprocessed crops."""

    def __init__(self, batches: Iterable[np.ndarray]) -> None:
        self._batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def calibrate_ranges(
    fp32_path: str, batches: Iterable[np.ndarray], method: str = "minmax"
) -> Ranges:
    """Activation ranges of every float tensor of ``fp32_path`` over ``batches``."""
    from onnxruntime.quantization.calibrate import create_calibrator

    if method not in CALIBRATION_METHODS:
        raise ExportError(
            f"unknown calibration method {method!r}; choose one of: "
            f"{', '.join(CALIBRATION_METHODS)}"
        )
    with tempfile.TemporaryDirectory(prefix="fanet-calib-") as scratch:
        calibrator = create_calibrator(
            fp32_path,
            QUANTIZED_OPS,
            augmented_model_path=os.path.join(scratch, "augmented.onnx"),
            calibrate_method=_method(method),
            extra_options={"symmetric": True},
        )
        calibrator.collect_data(_Batches(batches))
        computed = calibrator.compute_data()
    ranges = {}
    for name, data in computed.data.items():
        lo, hi = data.range_value
        ranges[name] = (float(np.asarray(lo).min()), float(np.asarray(hi).max()))
    if not ranges:
        raise ExportError("calibration produced no ranges: no calibration batches were read")
    return ranges


def quantize_qdq(fp32_path: str, ranges: Ranges, method: str = "minmax"):
    """``fp32_path`` with Q/DQ pairs from ``ranges``; returns the ONNX ModelProto."""
    from pathlib import Path

    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.calibrate import TensorData, TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    model = load_model_with_shape_infer(Path(fp32_path))
    tensors = TensorsData(
        _method(method),
        {
            name: TensorData(lowest=np.float32(lo), highest=np.float32(hi))
            for name, (lo, hi) in ranges.items()
        },
    )
    quantizer = QDQQuantizer(
        model,
        True,  # per-channel weights
        False,  # no reduce_range: full int8
        QuantType.QInt8,
        QuantType.QInt8,
        tensors,
        None,
        None,
        QUANTIZED_OPS,
        {
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QDQKeepRemovableActivations": False,
        },
    )
    quantizer.quantize_model()
    return quantizer.model.model
