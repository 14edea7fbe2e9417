"""The backend protocol every runtime backend implements (Python 3.6 compatible).

A backend is a context manager with ``input_specs``/``output_specs`` and
``infer({name: array}) -> {name: array}``: named tensors in and out, so that graphs
with extra state tensors (temporal attention) fit the same contract.
"""

from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from fanet.core.errors import FanetError


class BackendError(FanetError):
    """A backend cannot be opened or cannot run a model."""


class TensorSpec(NamedTuple):
    """Name, shape (None for a dynamic dimension) and numpy dtype of an I/O tensor."""

    name: str
    shape: Tuple[Optional[int], ...]
    dtype: np.dtype


class Backend:
    """Base class: subclasses set ``name``, ``device``, ``precision`` and the specs."""

    name = "backend"

    def __init__(self) -> None:
        self._closed = False
        self.device = "cpu"
        self.precision = "fp32"
        self.input_specs: List[TensorSpec] = []
        self.output_specs: List[TensorSpec] = []

    def infer(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def compute_ms(self, inputs: Dict[str, np.ndarray]) -> Optional[float]:
        """GPU compute time of one inference from CUDA events, inputs already on the device;
        None where the backend has no separate device compute (CPU: it equals latency)."""
        return None

    def synchronize(self) -> None:
        """Wait for queued device work (no-op on the CPU)."""

    def close(self) -> None:
        """Release device memory and sessions; a second call does nothing."""
        if not self._closed:
            self._closed = True
            self._release()

    def _release(self) -> None:
        """Free what the backend holds (called once, by ``close``)."""

    @property
    def closed(self) -> bool:
        return self._closed

    def require_open(self) -> None:
        """Raise ``BackendError`` once the backend is closed."""
        if self._closed:
            raise BackendError("the {} backend is closed".format(self.name))

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def describe(self) -> str:
        return "{} ({}, {})".format(self.name, self.device, self.precision)

    def check_inputs(self, inputs: Dict[str, np.ndarray]) -> None:
        """Raise ``BackendError`` unless the backend is open and ``inputs`` match
        ``input_specs`` (names, rank, size)."""
        self.require_open()
        for spec in self.input_specs:
            if spec.name not in inputs:
                raise BackendError("missing input {!r}".format(spec.name))
            shape = inputs[spec.name].shape
            expected = spec.shape
            if len(shape) != len(expected) or any(
                want is not None and want != got for want, got in zip(expected, shape)
            ):
                raise BackendError(
                    "input {!r} has shape {}, the model expects {}".format(
                        spec.name, tuple(shape), tuple("?" if d is None else d for d in expected)
                    )
                )
