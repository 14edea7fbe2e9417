"""Spatial-temporal fast attention: window 1 is the single-frame model, streamed outputs
equal Eq. 6 computed from scratch over the window, state is named and shaped per module."""

import pytest
import torch
import torch.nn.functional as F

from fanet.core.errors import ConfigError
from fanet.model import load_checkpoint, random_model
from fanet.model.fanet import ATTENTION_MODULES
from fanet.model.temporal import TemporalFANet


class TemporalStream:
    """A ``TemporalFANet`` with its state kept between calls: ``stream(x) -> logits``;
    ``reset()`` forgets the earlier frames (a cut in the video)."""

    def __init__(self, model: TemporalFANet) -> None:
        self.model = model
        self.state: list[torch.Tensor] | None = None

    def reset(self) -> None:
        self.state = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        state = self.state if self.state is not None else self.model.initial_state(x)
        logits, *self.state = self.model(x, *state)
        return logits


@pytest.fixture(scope="module")
def model64():
    return random_model("fanet18", seed=3).double()


def _frames(count, size=(64, 96), seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.randn(1, 3, *size, generator=generator, dtype=torch.float64) for _ in range(count)
    ]


@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_window_one_is_the_single_frame_model_bit_for_bit(golden_fanet18, reduce):
    state, golden = golden_fanet18
    model = load_checkpoint(random_model("fanet18"), state)  # the same checkpoints load
    stream = TemporalStream(TemporalFANet(model, 1, reduce))
    with torch.no_grad():
        x = torch.from_numpy(golden["input"])
        for _ in range(3):  # no state: every frame alike
            assert torch.equal(stream(x), model(x))
    torch.testing.assert_close(stream(x).detach().numpy(), golden["logits"], rtol=0, atol=2e-6)


def _literal_context(module, feature):
    """k^T v of one frame from the module's weights, written out: L2-normalised keys over
    the 32 key channels, times the values."""
    keys = F.normalize(module.w_ks(feature), p=2, dim=1, eps=1e-12).flatten(2)
    values = module.w_vs(feature).flatten(2).transpose(1, 2)
    return keys @ values


def _features(model, x):
    feat8, feat16, feat32, feat64 = model.resnet(x)
    return dict(zip(ATTENTION_MODULES, (feat64, feat32, feat16, feat8)))


@pytest.mark.parametrize("window, reduce", [(2, "sum"), (3, "sum"), (3, "mean"), (4, "mean")])
def test_streamed_output_equals_eq6_over_the_window_from_scratch(model64, window, reduce):
    """Y_T = q_T . sum_{i<t} k_{T-i}^T v_{T-i} (mean: divided by the frames summed), in float64."""
    frames = _frames(7)
    stream = TemporalStream(TemporalFANet(model64, window, reduce))
    with torch.no_grad():
        features = [_features(model64, x) for x in frames]
        for now, x in enumerate(frames):
            streamed = stream(x)
            window_frames = range(max(0, now - window + 1), now + 1)
            direct = {
                name: sum(
                    _literal_context(getattr(model64, name), features[i][name])
                    for i in window_frames
                )
                for name in ATTENTION_MODULES
            }
            if reduce == "mean":
                direct = {name: value / len(window_frames) for name, value in direct.items()}

            def from_scratch(name, context, now=now, direct=direct):
                literal = _literal_context(getattr(model64, name), features[now][name])
                torch.testing.assert_close(context, literal, rtol=1e-12, atol=1e-12)
                return direct[name]

            expected = model64(x, from_scratch)
            torch.testing.assert_close(streamed, expected, rtol=1e-12, atol=1e-12)
            if now >= 1:  # the earlier frames count: not the single-frame output
                assert (streamed - model64(x)).abs().max() > 1e-6


def test_reset_forgets_the_earlier_frames(model64):
    frames = _frames(3)
    stream = TemporalStream(TemporalFANet(model64, 3, "sum"))
    with torch.no_grad():
        first = stream(frames[0])
        stream(frames[1])
        stream.reset()
        assert torch.equal(stream(frames[0]), first)


def test_state_is_named_and_shaped_per_module(model64):
    mean = TemporalFANet(model64, 4, "mean")
    assert mean.state_shapes() == {
        "fam_32": (1, 3, 32, 512),
        "fam_16": (1, 3, 32, 256),
        "fam_8": (1, 3, 32, 128),
        "fam_4": (1, 3, 32, 64),
        "valid": (1, 3),
    }
    assert mean.state_names()[0] == ("state_fam_32", "state_fam_32_out")
    assert "valid" not in TemporalFANet(model64, 4, "sum").state_shapes()
    assert TemporalFANet(model64, 1).state_shapes() == {}


@pytest.mark.parametrize(
    "window, reduce, message",
    [(0, "mean", "must be a whole number of frames >= 1"), (2, "max", "choose mean or sum")],
)
def test_bad_windows_and_reductions_are_refused(model64, window, reduce, message):
    with pytest.raises(ConfigError, match=message):
        TemporalFANet(model64, window, reduce)


def test_the_wrong_number_of_state_tensors_is_refused(model64):
    model = TemporalFANet(model64, 2, "sum")
    with pytest.raises(ConfigError, match="takes 4 state tensors"):
        model(_frames(1)[0])
