"""The builder's optimization profiles: dynamic sides from --min/--opt/--max, a dynamic
batch axis (--max-batch) on the image and on a temporal graph's state."""

import sys

import pytest

from fanet.core.errors import ConfigError
from fanet.core.sidecar import Sidecar, StateTensor

from support.cuda_standins import SimulatedCuda

STATE = (StateTensor("state_fam_4", "state_fam_4_out", (1, 1, 32, 64)),)


@pytest.fixture
def profile_shapes(install_fake_tensorrt):
    install_fake_tensorrt("10.3.0", SimulatedCuda())
    import fanet.runtime.trt.builder  # noqa: F401  (against the stand-in)

    return sys.modules["fanet.runtime.trt.builder"]._profile_shapes


def test_a_fixed_single_image_graph_has_no_profile(profile_shapes):
    assert profile_shapes(Sidecar(input_size=(64, 128)), None) is None
    with pytest.raises(ConfigError, match="need an ONNX exported with --dynamic"):
        profile_shapes(Sidecar(input_size=(64, 128)), ((64, 128),) * 3)


def test_dynamic_sides_take_the_given_range(profile_shapes):
    shapes = profile_shapes(Sidecar(dynamic=True), ((64, 128), (128, 256), (256, 512)))
    assert shapes == {
        "input": {"min": [1, 3, 64, 128], "opt": [1, 3, 128, 256], "max": [1, 3, 256, 512]}
    }
    with pytest.raises(ConfigError, match="needs an optimization profile"):
        profile_shapes(Sidecar(dynamic=True), None)


def test_a_dynamic_batch_spans_the_image_and_the_state(profile_shapes):
    sidecar = Sidecar(
        input_size=(64, 128), max_batch=4, temporal=2, temporal_reduce="sum", state=STATE
    )
    shapes = profile_shapes(sidecar, None)
    assert shapes["input"] == {
        "min": [1, 3, 64, 128],
        "opt": [4, 3, 64, 128],
        "max": [4, 3, 64, 128],
    }
    assert shapes["state_fam_4"] == {
        "min": [1, 1, 32, 64],
        "opt": [4, 1, 32, 64],
        "max": [4, 1, 32, 64],
    }
