"""Labels at the image's size from low-resolution logits, exact and fast (Python 3.6).

``upsampled_argmax(logits, size)`` equals ``resize_align_corners(logits, size).argmax(0)``
(the authors' bilinear, align-corners upsampling, then argmax) on every pixel, ties
included, at a fraction of its cost.

Every output pixel lies in one cell of the low-resolution grid, and its value for a class
is a convex combination of that class's values at the cell's four corners. A class whose
highest corner is below another class's lowest corner, by more than float32 rounding can
undo, therefore loses everywhere in the cell. Most cells keep a single class and are filled
with it; in the others only the classes kept are interpolated, with the same float32
operations in the same order as ``resize_align_corners``, and the first maximum wins.
"""

import threading
from functools import lru_cache
from typing import Any, NamedTuple, Tuple

import numpy as np

from fanet.core.resize import axis_weights, resize_align_corners

ROUNDING_MARGIN = 32 * float(np.finfo(np.float32).eps)  # x max |logit|: safely above the
# error of two float32 linear interpolations, so a class beaten by more is beaten after it
CHUNK_CELLS = 512  # mixed cells interpolated together: their buffers stay in the CPU cache
_BUFFERS = threading.local()  # scratch arrays reused by the next call in the same thread


class _Axis(NamedTuple):
    """One axis of a resize, as runs of output positions that share a low-resolution cell."""

    low: np.ndarray  # runs: the cell's first low-resolution index
    weight: np.ndarray  # longest run x runs: each position's weight, repeated to pad a run
    inverse: np.ndarray  # 1 - weight, in float32 as resize_align_corners computes it
    place: np.ndarray  # output position -> offset in its run x runs + run


@lru_cache(maxsize=16)
def _axis(size_in: int, size_out: int) -> _Axis:
    low, _, weight = axis_weights(size_in, size_out)
    starts = np.flatnonzero(np.concatenate([[True], np.diff(low) != 0]))
    lengths = np.diff(np.append(starts, size_out))
    run = np.repeat(np.arange(len(starts)), lengths)
    offsets = np.arange(int(lengths.max()))[:, None]
    padded = np.minimum(starts + offsets, starts + lengths - 1)
    place = (np.arange(size_out) - starts[run]) * len(starts) + run
    axis = _Axis(low[starts], weight[padded], (1 - weight)[padded], place)
    for array in axis:
        array.flags.writeable = False  # shared by every call of the same size
    return axis


def upsampled_argmax(logits: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """``resize_align_corners(logits, size).argmax(0)`` as H x W uint8, bit for bit."""
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    smallest, largest = float(logits.min()), float(logits.max())
    if not np.isfinite([smallest, largest]).all():  # no margins to trust: every class
        return resize_align_corners(logits, size).argmax(0).astype(np.uint8)
    rows, cols = _axis(logits.shape[1], size[0]), _axis(logits.shape[2], size[1])
    padded = _edge_padded(logits)
    kept = _cell_classes(padded, rows, cols, ROUNDING_MARGIN * max(-smallest, largest))
    count = kept.view(np.uint8).sum(0, dtype=np.uint16)  # at least 1: the best lowest corner
    shape = (rows.weight.shape[0], len(rows.low), cols.weight.shape[0], len(cols.low))
    canvas = _scratch("canvas", shape, np.uint8)  # row offset, row cell, column offset, cell
    canvas[...] = _sole_class(kept)[None, :, None, :]
    cell_row, cell_col = np.nonzero(count > 1)
    if len(cell_row):
        most_first = np.argsort(count.max() - count[cell_row, cell_col], kind="stable")  # radix
        cell_row, cell_col = cell_row[most_first], cell_col[most_first]
        labels = _mixed_cells(padded, kept[:, cell_row, cell_col], cell_row, cell_col, rows, cols)
        canvas[:, cell_row, :, cell_col] = labels.transpose(2, 0, 1)
    canvas = canvas.reshape(canvas.shape[0] * canvas.shape[1], -1)
    by_rows = canvas.take(rows.place, 0, out=_scratch("rows", (size[0], canvas.shape[1]), np.uint8))
    return by_rows.take(cols.place, 1)


def _cell_classes(padded: np.ndarray, rows: _Axis, cols: _Axis, tolerance: float) -> np.ndarray:
    """classes x cells x cells: may the class win somewhere in the cell, its highest corner
    not below the best lowest corner less ``tolerance``."""
    corners = [_corner(padded, rows.low, cols.low, dy, dx) for dy in (0, 1) for dx in (0, 1)]
    lowest, highest, two = (_scratch(name, corners[0].shape, np.float32) for name in "lht")
    np.minimum(corners[0], corners[1], out=lowest)
    np.minimum(lowest, np.minimum(corners[2], corners[3], out=two), out=lowest)
    np.maximum(corners[0], corners[1], out=highest)
    np.maximum(highest, np.maximum(corners[2], corners[3], out=two), out=highest)
    floor = lowest.max(0) - tolerance
    return np.greater_equal(highest, floor, out=_scratch("kept", highest.shape, np.bool_))


def _sole_class(kept: np.ndarray) -> np.ndarray:
    """cells x cells uint8: the class kept, where a cell keeps one (elsewhere, no meaning);
    the sum of class x kept is 15 times faster than argmax over the class axis."""
    classes = np.arange(kept.shape[0], dtype=np.uint8)[:, None, None]
    return np.multiply(kept, classes, out=_scratch("sole", kept.shape, np.uint8)).sum(
        0, dtype=np.uint8
    )


def _scratch(name: str, shape: Tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array in this thread's reusable buffer ``name``. Fresh memory costs
    a page fault per 4 KiB page, about a third of the time of a 512 x 1024 frame."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = getattr(_BUFFERS, name, None)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, np.uint8)
        setattr(_BUFFERS, name, buffer)
    return buffer[:size].view(dtype).reshape(shape)


def _edge_padded(logits: np.ndarray) -> np.ndarray:
    """classes x (h + 1) x (w + 1): the last row and column repeated, as the clamped
    ``high`` index of ``axis_weights`` reads them."""
    classes, height, width = logits.shape
    padded = _scratch("padded", (classes, height + 1, width + 1), np.float32)
    padded[:, :height, :width] = logits
    padded[:, height, :width] = logits[:, height - 1]
    padded[:, :, width] = padded[:, :, width - 1]
    return padded


def _corner(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """classes x row cells x column cells: the values at each cell's (dy, dx) corner."""
    return padded[:, _shifted(rows, dy)][:, :, _shifted(cols, dx)]


def _shifted(low: np.ndarray, shift: int) -> Any:
    """``low + shift`` as a slice (a view) where the cells are consecutive (upsampling)."""
    if low[-1] - low[0] + 1 == len(low):
        return slice(int(low[0]) + shift, int(low[-1]) + 1 + shift)
    return low + shift


def _mixed_cells(
    padded: np.ndarray,
    kept: np.ndarray,
    cell_row: np.ndarray,
    cell_col: np.ndarray,
    rows: _Axis,
    cols: _Axis,
) -> np.ndarray:
    """row offset x column offset x cells: the labels of cells that keep several classes.

    The cells come ordered by their number of classes kept, most first, so the cells that
    still have a k-th class are a prefix. Classes rise with k, so a class that beats the
    best so far is also the largest label so far, and ``maximum`` keeps the first maximum."""
    cell, label = np.nonzero(kept.T)  # by cell, then class
    counts = np.bincount(cell, minlength=len(cell_row))
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    _, height, width = padded.shape
    base = (label * height + rows.low[cell_row[cell]]) * width + cols.low[cell_col[cell]]
    flat = padded.reshape(-1)
    corners = [flat[base], flat[base + width], flat[base + 1], flat[base + width + 1]]
    # take, not [:, cells]: fancy indexing on axis 1 returns a column-major array, and the
    # broadcast products below then run three times slower
    row_weight, row_inverse = rows.weight.take(cell_row, 1), rows.inverse.take(cell_row, 1)
    col_weight, col_inverse = cols.weight.take(cell_col, 1), cols.inverse.take(cell_col, 1)
    out = _scratch("mixed", (rows.weight.shape[0], cols.weight.shape[0], len(cell_row)), np.uint8)
    buffer_shape = out.shape[:2] + (min(CHUNK_CELLS, len(cell_row)),)
    best, value, term = (_scratch(name, buffer_shape, np.float32) for name in "bvt")
    higher = _scratch("higher", buffer_shape, np.bool_)
    for start in range(0, len(cell_row), CHUNK_CELLS):
        chunk = slice(start, start + CHUNK_CELLS)
        for k in range(int(counts[start])):
            n = int(np.count_nonzero(counts[chunk] > k))
            pair, cells = first[start : start + n] + k, slice(start, start + n)
            top_left, bottom_left, top_right, bottom_right = (c[pair] for c in corners)
            left = top_left * row_inverse[:, cells] + bottom_left * row_weight[:, cells]
            right = top_right * row_inverse[:, cells] + bottom_right * row_weight[:, cells]
            v = best[:, :, :n] if k == 0 else value[:, :, :n]
            t = term[:, :, :n]
            np.multiply(left[:, None], col_inverse[None, :, cells], out=v)
            np.multiply(right[:, None], col_weight[None, :, cells], out=t)
            v += t
            labels = out[:, :, cells]
            if k == 0:
                labels[...] = label[pair]
                continue
            np.greater(v, best[:, :, :n], out=higher[:, :, :n])
            np.maximum(labels, higher[:, :, :n] * label[pair].astype(np.uint8), out=labels)
            still = int(np.count_nonzero(counts[chunk] > k + 1))  # cells with a next class
            np.maximum(best[:, :, :still], v[:, :, :still], out=best[:, :, :still])
    return out
