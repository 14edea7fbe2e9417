"""Buffer shapes for engine I/O and the align-corners resize."""

import numpy as np
import pytest

from fanet.core.postprocess import upsampled_argmax
from fanet.core.resize import resize_align_corners
from fanet.runtime.trt.io_buffers import nbytes, resolve_shape, within_profile


def test_dynamic_dimensions_take_the_input_size():
    assert resolve_shape((1, 3, -1, -1), (1, 3, 512, 1024)) == (1, 3, 512, 1024)
    assert nbytes((1, 19, 64, 128), np.float16) == 19 * 64 * 128 * 2
    with pytest.raises(ValueError, match="does not fit"):
        resolve_shape((1, 3, 512, 1024), (1, 3, 256, 512))
    with pytest.raises(ValueError, match="rank differs"):
        resolve_shape((1, 3, -1, -1), (3, 256, 512))


def test_profile_bounds():
    assert within_profile((1, 3, 512, 1024), (1, 3, 256, 512), (1, 3, 1024, 2048))
    assert not within_profile((1, 3, 2048, 1024), (1, 3, 256, 512), (1, 3, 1024, 2048))


SIZES = [(96, 160), (97, 163), (12, 20), (1, 7)]


def _maps():
    return np.random.default_rng(0).standard_normal((5, 12, 20)).astype(np.float32)


@pytest.mark.parametrize("size", SIZES)
def test_resize_matches_torch_align_corners(size):
    """The authors' code upsamples with PyTorch: the reference (host side only)."""
    torch = pytest.importorskip("torch", reason="PyTorch's interpolate is the reference")
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(_maps())[None], size=size, mode="bilinear", align_corners=True
    )[0].numpy()
    np.testing.assert_allclose(resize_align_corners(_maps(), size), expected, atol=1e-5)


@pytest.mark.parametrize("size", SIZES)
def test_resize_is_align_corners_bilinear_in_float64(size):
    """Each output pixel (y, x) samples the input at y (h-1)/(H-1), x (w-1)/(W-1)."""
    maps = _maps().astype(np.float64)
    height, width = maps.shape[1:]
    expected = np.empty((maps.shape[0],) + size)
    for y in range(size[0]):
        for x in range(size[1]):
            sy = y * (height - 1) / max(size[0] - 1, 1)
            sx = x * (width - 1) / max(size[1] - 1, 1)
            y0, x0 = min(int(sy), height - 2), min(int(sx), width - 2)
            dy, dx = sy - y0, sx - x0
            top = maps[:, y0, x0] * (1 - dx) + maps[:, y0, x0 + 1] * dx
            bottom = maps[:, y0 + 1, x0] * (1 - dx) + maps[:, y0 + 1, x0 + 1] * dx
            expected[:, y, x] = top * (1 - dy) + bottom * dy
    np.testing.assert_allclose(resize_align_corners(_maps(), size), expected, atol=1e-5)


def test_blocked_argmax_equals_argmax_of_the_full_resize():
    logits = np.random.default_rng(1).standard_normal((19, 16, 32)).astype(np.float32)
    expected = resize_align_corners(logits, (100, 250)).argmax(0)
    labels = upsampled_argmax(logits, (100, 250))
    assert labels.dtype == np.uint8 and (labels == expected).all()
