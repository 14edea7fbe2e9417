"""TensorRT and CUDA paths: run only where TensorRT / a GPU exist (skipped with a reason)."""

import contextlib

import numpy as np
import pytest

from fanet.core.synthetic import render_scene
from fanet.runtime.segmenter import Segmenter


@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_from_the_cache_matches_onnxruntime(exported_trained, tmp_path, precision):
    image, _ = render_scene(4, 128, 256)
    with Segmenter.from_file(str(exported_trained), backend="onnxruntime") as reference:
        expected = reference(image)
    with Segmenter.from_file(
        str(exported_trained), backend="tensorrt", precision=precision, cache_dir=str(tmp_path)
    ) as seg:
        assert (seg(image) == expected).mean() >= (0.999 if precision == "fp32" else 0.99)


@pytest.mark.gpu
def test_cuda_buffers_and_stream_round_trip():
    pytest.importorskip("cuda", reason="cuda-python is not installed")
    from fanet.runtime.trt.cuda import DeviceBuffer, Event, PinnedBuffer, Stream, load_cuda_api

    cuda = load_cuda_api()
    expected = np.arange(3000, dtype=np.float32).reshape(3, 1000)
    with contextlib.ExitStack() as owned:
        stream, device = (
            owned.enter_context(Stream(cuda)),
            owned.enter_context(DeviceBuffer(cuda, expected.nbytes)),
        )
        sent, got = (owned.enter_context(PinnedBuffer(cuda, expected.nbytes)) for _ in "ab")
        start, end = owned.enter_context(Event(cuda)), owned.enter_context(Event(cuda))
        host, back = sent.view((3, 1000), np.float32), got.view((3, 1000), np.float32)
        host[:] = expected
        start.record(stream)
        cuda.copy_to_device(device.pointer, host, stream.handle)
        cuda.copy_to_host(back, device.pointer, stream.handle)
        end.record(stream)
        stream.synchronize()
        assert (back == expected).all() and end.ms_since(start) >= 0
    name, capability = cuda.device_properties()
    assert name and capability.count(".") == 1
