"""Stand-ins for TensorRT and the CUDA runtime, so the TensorRT backend's bookkeeping
(buffers, streams, events, graphs, both I/O APIs) runs for real on a CPU.

``fake_tensorrt`` is a ``tensorrt`` module whose engines double their input (and each
state input, into its state output); a counting CUDA API records every handle alive.
``SimulatedCuda`` keeps "device" memory in numpy and counts the copies to and from the host.
"""

import json
import sys
import types
from collections import Counter

import numpy as np
import pytest

from fanet.runtime.trt.cuda import CudaApi, CudaPythonApi, _check
from fanet.runtime.trt.engine_record import write_record

GPU = ("Stand-in GPU", "8.7")


class SimulatedCuda(CudaApi):
    """Device memory as numpy arrays; a "kernel" doubles a buffer into another."""

    name = "simulated"
    scale = 2.0

    def __init__(self):
        self.memory = {}
        self._next = 0x1000
        self.copies = Counter()  # ("to_device" | "to_host" | "on_device", pointer)

    def _handle(self):
        self._next += 0x100
        return self._next

    def malloc(self, nbytes):
        handle = self._handle()
        self.memory[handle] = np.zeros(nbytes, np.uint8)
        return handle

    def free(self, handle):
        del self.memory[handle]

    def device_pointer(self, handle):
        return handle

    def malloc_host(self, nbytes):
        return self._handle(), np.zeros(nbytes, np.uint8)

    def free_host(self, handle):
        pass

    stream_create = event_create = _handle

    def stream_destroy(self, handle):
        pass

    event_destroy = graph_destroy = stream_destroy

    def stream_pointer(self, handle):
        return handle

    def stream_synchronize(self, handle):
        pass

    def event_record(self, event, stream):
        pass

    def event_elapsed_ms(self, start, end):
        return 0.25

    def copy_to_device(self, pointer, host, stream):
        self.copies["to_device", pointer] += 1
        self.memory[pointer][: host.nbytes] = host.reshape(-1).view(np.uint8)

    def copy_to_host(self, host, pointer, stream):
        self.copies["to_host", pointer] += 1
        host.reshape(-1).view(np.uint8)[:] = self.memory[pointer][: host.nbytes]

    def copy_on_device(self, target, source, nbytes, stream):
        self.copies["on_device", target] += 1
        self.memory[target][:nbytes] = self.memory[source][:nbytes]

    def graph_capture(self, enqueue, stream):
        enqueue()  # what a capture records is what a launch replays
        return enqueue

    def graph_launch(self, handle, stream):
        handle()

    def kernel(self, source, target, nbytes, stream):
        values = self.memory[source][:nbytes].view(np.float32)
        self.memory[target][:nbytes] = (values * self.scale).view(np.uint8)

    def device_properties(self):
        return GPU


class DeviceCopyCuda(CudaPythonApi):
    """Real cuda-python; the stand-in engine's "kernel" is a device-to-device copy."""

    scale = 1.0

    def kernel(self, source, target, nbytes, stream):
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        _check(self._rt.cudaMemcpyAsync(target, source, nbytes, kind, stream))


class CountingCuda(CudaApi):
    """Wraps a CUDA API and keeps every handle it handed out and did not get back."""

    def __init__(self, inner):
        self.inner = inner
        self.name = "counting " + inner.name
        self.scale = inner.scale
        self.live = {kind: set() for kind in ("device", "pinned", "stream", "event", "graph")}
        self.allocations = Counter()

    def _made(self, kind, handle):
        self.live[kind].add(id(handle) if kind == "graph" else _key(handle))
        self.allocations[kind] += 1
        return handle

    def _gone(self, kind, handle):
        self.live[kind].remove(id(handle) if kind == "graph" else _key(handle))

    def live_handles(self):
        return {kind: len(handles) for kind, handles in self.live.items() if handles}

    def malloc(self, nbytes):
        return self._made("device", self.inner.malloc(nbytes))

    def free(self, handle):
        self._gone("device", handle)
        self.inner.free(handle)

    def malloc_host(self, nbytes):
        handle, array = self.inner.malloc_host(nbytes)
        return self._made("pinned", handle), array

    def free_host(self, handle):
        self._gone("pinned", handle)
        self.inner.free_host(handle)

    def stream_create(self):
        return self._made("stream", self.inner.stream_create())

    def stream_destroy(self, handle):
        self._gone("stream", handle)
        self.inner.stream_destroy(handle)

    def event_create(self):
        return self._made("event", self.inner.event_create())

    def event_destroy(self, handle):
        self._gone("event", handle)
        self.inner.event_destroy(handle)

    def graph_capture(self, enqueue, stream):
        return self._made("graph", self.inner.graph_capture(enqueue, stream))

    def graph_destroy(self, handle):
        self._gone("graph", handle)
        self.inner.graph_destroy(handle)

    def kernel(self, source, target, nbytes, stream):
        self.inner.kernel(source, target, nbytes, stream)

    # the calls that allocate nothing go straight through
    device_pointer = property(lambda self: self.inner.device_pointer)
    stream_pointer = property(lambda self: self.inner.stream_pointer)
    stream_synchronize = property(lambda self: self.inner.stream_synchronize)
    event_record = property(lambda self: self.inner.event_record)
    event_elapsed_ms = property(lambda self: self.inner.event_elapsed_ms)
    copy_to_device = property(lambda self: self.inner.copy_to_device)
    copy_to_host = property(lambda self: self.inner.copy_to_host)
    copy_on_device = property(lambda self: self.inner.copy_on_device)
    graph_launch = property(lambda self: self.inner.graph_launch)
    device_properties = property(lambda self: self.inner.device_properties)


def _key(handle):
    try:
        return int(handle)
    except TypeError:
        return id(handle)


def fake_tensorrt_module(version, cuda):
    """A ``tensorrt`` module whose engines (JSON: the input's shape, and state tensors as
    [input, output, shape]) run ``cuda.kernel`` from the input's buffer into the output's
    (output shape = input's) and from each state input into its output."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version

    class ILogger:
        class Severity:
            INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self):
            pass

    class TensorIOMode:
        INPUT, OUTPUT = "input", "output"

    class Context:
        def __init__(self, engine):
            self.engine = engine
            self.shape = tuple(engine.shape)
            self.addresses = {}

        def set_input_shape(self, name, shape):
            if name == "input":
                self.shape = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            return self.engine.state_shapes.get(name, self.shape)

        def set_tensor_address(self, name, pointer):
            self.addresses[name] = pointer

        def execute_async_v3(self, stream):
            nbytes = int(np.prod(self.shape)) * 4
            cuda.kernel(self.addresses["input"], self.addresses["logits"], nbytes, stream)
            for source, target, shape in self.engine.state:
                size = int(np.prod(shape)) * 4
                cuda.kernel(self.addresses[source], self.addresses[target], size, stream)
            return True

        # TensorRT 8.2-8.4: bindings by index (0 input, 1 output)
        def set_binding_shape(self, index, shape):
            return self.set_input_shape(self.engine.names[index], shape)

        def get_binding_shape(self, index):
            return self.get_tensor_shape(self.engine.names[index])

        def execute_async_v2(self, bindings, stream):
            self.addresses = dict(zip(self.engine.names, bindings))
            return self.execute_async_v3(stream)

    class Engine:
        def __init__(self, description):
            self.shape = description["shape"]
            self.state = [tuple(entry) for entry in description.get("state", [])]
            self.inputs = ["input"] + [source for source, _, _ in self.state]
            self.names = self.inputs + ["logits"] + [target for _, target, _ in self.state]
            self.state_shapes = {
                name: tuple(shape)
                for source, target, shape in self.state
                for name in (source, target)
            }
            self.num_io_tensors = self.num_bindings = len(self.names)

        def get_tensor_name(self, index):
            return self.names[index]

        def get_tensor_mode(self, name):
            return TensorIOMode.INPUT if name in self.inputs else TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return np.float32

        def get_tensor_shape(self, name):
            return self.state_shapes.get(name, tuple(self.shape))

        def get_binding_name(self, index):
            return self.names[index]

        def binding_is_input(self, index):
            return self.names[index] in self.inputs

        def get_binding_dtype(self, index):
            return np.float32

        def get_binding_shape(self, index):
            return self.get_tensor_shape(self.names[index])

        def create_execution_context(self):
            return Context(self)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            return Engine(json.loads(data.decode()))

    class IInt8EntropyCalibrator2:  # the builder's cache calibrator derives from it
        def __init__(self):
            pass

    trt.ILogger, trt.TensorIOMode, trt.Runtime = ILogger, TensorIOMode, Runtime
    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    # names the builder's signatures read when it is imported (Python 3.6: no lazy hints)
    trt.Builder = trt.IBuilderConfig = trt.INetworkDefinition = type("Stand-in", (), {})
    trt.nptype = lambda dtype: dtype
    return trt


TRT_MODULES = (
    "tensorrt",
    "fanet.runtime.trt.logger",
    "fanet.runtime.trt.backend",
    "fanet.runtime.trt.builder",
)


@pytest.fixture
def install_fake_tensorrt(monkeypatch):
    """``install(version, cuda)``: make ``import tensorrt`` give the stand-in; returns the
    TensorRT backend module imported against it (removed again after the test)."""

    def install(version, cuda):
        for name in TRT_MODULES:
            monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt_module(version, cuda))
        import fanet.runtime.trt.backend as backend_module

        return backend_module

    yield install
    for name in TRT_MODULES[1:]:
        sys.modules.pop(name, None)


@pytest.fixture
def fake_engine(tmp_path):
    """``fake_engine(version, cuda)``: an engine file for the stand-in (dynamic H and W),
    with the record the backend's machine check expects."""

    def write(version, cuda, shape=(1, 3, -1, -1), state=()):
        path = tmp_path / "model.engine"
        description = {"shape": list(shape), "state": [list(entry) for entry in state]}
        path.write_bytes(json.dumps(description).encode())
        name, capability = cuda.device_properties()
        record = {"tensorrt_version": version, "gpu_name": name, "compute_capability": capability}
        write_record(str(path), dict(record, precision="fp16", profile=None))
        return str(path)

    return write


@pytest.fixture
def simulated_cuda():
    return CountingCuda(SimulatedCuda())


@pytest.fixture
def real_cuda():
    pytest.importorskip("cuda", reason="cuda-python is not installed")
    return CountingCuda(DeviceCopyCuda())
