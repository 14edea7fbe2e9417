"""Range caches are validated before they are used or converted to TensorRT's format."""

import json

import pytest

from fanet.calibration.cache import load_ranges, save_ranges, write_tensorrt_cache
from fanet.calibration.errors import CalibrationError

FINGERPRINT = {"onnx_sha256": "ab" * 32, "count": 4}


def test_round_trip_and_fingerprint(tmp_path):
    path = str(tmp_path / "m_int8.calib.json")
    save_ranges(path, FINGERPRINT, {"x": (-1.0, 2.0), "y": (0.0, 0.5)})
    assert load_ranges(path, FINGERPRINT) == {"x": (-1.0, 2.0), "y": (0.0, 0.5)}
    assert load_ranges(path, dict(FINGERPRINT, count=5)) is None  # other data: recalibrate


@pytest.mark.parametrize(
    "ranges,message",
    [
        ({"x": [float("nan"), 1.0]}, r"range \[nan, 1.0\] for 'x'"),
        ({"x": [0.0, float("inf")]}, r"range \[0.0, inf\] for 'x'"),
        ({"x": [2.0, 1.0]}, r"range \[2.0, 1.0\] for 'x'"),
        ({"x": "wide"}, "is malformed"),
    ],
)
def test_a_hand_edited_cache_is_refused_before_use(tmp_path, ranges, message):
    path = tmp_path / "m_int8.calib.json"
    path.write_text(json.dumps({"format": 1, "fingerprint": FINGERPRINT, "ranges": ranges}))
    with pytest.raises(CalibrationError, match=message):
        load_ranges(str(path), FINGERPRINT)


def test_non_finite_ranges_never_reach_the_tensorrt_cache(tmp_path):
    path = tmp_path / "m_int8.calib.cache"
    path.write_text("TRT-8000-EntropyCalibration2\nx: 3c010204\n")
    with pytest.raises(CalibrationError, match="the calibration holds the range"):
        write_tensorrt_cache(str(path), {"x": (float("nan"), 1.0)})
    assert path.read_text() == "TRT-8000-EntropyCalibration2\nx: 3c010204\n"  # untouched
