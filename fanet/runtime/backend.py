"""The backend protocol every runtime backend implements (Python 3.6 compatible).

A backend is a context manager with ``input_specs``/``output_specs`` and
``infer({name: array}) -> {name: array}``: named tensors in and out, so that graphs
with extra state tensors (temporal attention) fit the same contract.

``bind_state(tensors)`` makes a backend keep a temporal graph's state itself, on its
device where it has one: each ``infer`` then feeds the state inputs from the state
outputs of the call before (their initial values after ``bind_state`` and
``reset_state``), and takes and returns the other tensors only. The base class keeps the
state as host arrays, which is all a CPU backend needs; device backends override
``_initial_state``, ``reset_state`` or the way ``infer`` carries it.
"""

from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from fanet.core.errors import FanetError
from fanet.core.sidecar import StateTensor


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
        self._state: Tuple[StateTensor, ...] = ()
        self._state_values: Dict[str, Any] = {}

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

    @property
    def bound_state(self) -> Tuple[StateTensor, ...]:
        """The state tensors the backend carries between calls (empty: none)."""
        return self._state

    def bind_state(self, tensors: Sequence[StateTensor]) -> None:
        """Carry ``tensors`` from each call to the next, starting at their initial values;
        ``BackendError`` where the model has no such input and output of that shape."""
        self.require_open()
        for tensor in tensors:
            _check_state_spec(tensor.input, tensor.shape, self.input_specs)
            _check_state_spec(tensor.output, tensor.shape, self.output_specs)
        self._state = tuple(tensors)
        self.reset_state()

    def reset_state(self) -> None:
        """Forget the earlier frames: every bound state tensor back to its initial value."""
        self._state_values = {t.input: self._initial_state(t) for t in self._state}

    def unbind_state(self) -> None:
        """Stop carrying state: ``infer`` takes every input again."""
        self._state, self._state_values = (), {}

    def _initial_state(self, tensor: StateTensor) -> Any:
        return np.full(tensor.shape, tensor.initial, np.float32)

    def _with_state(self, inputs: Dict[str, np.ndarray]) -> Dict[str, Any]:
        """``inputs`` and the bound state's current values."""
        if not self._state:
            return inputs
        return dict(inputs, **self._state_values)

    def _carry_state(self, outputs: Dict[str, Any]) -> Dict[str, Any]:
        """``outputs`` without the bound state's, which become the next call's inputs."""
        for tensor in self._state:
            self._state_values[tensor.input] = outputs.pop(tensor.output)
        return outputs

    def describe(self) -> str:
        return "{} ({}, {})".format(self.name, self.device, self.precision)

    def host_feed(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """``inputs`` checked (``check_inputs``), without the bound state's, each
        C-contiguous in its spec's dtype."""
        self.check_inputs(inputs)
        carried = {tensor.input for tensor in self._state}
        return {
            spec.name: np.ascontiguousarray(inputs[spec.name], dtype=spec.dtype)
            for spec in self.input_specs
            if spec.name not in carried
        }

    def check_inputs(self, inputs: Dict[str, np.ndarray]) -> None:
        """Raise ``BackendError`` unless the backend is open and ``inputs`` match
        ``input_specs`` (names, rank, size)."""
        self.require_open()
        carried = {tensor.input for tensor in self._state}
        for spec in self.input_specs:
            if spec.name in carried:
                continue
            if spec.name not in inputs:
                raise BackendError("missing input {!r}".format(spec.name))
            shape = inputs[spec.name].shape
            expected = spec.shape
            if len(shape) != len(expected) or any(
                want is not None and want != got for want, got in zip(expected, shape)
            ):
                raise BackendError(
                    "input {!r} has shape {}, the model expects {}".format(
                        spec.name, tuple(shape), _shape_text(expected)
                    )
                )


def _check_state_spec(name: str, shape: Sequence[int], specs: List[TensorSpec]) -> None:
    spec = next((s for s in specs if s.name == name), None)
    if spec is None:
        raise BackendError("the model has no state tensor {!r}".format(name))
    if not _fits(spec.shape, shape):
        raise BackendError(
            "state tensor {!r} is {} in the model, not {}".format(
                name, _shape_text(spec.shape), _shape_text(shape)
            )
        )


def _fits(model_shape: Sequence[Optional[int]], shape: Sequence[int]) -> bool:
    """Whether ``shape`` fits a spec's shape (None: any size)."""
    return len(model_shape) == len(shape) and all(
        want is None or want == got for want, got in zip(model_shape, shape)
    )


def _shape_text(shape: Sequence[Optional[int]]) -> str:
    return "({})".format(", ".join("?" if d is None else str(d) for d in shape))
