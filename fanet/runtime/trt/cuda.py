"""CUDA memory, streams, events and graphs, each with one owner that frees it (Python 3.6).

``CudaApi`` is the handful of raw calls the TensorRT backend needs; ``CudaPythonApi``
and ``PyCudaApi`` implement them. Code never holds a raw handle: it holds an owner
(``DeviceBuffer``, ``PinnedBuffer``, ``Stream``, ``Event``, ``CudaGraph``) whose
``free()`` releases it once (later calls do nothing), also as a context manager.
"""

import ctypes
from typing import Any, Callable, Optional, Tuple

import numpy as np

from fanet.core.errors import MissingDependencyError
from fanet.runtime.backend import BackendError

NO_GPU = "no usable CUDA GPU was found"


class NoGpuError(BackendError):
    """CUDA cannot start here: no GPU, a busy or mismatched driver, or a container without
    the GPU (``docker run --runtime nvidia``)."""


class CudaApi:
    """The raw calls; handles are opaque values owned by the classes below."""

    name = "cuda"

    def malloc(self, nbytes: int) -> Any:
        raise NotImplementedError

    def free(self, handle: Any) -> None:
        raise NotImplementedError

    def device_pointer(self, handle: Any) -> int:
        raise NotImplementedError

    def malloc_host(self, nbytes: int) -> Tuple[Any, np.ndarray]:
        """A pinned allocation: (handle, uint8 array over its bytes)."""
        raise NotImplementedError

    def free_host(self, handle: Any) -> None:
        raise NotImplementedError

    def stream_create(self) -> Any:
        raise NotImplementedError

    def stream_destroy(self, handle: Any) -> None:
        raise NotImplementedError

    def stream_pointer(self, handle: Any) -> int:
        raise NotImplementedError

    def stream_synchronize(self, handle: Any) -> None:
        raise NotImplementedError

    def event_create(self) -> Any:
        raise NotImplementedError

    def event_destroy(self, handle: Any) -> None:
        raise NotImplementedError

    def event_record(self, event: Any, stream: Any) -> None:
        raise NotImplementedError

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two recorded events, after waiting for ``end``."""
        raise NotImplementedError

    def copy_to_device(self, pointer: int, host: np.ndarray, stream: Any) -> None:
        raise NotImplementedError

    def copy_to_host(self, host: np.ndarray, pointer: int, stream: Any) -> None:
        raise NotImplementedError

    def copy_on_device(self, target: int, source: int, nbytes: int, stream: Any) -> None:
        """Queue a device-to-device copy of ``nbytes``."""
        raise NotImplementedError

    def graph_capture(self, enqueue: Callable[[], None], stream: Any) -> Any:
        raise BackendError("CUDA graphs need cuda-python (pip install cuda-python)")

    def graph_launch(self, handle: Any, stream: Any) -> None:
        raise NotImplementedError

    def graph_destroy(self, handle: Any) -> None:
        raise NotImplementedError

    def device_properties(self) -> Tuple[str, str]:
        """(GPU name, compute capability "major.minor") of device 0."""
        raise NotImplementedError


class _Owned:
    """Holds one handle and releases it exactly once."""

    kind = "handle"

    def __init__(self, api: CudaApi, handle: Any) -> None:
        self._api = api
        self._handle = handle

    @property
    def handle(self) -> Any:
        if self._handle is None:
            raise BackendError("this CUDA {} was already freed".format(self.kind))
        return self._handle

    @property
    def freed(self) -> bool:
        return self._handle is None

    def free(self) -> None:
        """Release the handle (a second call does nothing)."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            self._release(handle)

    def _release(self, handle: Any) -> None:
        raise NotImplementedError

    def __enter__(self) -> "_Owned":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.free()


class DeviceBuffer(_Owned):
    """``nbytes`` of device memory."""

    kind = "device buffer"

    def __init__(self, api: CudaApi, nbytes: int) -> None:
        self.nbytes = max(int(nbytes), 1)
        super().__init__(api, api.malloc(self.nbytes))

    @property
    def pointer(self) -> int:
        return self._api.device_pointer(self.handle)

    def _release(self, handle: Any) -> None:
        self._api.free(handle)


class PinnedBuffer(_Owned):
    """``nbytes`` of page-locked host memory, viewed as arrays of any shape that fits."""

    kind = "pinned buffer"

    def __init__(self, api: CudaApi, nbytes: int) -> None:
        self.nbytes = max(int(nbytes), 1)
        handle, self._bytes = api.malloc_host(self.nbytes)
        super().__init__(api, handle)

    def view(self, shape: Tuple[int, ...], dtype: Any) -> np.ndarray:
        """An array of ``shape`` over the first bytes of the buffer."""
        if self.freed:
            raise BackendError("this pinned buffer was already freed")
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        if count * dtype.itemsize > self.nbytes:
            raise BackendError(
                "{} x {} does not fit a {}-byte pinned buffer".format(shape, dtype, self.nbytes)
            )
        return self._bytes[: count * dtype.itemsize].view(dtype).reshape(shape)

    def _release(self, handle: Any) -> None:
        self._bytes = np.empty(0, np.uint8)
        self._api.free_host(handle)


class Stream(_Owned):
    kind = "stream"

    def __init__(self, api: CudaApi) -> None:
        super().__init__(api, api.stream_create())

    @property
    def pointer(self) -> int:
        return self._api.stream_pointer(self.handle)

    def synchronize(self) -> None:
        self._api.stream_synchronize(self.handle)

    def _release(self, handle: Any) -> None:
        self._api.stream_destroy(handle)


class Event(_Owned):
    kind = "event"

    def __init__(self, api: CudaApi) -> None:
        super().__init__(api, api.event_create())

    def record(self, stream: Stream) -> None:
        self._api.event_record(self.handle, stream.handle)

    def ms_since(self, start: "Event") -> float:
        """Milliseconds from ``start`` to this event (waits for this one)."""
        return self._api.event_elapsed_ms(start.handle, self.handle)

    def _release(self, handle: Any) -> None:
        self._api.event_destroy(handle)


class CudaGraph(_Owned):
    """The work ``enqueue`` puts on ``stream``, captured once and replayed by ``launch``."""

    kind = "graph"

    def __init__(self, api: CudaApi, enqueue: Callable[[], None], stream: Stream) -> None:
        super().__init__(api, api.graph_capture(enqueue, stream.handle))

    def launch(self, stream: Stream) -> None:
        self._api.graph_launch(self.handle, stream.handle)

    def _release(self, handle: Any) -> None:
        self._api.graph_destroy(handle)


def _describe(error: Any) -> str:
    """A cuda-python error code as ``35 (cudaErrorInsufficientDriver)``."""
    return "{} ({})".format(int(error), getattr(error, "name", None) or error)


def _check(result: Any) -> Any:
    """cuda-python returns (error, value...); raise on error, return the value(s)."""
    error, values = result[0], result[1:]
    if int(error) != 0:
        raise BackendError("CUDA error {}".format(_describe(error)))
    if not values:
        return None
    return values[0] if len(values) == 1 else values


class CudaPythonApi(CudaApi):
    name = "cuda-python"

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        except ImportError:
            from cuda import cudart  # older cuda-python
        self._rt = cudart

    def malloc(self, nbytes: int) -> Any:
        return int(_check(self._rt.cudaMalloc(nbytes)))

    def free(self, handle: Any) -> None:
        _check(self._rt.cudaFree(handle))

    def device_pointer(self, handle: Any) -> int:
        return int(handle)

    def malloc_host(self, nbytes: int) -> Tuple[Any, np.ndarray]:
        pointer = int(_check(self._rt.cudaMallocHost(nbytes)))
        memory = (ctypes.c_uint8 * nbytes).from_address(pointer)
        return pointer, np.ctypeslib.as_array(memory)

    def free_host(self, handle: Any) -> None:
        _check(self._rt.cudaFreeHost(handle))

    def stream_create(self) -> Any:
        return _check(self._rt.cudaStreamCreate())

    def stream_destroy(self, handle: Any) -> None:
        _check(self._rt.cudaStreamDestroy(handle))

    def stream_pointer(self, handle: Any) -> int:
        return int(handle)

    def stream_synchronize(self, handle: Any) -> None:
        _check(self._rt.cudaStreamSynchronize(handle))

    def event_create(self) -> Any:
        return _check(self._rt.cudaEventCreate())

    def event_destroy(self, handle: Any) -> None:
        _check(self._rt.cudaEventDestroy(handle))

    def event_record(self, event: Any, stream: Any) -> None:
        _check(self._rt.cudaEventRecord(event, stream))

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        _check(self._rt.cudaEventSynchronize(end))
        return float(_check(self._rt.cudaEventElapsedTime(start, end)))

    def copy_to_device(self, pointer: int, host: np.ndarray, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        _check(self._rt.cudaMemcpyAsync(pointer, host.ctypes.data, host.nbytes, kind, stream))

    def copy_to_host(self, host: np.ndarray, pointer: int, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _check(self._rt.cudaMemcpyAsync(host.ctypes.data, pointer, host.nbytes, kind, stream))

    def copy_on_device(self, target: int, source: int, nbytes: int, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        _check(self._rt.cudaMemcpyAsync(target, source, nbytes, kind, stream))

    def graph_capture(self, enqueue: Callable[[], None], stream: Any) -> Any:
        mode = self._rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        _check(self._rt.cudaStreamBeginCapture(stream, mode))
        try:
            enqueue()
        finally:
            graph = _check(self._rt.cudaStreamEndCapture(stream))
        try:
            return graph, _check(self._rt.cudaGraphInstantiate(graph, 0))
        except BackendError:
            _check(self._rt.cudaGraphDestroy(graph))
            raise

    def graph_launch(self, handle: Any, stream: Any) -> None:
        _check(self._rt.cudaGraphLaunch(handle[1], stream))

    def graph_destroy(self, handle: Any) -> None:
        graph, executable = handle
        _check(self._rt.cudaGraphExecDestroy(executable))
        _check(self._rt.cudaGraphDestroy(graph))

    def device_properties(self) -> Tuple[str, str]:
        error, properties = self._rt.cudaGetDeviceProperties(0)
        if int(error) != 0:  # the first call that needs the GPU
            raise NoGpuError("{}: CUDA error {}".format(NO_GPU, _describe(error)))
        name = properties.name
        name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        return name.rstrip("\x00").strip(), "{}.{}".format(properties.major, properties.minor)


class PyCudaApi(CudaApi):
    """pycuda: its objects are the handles; streams and events go with their last reference."""

    name = "pycuda"

    def __init__(self) -> None:
        from pycuda import driver

        try:
            import pycuda.autoinit  # noqa: F401  (creates the context on device 0)
        except driver.Error as exc:  # cuInit or the context failed: no usable GPU
            raise NoGpuError("{}: pycuda: {}".format(NO_GPU, exc)) from None
        self._driver = driver

    def malloc(self, nbytes: int) -> Any:
        return self._driver.mem_alloc(nbytes)

    def free(self, handle: Any) -> None:
        handle.free()

    def device_pointer(self, handle: Any) -> int:
        return int(handle)

    def malloc_host(self, nbytes: int) -> Tuple[Any, np.ndarray]:
        array = self._driver.pagelocked_empty(nbytes, np.uint8)
        return array, array

    def free_host(self, handle: Any) -> None:
        handle.base.free()

    def stream_create(self) -> Any:
        return self._driver.Stream()

    def stream_destroy(self, handle: Any) -> None:
        """pycuda destroys a stream with its last reference, which the owner just dropped."""

    def stream_pointer(self, handle: Any) -> int:
        return int(handle.handle)

    def stream_synchronize(self, handle: Any) -> None:
        handle.synchronize()

    def event_create(self) -> Any:
        return self._driver.Event()

    def event_destroy(self, handle: Any) -> None:
        """pycuda destroys an event with its last reference, which the owner just dropped."""

    def event_record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        end.synchronize()
        return float(start.time_till(end))

    def copy_to_device(self, pointer: int, host: np.ndarray, stream: Any) -> None:
        self._driver.memcpy_htod_async(pointer, host, stream)

    def copy_to_host(self, host: np.ndarray, pointer: int, stream: Any) -> None:
        self._driver.memcpy_dtoh_async(host, pointer, stream)

    def copy_on_device(self, target: int, source: int, nbytes: int, stream: Any) -> None:
        self._driver.memcpy_dtod_async(target, source, nbytes, stream)

    def device_properties(self) -> Tuple[str, str]:
        device = self._driver.Device(0)
        major, minor = device.compute_capability()
        return device.name(), "{}.{}".format(major, minor)


def load_cuda_api(prefer: Optional[str] = None) -> CudaApi:
    """cuda-python if installed (or ``prefer="pycuda"``), else pycuda."""
    order = ["pycuda", "cuda-python"] if prefer == "pycuda" else ["cuda-python", "pycuda"]
    for name in order:
        try:
            return CudaPythonApi() if name == "cuda-python" else PyCudaApi()
        except ImportError:
            continue
    raise MissingDependencyError(
        "the TensorRT backend needs cuda-python or pycuda: pip install cuda-python"
    )
