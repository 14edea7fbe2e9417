"""Post-processing: the pruned upsampled argmax equals the full one on every pixel."""

import glob
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from fanet.core.postprocess import upsampled_argmax
from fanet.core.resize import resize_align_corners


def _full(logits, size):
    return resize_align_corners(logits, size).argmax(0)


@pytest.mark.parametrize(
    "size", [(128, 256), (100, 250), (16, 32), (9, 13), (1, 7), (7, 1), (300, 20)]
)
def test_equals_the_full_argmax_on_random_logits(size):
    logits = np.random.default_rng(1).standard_normal((19, 16, 32)).astype(np.float32)
    labels = upsampled_argmax(logits, size)
    assert labels.dtype == np.uint8 and np.array_equal(labels, _full(logits, size))


def test_ties_and_near_ties_go_the_same_way():
    rng = np.random.default_rng(2)
    logits = rng.integers(0, 3, (6, 8, 8)).astype(np.float32)  # exact ties everywhere
    logits[1] = np.nextafter(logits[0], np.float32(9))  # one ulp above class 0
    for size in [(64, 64), (57, 91)]:
        assert np.array_equal(upsampled_argmax(logits, size), _full(logits, size))


def test_smooth_maps_skip_most_classes_and_stay_exact():
    ramp = np.linspace(-4, 4, 32, dtype=np.float32)
    logits = np.stack([ramp[None, :] * k + np.zeros((16, 1), np.float32) for k in range(-3, 4)])
    for size in [(128, 256), (33, 65)]:
        assert np.array_equal(upsampled_argmax(logits, size), _full(logits, size))


def test_reused_buffers_carry_nothing_between_sizes_or_threads():
    """Scratch buffers are per thread and resized per call: each answer stays exact."""
    rng = np.random.default_rng(5)
    cases = [
        (rng.standard_normal((19, 16, 32)).astype(np.float32), (128, 256)),
        (rng.standard_normal((5, 9, 7)).astype(np.float32), (61, 40)),
        (rng.standard_normal((19, 16, 32)).astype(np.float32), (31, 300)),
    ]
    expected = [_full(logits, size) for logits, size in cases]
    for _ in range(2):  # bigger, smaller, bigger again in one thread
        for (logits, size), labels in zip(cases, expected):
            assert np.array_equal(upsampled_argmax(logits, size), labels)
    with ThreadPoolExecutor(4) as pool:  # four threads at once, each its own buffers
        results = list(pool.map(lambda case: upsampled_argmax(*case), cases * 8))
    assert all(np.array_equal(r, e) for r, e in zip(results, expected * 8))


def test_non_finite_logits_fall_back_to_every_class():
    logits = np.random.default_rng(3).standard_normal((4, 5, 6)).astype(np.float32)
    logits[2, 1, 1] = np.nan
    assert np.array_equal(upsampled_argmax(logits, (20, 24)), _full(logits, (20, 24)))


def test_fifty_trained_model_frames_at_three_sizes(exported_trained, tmp_path):
    """Logits of the trained fixture model on 50 synthetic street scenes."""
    from fanet.core.synthetic import write_cityscapes
    from fanet.runtime import Segmenter

    write_cityscapes(str(tmp_path), "val", 50, seed=11, size=(128, 256))
    segmenter = Segmenter.from_file(str(exported_trained), backend="onnxruntime")
    compared = 0
    for path in sorted(glob.glob(str(tmp_path / "leftImg8bit/val/*/*.png"))):
        logits = segmenter.logits(cv2.imread(path))
        assert len(np.unique(logits.argmax(0))) > 1  # a street scene, not one class
        for size in [(128, 256), (512, 1024), (375, 621)]:
            assert np.array_equal(upsampled_argmax(logits, size), _full(logits, size)), path
            compared += 1
    assert compared == 150
