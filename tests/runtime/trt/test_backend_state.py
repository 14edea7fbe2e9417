"""A temporal engine's state stays on the GPU between frames: copied on the device from
its outputs to its inputs after each run, uploaded once per reset, never read back (on
the CUDA stand-in, for both TensorRT I/O APIs)."""

import numpy as np
import pytest

from fanet.core.sidecar import StateTensor
from fanet.runtime.backend import BackendError

from support.cuda_standins import CountingCuda, SimulatedCuda

STATE = StateTensor("state_fam_4", "state_fam_4_out", (1, 2, 32, 64), initial=1.0)
VALUES = int(np.prod(STATE.shape))


def _state_engine(install, fake_engine, version):
    cuda = CountingCuda(SimulatedCuda())
    module = install(version, cuda)
    path = fake_engine(version, cuda, state=[(STATE.input, STATE.output, list(STATE.shape))])
    return module.TensorRTBackend(path, cuda=cuda), cuda.inner


def _state_on_device(cuda):
    """The one buffer that device-to-device copies write: the state input's."""
    (pointer,) = {pointer for kind, pointer in cuda.copies if kind == "on_device"}
    return pointer, cuda.memory[pointer][: VALUES * 4].view(np.float32)


@pytest.mark.parametrize("version", ["8.2.1", "10.3.0", "11.1.0"])
def test_a_bound_state_is_carried_on_the_device(install_fake_tensorrt, fake_engine, version):
    backend, cuda = _state_engine(install_fake_tensorrt, fake_engine, version)
    with backend:
        assert [s.name for s in backend.input_specs] == ["input", "state_fam_4"]
        backend.bind_state([STATE])
        x = np.full((1, 3, 8, 16), 0.5, np.float32)
        for frame in range(1, 5):
            outputs = backend.infer({"input": x})
            assert list(outputs) == ["logits"]  # the state is not handed back
            np.testing.assert_array_equal(outputs["logits"], x * 2)
            pointer, state = _state_on_device(cuda)
            assert (state == 2.0**frame).all()  # the engine doubles it each frame
        copies = {kind: n for (kind, where), n in cuda.copies.items() if where == pointer}
        assert copies == {"to_device": 1, "on_device": 4}  # one upload, then on the device
        read_back = sum(n for (kind, _), n in cuda.copies.items() if kind == "to_host")
        assert read_back == 4  # the logits of each frame, nothing of the state

        backend.reset_state()
        assert (_state_on_device(cuda)[1] == 1.0).all()
        assert cuda.copies["to_device", pointer] == 2


def test_state_of_another_shape_or_name_is_refused(install_fake_tensorrt, fake_engine):
    backend, _ = _state_engine(install_fake_tensorrt, fake_engine, "10.3.0")
    with backend:
        with pytest.raises(BackendError, match=r"'state_fam_4' is \(1, 2, 32, 64\) in the model"):
            backend.bind_state([STATE._replace(shape=(1, 3, 32, 64))])
        with pytest.raises(BackendError, match="no state tensor 'state_fam_8'"):
            backend.bind_state([STATE._replace(input="state_fam_8")])


def test_an_unbound_temporal_engine_asks_for_its_state(install_fake_tensorrt, fake_engine):
    backend, _ = _state_engine(install_fake_tensorrt, fake_engine, "10.3.0")
    x = np.zeros((1, 3, 8, 16), np.float32)
    with backend:
        backend.bind_state([STATE])
        backend.infer({"input": x})
        backend.unbind_state()
        with pytest.raises(BackendError, match="missing input 'state_fam_4'"):
            backend.infer({"input": x})
        given = np.full(STATE.shape, 3.0, np.float32)  # fed by hand, it is read back
        outputs = backend.infer({"input": x, "state_fam_4": given})
        np.testing.assert_array_equal(outputs["state_fam_4_out"], given * 2)
