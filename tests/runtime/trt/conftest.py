"""Stand-ins for TensorRT and the CUDA runtime, so the TensorRT backend's bookkeeping
(buffers, streams, events, graphs, both I/O APIs) runs for real on a CPU.

``fake_tensorrt`` is a ``tensorrt`` module whose engines double their input (and each
state input, into its state output); a counting CUDA API records every handle alive.
``SimulatedCuda`` keeps "device" memory in numpy and counts the copies to and from the host.
"""

import json
import sys
from collections import Counter

import numpy as np
import pytest

from fanet.runtime.trt.cuda import CudaApi, CudaPythonApi, _check
from fanet.runtime.trt.engine_record import write_record

from .simulated import GPU, behaviours
from .standin import standin_tensorrt


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


TRT_MODULES = (
    "tensorrt",
    "fanet.runtime.trt.logger",
    "fanet.runtime.trt.backend",
    "fanet.runtime.trt.builder",
    "fanet.runtime.trt.engine_cache",
    "fanet.runtime.trt.precision",
)


def installed_standin(monkeypatch, version, cuda, recorder=None, **knobs):
    """Make ``import tensorrt`` give the stand-in of ``version`` (running engines on
    ``cuda``) and re-import the modules that read it; returns the stand-in."""
    import fanet.runtime.trt as package

    trt = standin_tensorrt(version, behaviours(cuda, **knobs), recorder)
    for name in TRT_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.delattr(package, name.rpartition(".")[2], raising=False)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt


@pytest.fixture
def install_fake_tensorrt(monkeypatch):
    """``install(version, cuda)``: make ``import tensorrt`` give the stand-in built from
    that version's manifest; returns the TensorRT backend module imported against it
    (removed again after the test)."""

    def install(version, cuda, recorder=None, **knobs):
        installed_standin(monkeypatch, version, cuda, recorder, **knobs)
        import fanet.runtime.trt.backend as backend_module

        return backend_module

    yield install
    for name in TRT_MODULES[1:]:
        sys.modules.pop(name, None)  # nothing keeps a module imported against a stand-in


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
