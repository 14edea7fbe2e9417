"""CUDA runtimes for tests without a GPU (Python 3.6 compatible).

``SimulatedCuda`` keeps "device" memory in numpy and counts the copies to and from the
host; its "kernel" (what a stand-in engine runs) doubles a buffer into another.
``CountingCuda`` wraps any CUDA API and keeps every handle it handed out and did not get
back; ``DeviceCopyCuda`` is real cuda-python whose "kernel" is a device-to-device copy.
"""

from collections import Counter

import numpy as np

from fanet.runtime.trt.cuda import CudaApi, CudaPythonApi, _check

from support.tensorrt_simulated import GPU


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
