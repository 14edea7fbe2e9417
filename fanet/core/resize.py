"""Bilinear resize with align_corners=True, exact in float32 (Python 3.6 compatible).

The training code upsamples logits this way; OpenCV's resize uses half-pixel centres and
fixed-point weights, which shift labels and flip near-ties.
"""

from typing import Tuple

import numpy as np


def axis_weights(size_in: int, size_out: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output position along one axis: the low and high input indices and the
    float32 weight of the high one."""
    if size_out == 1 or size_in == 1:
        position = np.zeros(size_out, np.float32)
    else:
        position = np.arange(size_out, dtype=np.float32) * ((size_in - 1) / (size_out - 1))
    low = np.minimum(np.floor(position).astype(np.int64), size_in - 1)
    high = np.minimum(low + 1, size_in - 1)
    return low, high, (position - low).astype(np.float32)


def resize_align_corners(maps: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """C x h x w float maps -> C x H x W, bilinear, corners aligned: rows, then columns."""
    row_low, row_high, row_weight = axis_weights(maps.shape[1], size[0])
    col_low, col_high, col_weight = axis_weights(maps.shape[2], size[1])
    row_weight = row_weight[:, None]
    rows = maps[:, row_low] * (1 - row_weight) + maps[:, row_high] * row_weight
    return rows[:, :, col_low] * (1 - col_weight) + rows[:, :, col_high] * col_weight
