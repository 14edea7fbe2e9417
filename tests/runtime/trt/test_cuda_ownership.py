"""Every CUDA handle the TensorRT backend takes is freed: open -> infer (several shapes) ->
compute_ms x N -> close, on a counting stand-in (and on real cuda-python with a GPU)."""

import numpy as np
import pytest

from fanet.runtime.backend import BackendError
from fanet.runtime.trt.cuda import DeviceBuffer, Event, PinnedBuffer, Stream

# Shapes in the order a robot might send them: the buffers grow at 2 of the 4.
SHAPES = [(1, 3, 64, 128), (1, 3, 32, 64), (1, 3, 128, 256), (1, 3, 64, 128)]


def _exercise(backend, cuda, compute_calls):
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        x = rng.standard_normal(shape).astype(np.float32)
        out = backend.infer({"input": x})
        np.testing.assert_allclose(out["logits"], x * cuda.scale)
    feed = {"input": np.ones(SHAPES[0], np.float32)}
    for _ in range(compute_calls):
        assert backend.compute_ms(feed) >= 0


def _open_exercise_close(install, fake_engine, cuda, version, cuda_graph, compute_calls):
    module = install(version, cuda)
    backend = module.TensorRTBackend(fake_engine(version, cuda), cuda=cuda, cuda_graph=cuda_graph)
    _exercise(backend, cuda, compute_calls)
    made = cuda.allocations
    assert made["stream"] == 1 and made["event"] == 2  # compute_ms reuses its two events
    assert made["device"] == made["pinned"] == 2 * 2  # input and output, grown twice
    backend.close()
    assert cuda.live_handles() == {}
    backend.close()  # idempotent
    assert cuda.live_handles() == {}
    return made


@pytest.mark.parametrize(
    "version,cuda_graph,graphs",
    [
        ("10.3.0", False, 0),
        ("10.3.0", True, len(SHAPES)),  # captured again only when the shapes change
        ("8.2.1", True, 0),  # bindings API: no graphs
        ("11.1.0", True, len(SHAPES)),
    ],
)
def test_every_handle_is_freed_on_close(
    install_fake_tensorrt, fake_engine, simulated_cuda, version, cuda_graph, graphs
):
    made = _open_exercise_close(
        install_fake_tensorrt, fake_engine, simulated_cuda, version, cuda_graph, 10_000
    )
    assert made["graph"] == graphs


def test_use_after_close_is_a_backend_error(install_fake_tensorrt, fake_engine, simulated_cuda):
    module = install_fake_tensorrt("10.3.0", simulated_cuda)
    with module.TensorRTBackend(fake_engine("10.3.0", simulated_cuda), cuda=simulated_cuda) as b:
        feed = {"input": np.zeros(SHAPES[0], np.float32)}
        b.infer(feed)
    for call in (lambda: b.infer(feed), lambda: b.compute_ms(feed), b.synchronize):
        with pytest.raises(BackendError, match="the tensorrt backend is closed"):
            call()
    assert simulated_cuda.live_handles() == {}


def test_an_engine_for_another_gpu_allocates_nothing(
    install_fake_tensorrt, fake_engine, simulated_cuda
):
    from fanet.core.engine_record import EngineMismatchError

    module = install_fake_tensorrt("10.3.0", simulated_cuda)
    path = fake_engine("10.2.0", simulated_cuda)
    with pytest.raises(EngineMismatchError, match="tensorrt version '10.2.0'"):
        module.TensorRTBackend(path, cuda=simulated_cuda)
    assert sum(simulated_cuda.allocations.values()) == 0


def test_owners_free_once_and_refuse_use_after(simulated_cuda):
    with DeviceBuffer(simulated_cuda, 64) as device, PinnedBuffer(simulated_cuda, 64) as pinned:
        view = pinned.view((4, 4), np.float32)
        assert view.shape == (4, 4) and device.pointer
        with pytest.raises(BackendError, match="does not fit"):
            pinned.view((5, 4), np.float32)
    stream, event = Stream(simulated_cuda), Event(simulated_cuda)
    for owned in (stream, event, stream, event):
        owned.free()
    assert simulated_cuda.live_handles() == {}
    for use in (lambda: device.pointer, lambda: pinned.view((1,), np.float32), stream.synchronize):
        with pytest.raises(BackendError, match="already freed"):
            use()


@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_every_handle_is_freed_on_real_cuda_python(
    install_fake_tensorrt, fake_engine, real_cuda, cuda_graph
):
    """The same cycle on a GPU: real allocations, copies, events and graphs (the stand-in
    engine copies its input to its output on the device)."""
    made = _open_exercise_close(
        install_fake_tensorrt, fake_engine, real_cuda, "10.3.0", cuda_graph, 1_000
    )
    assert made["graph"] == (len(SHAPES) if cuda_graph else 0)
