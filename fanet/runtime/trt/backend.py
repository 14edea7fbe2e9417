"""TensorRT backend: bindings API before 8.5, named tensors from 8.5 to 11 (Python 3.6).

Imported only when the TensorRT backend is chosen. The engine's record is checked
against this machine (TensorRT version, GPU, compute capability) before deserialising.
Every CUDA resource it uses has an owner here; ``close()`` frees them all. A bound
temporal state never leaves the GPU: after each run its outputs are copied on the device
into its inputs, and a reset uploads the initial values once.
"""

import logging
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tensorrt as trt

from fanet.core.engine_record import EngineError, check_record, read_record
from fanet.runtime.backend import Backend, BackendError, TensorSpec
from fanet.runtime.trt.cuda import (
    CudaApi,
    CudaGraph,
    DeviceBuffer,
    Event,
    PinnedBuffer,
    Stream,
    load_cuda_api,
)
from fanet.runtime.trt.io_buffers import nbytes, resolve_shape, within_profile
from fanet.runtime.trt.logger import create_runtime
from fanet.runtime.trt.machine import this_machine
from fanet.runtime.trt.versions import parse_version, runtime_plan

logger = logging.getLogger(__name__)


def _dims(dims: Any) -> Tuple[int, ...]:
    """A TensorRT ``Dims`` as a tuple of ints."""
    return tuple(int(dims[i]) for i in range(len(dims)))


class _Tensor:
    """One engine I/O tensor with its device buffer and pinned host mirror, which grow
    only when a larger shape comes."""

    def __init__(
        self, name: str, index: int, is_input: bool, dtype: np.dtype, shape: Tuple[int, ...]
    ):
        self.name = name
        self.index = index
        self.is_input = is_input
        self.dtype = dtype
        self.engine_shape = shape
        self.shape = shape
        self.device: Optional[DeviceBuffer] = None
        self.pinned: Optional[PinnedBuffer] = None

    def fit(self, cuda: CudaApi, shape: Tuple[int, ...]) -> bool:
        """Size the buffers for ``shape``; True when they were reallocated."""
        self.shape = shape
        size = nbytes(shape, self.dtype)
        if self.device is not None and self.pinned is not None and size <= self.device.nbytes:
            return False
        self.free()
        self.device = DeviceBuffer(cuda, size)
        self.pinned = PinnedBuffer(cuda, size)
        return True

    @property
    def host(self) -> np.ndarray:
        assert self.pinned is not None, "sized by fit() first"
        return self.pinned.view(self.shape, self.dtype)

    @property
    def pointer(self) -> int:
        assert self.device is not None, "sized by fit() first"
        return self.device.pointer

    def free(self) -> None:
        for owned in (self.device, self.pinned):
            if owned is not None:
                owned.free()
        self.device = self.pinned = None


class TensorRTBackend(Backend):
    """Runs a serialized engine with pinned host buffers and one CUDA stream."""

    name = "tensorrt"

    def __init__(
        self,
        engine_path: str,
        cuda: Optional[CudaApi] = None,
        cuda_graph: bool = False,
        runtime: "Optional[trt.Runtime]" = None,
    ) -> None:
        super().__init__()
        self._runtime = runtime or create_runtime()  # first: without a GPU, TensorRT says why
        self._cuda = cuda or load_cuda_api()
        self._tensors: List[_Tensor] = []
        self._stream: Optional[Stream] = None
        self._events: List[Event] = []
        self._graph: Optional[CudaGraph] = None
        self._graph_shape: Optional[Tuple[Tuple[int, ...], ...]] = None
        self._plan = runtime_plan(parse_version(trt.__version__))
        self.record = check_record(read_record(engine_path), this_machine(self._cuda), engine_path)
        try:
            with open(engine_path, "rb") as stream:
                data = stream.read()
        except OSError as exc:
            raise EngineError(
                "cannot read engine {}: {}".format(engine_path, exc.strerror)
            ) from None
        self._engine = self._runtime.deserialize_cuda_engine(data)
        if self._engine is None:
            raise EngineError(
                "TensorRT cannot deserialize {} (corrupt, truncated, or built by another "
                "TensorRT): rebuild it with fanet-build".format(engine_path)
            )
        self._context = self._engine.create_execution_context()
        self._tensors = self._describe_tensors()
        self._stream = Stream(self._cuda)
        self._cuda_graph = cuda_graph and self._plan.io_api == "named_tensors"
        self._profile = self.record.profile  # the image input's
        self._image = self.record.sidecar.input_name if self.record.sidecar else "input"
        self.device = "cuda"
        self.precision = self.record.precision or "fp32"
        self.input_specs = [self._spec(t) for t in self._tensors if t.is_input]
        self.output_specs = [self._spec(t) for t in self._tensors if not t.is_input]

    @staticmethod
    def _spec(tensor: _Tensor) -> TensorSpec:
        shape = tuple(None if d < 0 else d for d in tensor.engine_shape)
        return TensorSpec(tensor.name, shape, tensor.dtype)

    def _describe_tensors(self) -> List[_Tensor]:
        engine = self._engine
        tensors = []
        if self._plan.io_api == "bindings":  # TensorRT 8.2-8.4
            for index in range(engine.num_bindings):  # type: ignore[attr-defined]
                tensors.append(
                    _Tensor(
                        engine.get_binding_name(index),  # type: ignore[attr-defined]
                        index,
                        engine.binding_is_input(index),  # type: ignore[attr-defined]
                        np.dtype(trt.nptype(engine.get_binding_dtype(index))),  # type: ignore[attr-defined]
                        _dims(engine.get_binding_shape(index)),  # type: ignore[attr-defined]
                    )
                )
            return tensors
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            tensors.append(
                _Tensor(
                    name,
                    index,
                    engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                    np.dtype(trt.nptype(engine.get_tensor_dtype(name))),
                    _dims(engine.get_tensor_shape(name)),
                )
            )
        return tensors

    @property
    def stream(self) -> Stream:
        self.require_open()
        assert self._stream is not None
        return self._stream

    def _fit(self, tensor: _Tensor, shape: Tuple[int, ...]) -> None:
        if tensor.fit(self._cuda, shape):
            self._drop_graph()  # the captured graph holds the old addresses

    def _named(self, name: str) -> _Tensor:
        return next(tensor for tensor in self._tensors if tensor.name == name)

    def reset_state(self) -> None:
        """Upload the bound state's initial values into its input buffers."""
        for state in self.bound_state:
            tensor = self._named(state.input)
            self._fit(tensor, state.shape)
            tensor.host[...] = state.initial
            self._cuda.copy_to_device(tensor.pointer, tensor.host, self.stream.handle)

    def _set_shapes(self, inputs: Dict[str, np.ndarray]) -> None:
        carried = {state.input: state.shape for state in self.bound_state}
        for tensor in self._tensors:
            if not tensor.is_input:
                continue
            requested = carried.get(tensor.name) or inputs[tensor.name].shape
            try:
                shape = resolve_shape(tensor.engine_shape, requested)
            except ValueError as exc:
                raise BackendError(str(exc)) from None
            if (
                tensor.name == self._image
                and self._profile
                and not within_profile(shape, self._profile["min"], self._profile["max"])
            ):
                raise BackendError(
                    "input shape {} is outside the engine's profile {} .. {}".format(
                        shape, tuple(self._profile["min"]), tuple(self._profile["max"])
                    )
                )
            self._fit(tensor, shape)
            if self._plan.io_api == "bindings":
                set_shape = self._context.set_binding_shape  # type: ignore[attr-defined]
                accepted = set_shape(tensor.index, shape)
            else:
                accepted = self._context.set_input_shape(tensor.name, shape)
            if not accepted:
                raise BackendError(
                    "TensorRT rejected shape {} for input '{}' (the engine's is {}): see "
                    "TensorRT's log above".format(shape, tensor.name, tensor.engine_shape)
                )
        for tensor in self._tensors:
            if not tensor.is_input:
                if self._plan.io_api == "bindings":
                    shape = _dims(self._context.get_binding_shape(tensor.index))  # type: ignore[attr-defined]
                else:
                    shape = _dims(self._context.get_tensor_shape(tensor.name))
                self._fit(tensor, shape)

    def _enqueue(self) -> None:
        handle = self.stream.pointer
        if self._plan.io_api == "bindings":
            bindings = [0] * len(self._tensors)
            for tensor in self._tensors:
                bindings[tensor.index] = tensor.pointer
            ok = self._context.execute_async_v2(bindings, handle)  # type: ignore[attr-defined]
        else:
            for tensor in self._tensors:
                if not self._context.set_tensor_address(tensor.name, tensor.pointer):
                    raise EngineError(
                        "TensorRT rejected the device address of tensor '{}' (see its log "
                        "above)".format(tensor.name)
                    )
            ok = self._context.execute_async_v3(handle)
        if not ok:
            raise EngineError("TensorRT failed to enqueue inference")

    def enqueue_compute(self) -> None:
        """Launch inference on the stream (CUDA-graph replay when enabled)."""
        if not self._cuda_graph:
            self._enqueue()
            return
        shape = tuple(t.shape for t in self._tensors)
        if self._graph is None or self._graph_shape != shape:
            self._drop_graph()
            self._enqueue()  # TensorRT allocates its resources before capture
            self.stream.synchronize()
            self._graph = CudaGraph(self._cuda, self._enqueue, self.stream)
            self._graph_shape = shape
        self._graph.launch(self.stream)

    def _drop_graph(self) -> None:
        if self._graph is not None:
            self._graph.free()
            self._graph = None

    def infer(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        self.check_inputs(inputs)
        self._upload(inputs)
        self.enqueue_compute()
        carried = {state.output for state in self.bound_state}
        outputs = {}
        for tensor in self._tensors:
            if not tensor.is_input and tensor.name not in carried:
                host = tensor.host
                self._cuda.copy_to_host(host, tensor.pointer, self.stream.handle)
                outputs[tensor.name] = host
        for state in self.bound_state:  # the next frame's state, without leaving the GPU
            target, source = self._named(state.input), self._named(state.output)
            size = nbytes(state.shape, target.dtype)
            self._cuda.copy_on_device(target.pointer, source.pointer, size, self.stream.handle)
        self.stream.synchronize()
        return {name: array.copy() for name, array in outputs.items()}

    def _upload(self, inputs: Dict[str, np.ndarray]) -> None:
        """Set the input shapes and queue the inputs' copies to the device (a bound state
        is there already)."""
        self._set_shapes(inputs)
        carried = {state.input for state in self.bound_state}
        for tensor in self._tensors:
            if tensor.is_input and tensor.name not in carried:
                host = tensor.host
                np.copyto(host, inputs[tensor.name], casting="same_kind")
                self._cuda.copy_to_device(tensor.pointer, host, self.stream.handle)

    def compute_ms(self, inputs: Dict[str, np.ndarray]) -> Optional[float]:
        """Engine execution alone, timed with the backend's two CUDA events on its stream."""
        self.check_inputs(inputs)
        self._upload(inputs)
        if not self._events:
            self._events = [Event(self._cuda), Event(self._cuda)]
        start, end = self._events
        start.record(self.stream)
        self.enqueue_compute()
        end.record(self.stream)
        return end.ms_since(start)

    def synchronize(self) -> None:
        self.stream.synchronize()

    def _release(self) -> None:
        """Free the graph, events, buffers and stream, then the context and engine."""
        if self._stream is not None and not self._stream.freed:
            self._stream.synchronize()  # no copy may still target a buffer freed below
        self._drop_graph()
        for owned in self._events:
            owned.free()
        self._events = []
        for tensor in self._tensors:
            tensor.free()
        if self._stream is not None:
            self._stream.free()
        del self._context, self._engine, self._runtime  # TensorRT frees them with the objects
