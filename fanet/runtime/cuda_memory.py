"""Device memory, pinned host memory, streams, events and CUDA graphs through
cuda-python or pycuda, whichever is installed (Python 3.6 compatible).

Only the few calls the TensorRT backend and the benchmark need, behind one interface.
"""

import ctypes
from typing import Any, Callable, Optional, Tuple

import numpy as np

from fanet.errors import MissingDependencyError
from fanet.runtime.backend import BackendError


class CudaRuntime:
    """Interface; see :class:`CudaPythonRuntime` and :class:`PyCudaRuntime`."""

    name = "cuda"

    def malloc(self, nbytes: int) -> int:
        raise NotImplementedError

    def free(self, pointer: int) -> None:
        raise NotImplementedError

    def pinned_empty(self, shape: Tuple[int, ...], dtype: Any) -> np.ndarray:
        raise NotImplementedError

    def create_stream(self) -> Any:
        raise NotImplementedError

    def stream_handle(self, stream: Any) -> int:
        raise NotImplementedError

    def copy_to_device(self, pointer: int, host: np.ndarray, stream: Any) -> None:
        raise NotImplementedError

    def copy_to_host(self, host: np.ndarray, pointer: int, stream: Any) -> None:
        raise NotImplementedError

    def synchronize(self, stream: Any) -> None:
        raise NotImplementedError

    def create_event(self) -> Any:
        raise NotImplementedError

    def record(self, event: Any, stream: Any) -> None:
        raise NotImplementedError

    def elapsed_ms(self, start: Any, end: Any) -> float:
        raise NotImplementedError

    def capture_graph(self, enqueue: Callable[[], None], stream: Any) -> Any:
        raise BackendError("CUDA graphs need cuda-python (pip install cuda-python)")

    def launch_graph(self, graph: Any, stream: Any) -> None:
        raise NotImplementedError

    def device_properties(self) -> Tuple[str, str]:
        """(GPU name, compute capability "major.minor") of device 0."""
        raise NotImplementedError


def _check(result: Any) -> Any:
    """cuda-python returns (error, value...); raise on error, return the value(s)."""
    error, values = result[0], result[1:]
    if int(error) != 0:
        raise BackendError("CUDA error {}".format(error))
    if not values:
        return None
    return values[0] if len(values) == 1 else values


class CudaPythonRuntime(CudaRuntime):
    name = "cuda-python"

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        except ImportError:
            from cuda import cudart  # older cuda-python
        self._rt = cudart
        self._pinned = {}  # type: dict

    def malloc(self, nbytes: int) -> int:
        return int(_check(self._rt.cudaMalloc(max(int(nbytes), 1))))

    def free(self, pointer: int) -> None:
        _check(self._rt.cudaFree(pointer))

    def pinned_empty(self, shape: Tuple[int, ...], dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
        pointer = int(_check(self._rt.cudaMallocHost(nbytes)))
        buffer = (ctypes.c_byte * nbytes).from_address(pointer)
        array = np.frombuffer(buffer, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
        self._pinned[id(array)] = pointer
        return array

    def create_stream(self) -> Any:
        return _check(self._rt.cudaStreamCreate())

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def copy_to_device(self, pointer: int, host: np.ndarray, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        _check(self._rt.cudaMemcpyAsync(pointer, host.ctypes.data, host.nbytes, kind, stream))

    def copy_to_host(self, host: np.ndarray, pointer: int, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _check(self._rt.cudaMemcpyAsync(host.ctypes.data, pointer, host.nbytes, kind, stream))

    def synchronize(self, stream: Any) -> None:
        _check(self._rt.cudaStreamSynchronize(stream))

    def create_event(self) -> Any:
        return _check(self._rt.cudaEventCreate())

    def record(self, event: Any, stream: Any) -> None:
        _check(self._rt.cudaEventRecord(event, stream))

    def elapsed_ms(self, start: Any, end: Any) -> float:
        _check(self._rt.cudaEventSynchronize(end))
        return float(_check(self._rt.cudaEventElapsedTime(start, end)))

    def capture_graph(self, enqueue: Callable[[], None], stream: Any) -> Any:
        mode = self._rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        _check(self._rt.cudaStreamBeginCapture(stream, mode))
        enqueue()
        graph = _check(self._rt.cudaStreamEndCapture(stream))
        return _check(self._rt.cudaGraphInstantiate(graph, 0))

    def launch_graph(self, graph: Any, stream: Any) -> None:
        _check(self._rt.cudaGraphLaunch(graph, stream))

    def device_properties(self) -> Tuple[str, str]:
        properties = _check(self._rt.cudaGetDeviceProperties(0))
        name = properties.name
        name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        return name.rstrip("\x00").strip(), "{}.{}".format(properties.major, properties.minor)


class PyCudaRuntime(CudaRuntime):
    name = "pycuda"

    def __init__(self) -> None:
        import pycuda.autoinit  # noqa: F401  (creates the context on device 0)
        from pycuda import driver

        self._driver = driver
        self._allocations = {}  # type: dict

    def malloc(self, nbytes: int) -> int:
        allocation = self._driver.mem_alloc(max(int(nbytes), 1))
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, pointer: int) -> None:
        self._allocations.pop(pointer).free()

    def pinned_empty(self, shape: Tuple[int, ...], dtype: Any) -> np.ndarray:
        return self._driver.pagelocked_empty(shape, dtype)

    def create_stream(self) -> Any:
        return self._driver.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def copy_to_device(self, pointer: int, host: np.ndarray, stream: Any) -> None:
        self._driver.memcpy_htod_async(pointer, host, stream)

    def copy_to_host(self, host: np.ndarray, pointer: int, stream: Any) -> None:
        self._driver.memcpy_dtoh_async(host, pointer, stream)

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def create_event(self) -> Any:
        return self._driver.Event()

    def record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        end.synchronize()
        return float(start.time_till(end))

    def device_properties(self) -> Tuple[str, str]:
        device = self._driver.Device(0)
        major, minor = device.compute_capability()
        return device.name(), "{}.{}".format(major, minor)


def load_cuda_runtime(prefer: Optional[str] = None) -> CudaRuntime:
    """cuda-python if installed (or ``prefer="pycuda"``), else pycuda."""
    order = ["pycuda", "cuda-python"] if prefer == "pycuda" else ["cuda-python", "pycuda"]
    for name in order:
        try:
            return CudaPythonRuntime() if name == "cuda-python" else PyCudaRuntime()
        except ImportError:
            continue
    raise MissingDependencyError(
        "the TensorRT backend needs cuda-python or pycuda: pip install cuda-python"
    )
