"""Host/device buffer sizing for engine I/O (pure, Python 3.6 compatible)."""

from typing import Sequence, Tuple

import numpy as np


def resolve_shape(engine_shape: Sequence[int], requested: Sequence[int]) -> Tuple[int, ...]:
    """An engine dimension of -1 takes the requested size; fixed ones must match."""
    if len(engine_shape) != len(requested):
        raise ValueError(
            "rank differs: engine {} vs input {}".format(tuple(engine_shape), tuple(requested))
        )
    resolved = []
    for fixed, wanted in zip(engine_shape, requested):
        if fixed >= 0 and fixed != wanted:
            raise ValueError(
                "input shape {} does not fit the engine's {}".format(
                    tuple(requested), tuple(engine_shape)
                )
            )
        resolved.append(int(wanted))
    return tuple(resolved)


def nbytes(shape: Sequence[int], dtype: np.dtype) -> int:
    """Bytes of a dense tensor."""
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def within_profile(shape: Sequence[int], minimum: Sequence[int], maximum: Sequence[int]) -> bool:
    """Whether ``shape`` lies inside an optimization profile's [min, max] box."""
    return all(lo <= s <= hi for s, lo, hi in zip(shape, minimum, maximum))
