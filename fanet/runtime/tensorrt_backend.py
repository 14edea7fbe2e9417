"""TensorRT backend: bindings API before 8.5, named tensors from 8.5 to 11 (Python 3.6).

Imported only when the TensorRT backend is chosen. The engine's record is checked
against this machine (TensorRT version, GPU, compute capability) before deserialising.
"""

import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tensorrt as trt

from fanet.runtime.backend import Backend, BackendError, TensorSpec
from fanet.runtime.cuda_memory import CudaRuntime, load_cuda_runtime
from fanet.runtime.engine_record import EngineError, check_record, read_record
from fanet.runtime.io_buffers import nbytes, resolve_shape, within_profile
from fanet.runtime.trt_versions import parse_version, runtime_plan

logger = logging.getLogger(__name__)


class PythonLogger(trt.ILogger):
    """Routes TensorRT's log to Python logging (``fanet.tensorrt``)."""

    _LEVELS = {
        trt.ILogger.Severity.INTERNAL_ERROR: logging.CRITICAL,
        trt.ILogger.Severity.ERROR: logging.ERROR,
        trt.ILogger.Severity.WARNING: logging.WARNING,
        trt.ILogger.Severity.INFO: logging.DEBUG,
        trt.ILogger.Severity.VERBOSE: logging.DEBUG - 5,
    }

    def __init__(self) -> None:
        trt.ILogger.__init__(self)
        self._logger = logging.getLogger("fanet.tensorrt")

    def log(self, severity: Any, msg: str) -> None:
        self._logger.log(self._LEVELS.get(severity, logging.INFO), "%s", msg)


TRT_LOGGER = PythonLogger()


def machine_info(cuda: CudaRuntime) -> Dict[str, str]:
    """The fields an engine record must match: TensorRT version, GPU, compute capability."""
    name, capability = cuda.device_properties()
    return {"tensorrt_version": trt.__version__, "gpu_name": name, "compute_capability": capability}


def _dims(dims: Any) -> Tuple[int, ...]:
    """A TensorRT ``Dims`` as a tuple of ints."""
    return tuple(int(dims[i]) for i in range(len(dims)))


class _Tensor:
    """One engine I/O tensor with its device buffer and pinned host mirror."""

    def __init__(
        self, name: str, index: int, is_input: bool, dtype: np.dtype, shape: Tuple[int, ...]
    ):
        self.name = name
        self.index = index
        self.is_input = is_input
        self.dtype = dtype
        self.engine_shape = shape
        self.shape = shape
        self.device = 0
        self.capacity = 0
        self.host = np.empty(0, dtype)  # pinned once sized


class TensorRTBackend(Backend):
    """Runs a serialized engine with pinned host buffers and one CUDA stream."""

    name = "tensorrt"

    def __init__(
        self, engine_path: str, cuda: Optional[CudaRuntime] = None, cuda_graph: bool = False
    ):
        super().__init__()
        self._cuda = cuda or load_cuda_runtime()
        self._plan = runtime_plan(parse_version(trt.__version__))
        record = read_record(engine_path)
        check_record(record, machine_info(self._cuda), engine_path)
        try:
            with open(engine_path, "rb") as stream:
                data = stream.read()
        except OSError as exc:
            raise EngineError(
                "cannot read engine {}: {}".format(engine_path, exc.strerror)
            ) from None
        self._runtime = trt.Runtime(TRT_LOGGER)
        self._engine = self._runtime.deserialize_cuda_engine(data)
        if self._engine is None:
            raise EngineError(
                "TensorRT cannot deserialize {} (corrupt, truncated, or built by another "
                "TensorRT): rebuild it with fanet-build".format(engine_path)
            )
        self._context = self._engine.create_execution_context()
        self._stream = self._cuda.create_stream()
        self._tensors: List[_Tensor] = self._describe_tensors()
        self._cuda_graph = cuda_graph and self._plan.io_api == "named_tensors"
        self._graph: Any = None
        self._graph_shape: Optional[Tuple[Tuple[int, ...], ...]] = None
        self._profile = (record or {}).get("profile")
        self.device = "cuda"
        self.precision = (record or {}).get("precision", "fp32")
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

    def _ensure_capacity(self, tensor: _Tensor, shape: Tuple[int, ...]) -> None:
        size = nbytes(shape, tensor.dtype)
        if size > tensor.capacity:
            if tensor.device:
                self._cuda.free(tensor.device)
            tensor.device = self._cuda.malloc(size)
            tensor.capacity = size
            self._graph = None
        if tensor.host.shape != shape:
            tensor.host = self._cuda.pinned_empty(shape, tensor.dtype)
        tensor.shape = shape

    def _set_shapes(self, inputs: Dict[str, np.ndarray]) -> None:
        for tensor in self._tensors:
            if not tensor.is_input:
                continue
            try:
                shape = resolve_shape(tensor.engine_shape, inputs[tensor.name].shape)
            except ValueError as exc:
                raise BackendError(str(exc)) from None
            if self._profile and not within_profile(
                shape, self._profile["min"], self._profile["max"]
            ):
                raise BackendError(
                    "input shape {} is outside the engine's profile {} .. {}".format(
                        shape, tuple(self._profile["min"]), tuple(self._profile["max"])
                    )
                )
            self._ensure_capacity(tensor, shape)
            if self._plan.io_api == "bindings":
                self._context.set_binding_shape(tensor.index, shape)  # type: ignore[attr-defined]
            else:
                self._context.set_input_shape(tensor.name, shape)
        for tensor in self._tensors:
            if not tensor.is_input:
                if self._plan.io_api == "bindings":
                    shape = _dims(self._context.get_binding_shape(tensor.index))  # type: ignore[attr-defined]
                else:
                    shape = _dims(self._context.get_tensor_shape(tensor.name))
                self._ensure_capacity(tensor, shape)

    def _enqueue(self) -> None:
        handle = self._cuda.stream_handle(self._stream)
        if self._plan.io_api == "bindings":
            bindings = [0] * len(self._tensors)
            for tensor in self._tensors:
                bindings[tensor.index] = tensor.device
            ok = self._context.execute_async_v2(bindings, handle)  # type: ignore[attr-defined]
        else:
            for tensor in self._tensors:
                self._context.set_tensor_address(tensor.name, tensor.device)
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
            self._enqueue()  # TensorRT allocates its resources before capture
            self._cuda.synchronize(self._stream)
            self._graph = self._cuda.capture_graph(self._enqueue, self._stream)
            self._graph_shape = shape
        self._cuda.launch_graph(self._graph, self._stream)

    def infer(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        self.check_inputs(inputs)
        self._upload(inputs)
        self.enqueue_compute()
        outputs = {}
        for tensor in self._tensors:
            if not tensor.is_input:
                self._cuda.copy_to_host(tensor.host, tensor.device, self._stream)
                outputs[tensor.name] = tensor.host
        self._cuda.synchronize(self._stream)
        return {name: array.copy() for name, array in outputs.items()}

    def _upload(self, inputs: Dict[str, np.ndarray]) -> None:
        """Set the input shapes and queue the inputs' copies to the device."""
        self._set_shapes(inputs)
        for tensor in self._tensors:
            if tensor.is_input:
                np.copyto(tensor.host, inputs[tensor.name], casting="same_kind")
                self._cuda.copy_to_device(tensor.device, tensor.host, self._stream)

    def compute_ms(self, inputs: Dict[str, np.ndarray]) -> Optional[float]:
        """Engine execution alone, timed with CUDA events on the backend's stream."""
        self._upload(inputs)
        start, end = self._cuda.create_event(), self._cuda.create_event()
        self._cuda.record(start, self._stream)
        self.enqueue_compute()
        self._cuda.record(end, self._stream)
        return self._cuda.elapsed_ms(start, end)

    def synchronize(self) -> None:
        self._cuda.synchronize(self._stream)

    def close(self) -> None:
        """Free the device buffers; the engine goes with the backend object."""
        self._graph = None
        for tensor in getattr(self, "_tensors", []):
            if tensor.device:
                self._cuda.free(tensor.device)
                tensor.device = 0
                tensor.capacity = 0


def open_tensorrt(
    path: str,
    precision: Optional[str] = None,
    rebuild: bool = False,
    cache_dir: Optional[str] = None,
    input_size: Optional[Tuple[int, int]] = None,
    cuda_graph: bool = False,
    **build_options: Any,
) -> TensorRTBackend:
    """A TensorRT backend for an engine, or for an ONNX through the engine cache."""
    from fanet.export.engine_builder import engine_for_onnx, rebuild_engine
    from fanet.runtime.engine_record import EngineMismatchError

    cuda = load_cuda_runtime()
    if path.lower().endswith(".onnx"):
        path = engine_for_onnx(
            path, precision or "fp32", cache_dir=cache_dir, input_size=input_size, **build_options
        )
    elif not os.path.isfile(path):
        raise EngineError("engine not found: {}".format(path))
    try:
        return TensorRTBackend(path, cuda=cuda, cuda_graph=cuda_graph)
    except EngineMismatchError:
        if not rebuild:
            raise
        logger.warning("rebuilding %s for this machine", path)
        rebuild_engine(path)
        return TensorRTBackend(path, cuda=cuda, cuda_graph=cuda_graph)
