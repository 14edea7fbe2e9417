"""Activation-range caches: fanet's own (JSON, fingerprinted) and TensorRT's text format."""

from __future__ import annotations

import logging
import math
import struct

from fanet.calibration.errors import CalibrationError
from fanet.core import strict_json
from fanet.core.files import atomic_write

logger = logging.getLogger(__name__)

Ranges = dict[str, tuple[float, float]]
INT8_MAX = 127.0
CACHE_FORMAT = 1


def ranges_made_from(path: str) -> str | None:
    """The sha256 of the FP32 graph the range cache at ``path`` was computed on (None: no
    readable cache; "": one that does not say)."""
    record = strict_json.read_object(path)
    if record is None:
        return None
    fingerprint = record.get("fingerprint")
    return str(fingerprint.get("onnx_sha256") or "") if isinstance(fingerprint, dict) else ""


def load_ranges(path: str, fingerprint: dict) -> Ranges | None:
    """Cached ranges from ``path`` if its fingerprint equals ``fingerprint``, else None."""
    record = strict_json.read_object(path)
    if record is None:
        return None
    if record.get("format") != CACHE_FORMAT or record.get("fingerprint") != fingerprint:
        logger.info("calibration cache %s is for other data or another graph: recalibrating", path)
        return None
    logger.info("reusing calibration ranges from %s", path)
    try:
        ranges = {name: (float(lo), float(hi)) for name, (lo, hi) in record["ranges"].items()}
    except (KeyError, AttributeError, TypeError, ValueError):
        raise CalibrationError(
            f"calibration cache {path} is malformed: delete it to recalibrate"
        ) from None
    check_ranges(ranges, f"calibration cache {path}", "delete it to recalibrate")
    return ranges


def check_ranges(ranges: Ranges, origin: str, remedy: str) -> None:
    """Raise ``CalibrationError`` unless every range is finite with low <= high."""
    for name, (lo, hi) in sorted(ranges.items()):
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise CalibrationError(f"{origin} holds the range [{lo}, {hi}] for {name!r}: {remedy}")


def save_ranges(path: str, fingerprint: dict, ranges: Ranges) -> None:
    """Write ``ranges`` with the fingerprint they were computed for."""
    record = {
        "format": CACHE_FORMAT,
        "fingerprint": fingerprint,
        "ranges": {name: [lo, hi] for name, (lo, hi) in sorted(ranges.items())},
    }
    with atomic_write(path, "w") as stream:
        strict_json.dump(record, stream, indent=1)


def write_tensorrt_cache(path: str, ranges: Ranges) -> None:
    """TensorRT calibration-cache text: one ``tensor: hex(float32 scale)`` line per tensor.

    The scale is max(|min|, |max|) / 127 (symmetric INT8). TensorRT 8.x-10.x reads it
    through an ``IInt8EntropyCalibrator2`` whose ``read_calibration_cache`` returns it.
    """
    check_ranges(ranges, "the calibration", "check the calibration images")
    lines = ["TRT-8000-EntropyCalibration2"]
    for name, (lo, hi) in sorted(ranges.items()):
        scale = max(abs(lo), abs(hi), 1e-12) / INT8_MAX
        lines.append(f"{name}: {struct.pack('>f', scale).hex()}")
    with atomic_write(path, "w") as stream:
        stream.write("\n".join(lines) + "\n")
