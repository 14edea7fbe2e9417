"""Bilinear resize with align_corners=True, exact in float32 (Python 3.6 compatible).

The training code upsamples logits this way; OpenCV's resize uses half-pixel centres and
fixed-point weights, which shift labels and flip near-ties.
"""

from typing import Any, List, Tuple

import numpy as np


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

    def block(self, start: int, stop: int, classes: Any = slice(None)) -> np.ndarray:
        """Output rows [start, stop) of the ``classes`` maps: C' x (stop - start) x W."""
        low, high, weight = (part[start:stop] for part in self.rows)
        weight = weight[:, None]
        maps = self.maps[classes]
        rows = maps[:, low] * (1 - weight) + maps[:, high] * weight
        cols_low, cols_high, col_weight = self.cols
        return rows[:, :, cols_low] * (1 - col_weight) + rows[:, :, cols_high] * col_weight


def resize_align_corners(maps: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """C x h x w float maps -> C x H x W, bilinear, corners aligned."""
    return _Resizer(maps, size).block(0, size[0])


def upsampled_argmax(logits: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """``resize_align_corners(logits, size).argmax(0)`` as H x W uint8, bit for bit, at a
    fraction of its cost: only the classes that can win somewhere in a band of output
    rows are interpolated there.

    A class is left out of the band between low-resolution rows i and i+1 when, in every
    cell of that band, one of the classes that win at the cell's corners beats it at all
    four corners by more than the float32 rounding of the interpolation can undo. The
    interpolated value is a convex combination of the corners', so the winner beats it at
    every pixel of the cell; the classes kept are interpolated exactly as
    ``resize_align_corners`` does, so their values and ties are the same.
    """
    if not np.isfinite(logits).all():  # no margins to trust: every class, as before
        return resize_align_corners(logits, size).argmax(0).astype(np.uint8)
    resizer = _Resizer(logits, size)
    low_rows = resizer.rows[0]
    candidates = _band_candidates(logits)
    labels = np.empty(size, np.uint8)
    for start, stop in _bands(low_rows):
        kept = np.flatnonzero(candidates[:, low_rows[start]])
        if len(kept) == 1:  # one class wins everywhere in the band
            labels[start:stop] = kept[0]
        else:
            labels[start:stop] = _first_argmax(resizer.block(start, stop, kept), kept)
    return labels


def _first_argmax(values: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """``kept[values.argmax(0)]`` (the first maximum wins), faster for a few classes."""
    best, labels = values[0].copy(), np.full(values.shape[1:], kept[0], np.uint8)
    for value, label in zip(values[1:], kept[1:]):
        higher = value > best
        np.copyto(best, value, where=higher)
        labels[higher] = label
    return labels


ROUNDING_MARGIN = 32 * float(np.finfo(np.float32).eps)  # x max |logit|: safely above the
# error of two float32 linear interpolations, so a class beaten by more is beaten after it


def _band_candidates(logits: np.ndarray) -> np.ndarray:
    """classes x rows boolean: may the class win between low-res rows i and i+1?"""
    classes, height, width = logits.shape
    tolerance = ROUNDING_MARGIN * float(np.abs(logits).max())
    below = np.minimum(np.arange(height) + 1, height - 1)
    right = np.minimum(np.arange(width) + 1, width - 1)
    corners = [logits, logits[:, below], logits[:, :, right], logits[:, below][:, :, right]]
    beaten = np.zeros(logits.shape, bool)
    for winner in (corner.argmax(0)[None] for corner in corners):
        beaten |= np.logical_and.reduce(
            [np.take_along_axis(c, winner, 0) - c > tolerance for c in corners]
        )
    return np.logical_not(beaten.all(axis=2))


def _bands(low_rows: np.ndarray) -> List[Tuple[int, int]]:
    """[start, stop) of the runs of output rows that share a low-resolution row."""
    edges = np.flatnonzero(np.diff(low_rows)) + 1
    bounds = [0] + edges.tolist() + [len(low_rows)]
    return list(zip(bounds[:-1], bounds[1:]))
