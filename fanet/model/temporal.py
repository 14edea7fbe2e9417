"""Spatial-temporal fast attention (paper Sec. III-D, Eq. 6): attention over a window of frames.

For a window of t frames, each attention module attends at frame T to

    sum_{i=0}^{t-1} k_{T-i}^T v_{T-i}          (``reduce="sum"``: Eq. 6 without its 1/n,
                                                as the released code has none)

or to that sum divided by the number of frames it holds (``reduce="mean"``: the scale that
single-frame weights were trained with, and the default for them). Each frame's k^T v
(32 x C per module) depends on that frame alone, so it is kept and reused: a frame costs
the same whatever t.

``TemporalFANet`` is stateless, as the exported graph is: ``forward(image, *state)`` returns
``(logits, *next_state)``. The state holds, per attention module, the last t-1 frames'
contexts (newest first, zeros where no frame came yet) and, for ``mean``, a 1 x (t-1) mask
of the slots that hold a frame. Window 1 has no state and is the single-frame model.
"""

from __future__ import annotations

import torch
from torch import nn

from fanet.core.errors import ConfigError
from fanet.core.sidecar import StateTensor
from fanet.model.attention import KEY_CHANNELS
from fanet.model.fanet import ATTENTION_MODULES, Decoded, FANet
from fanet.runtime.temporal import require_window

REDUCTIONS = ("mean", "sum")
VALID = "valid"  # the state entry saying which history slots hold a frame
STATE_PREFIX = "state_"
NEXT_SUFFIX = "_out"


def check_window(window: int, reduce: str) -> None:
    """``ConfigError`` unless ``window`` >= 1 and ``reduce`` is a known reduction."""
    require_window(window)
    if reduce not in REDUCTIONS:
        raise ConfigError(f"unknown temporal reduction {reduce!r}; choose mean or sum")


class TemporalFANet(nn.Module):
    """FANet over a window of ``window`` frames; ``forward(x, *state) -> (logits, *state)``."""

    def __init__(self, model: FANet, window: int, reduce: str = "mean") -> None:
        super().__init__()
        check_window(window, reduce)
        self.model = model
        self.window = window
        self.reduce = reduce
        self.num_classes = model.num_classes
        self.arch = model.arch

    def state_shapes(self, batch: int = 1) -> dict[str, tuple[int, ...]]:
        """State entries (module names and ``valid``), in I/O order, with their shapes."""
        if self.window == 1:
            return {}
        history = self.window - 1
        shapes: dict[str, tuple[int, ...]] = {
            name: (batch, history, KEY_CHANNELS, getattr(self.model, name).w_vs.conv.in_channels)
            for name in ATTENTION_MODULES
        }
        if self.reduce == "mean":
            shapes[VALID] = (batch, history)
        return shapes

    def state_names(self) -> list[tuple[str, str]]:
        """(input, output) tensor names of each state entry, in I/O order."""
        return [
            (STATE_PREFIX + name, STATE_PREFIX + name + NEXT_SUFFIX) for name in self.state_shapes()
        ]

    def state_tensors(self) -> tuple[StateTensor, ...]:
        """The state as the sidecar records it: names, shapes, float32, zeros at first."""
        shapes = self.state_shapes().values()
        return tuple(StateTensor(i, o, shape) for (i, o), shape in zip(self.state_names(), shapes))

    def initial_state(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Zeros for every state entry (no earlier frame), for the batch ``images`` (its
        size, device and dtype)."""
        shapes = self.state_shapes(images.shape[0]).values()
        return [torch.zeros(shape, device=images.device, dtype=images.dtype) for shape in shapes]

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        decoded, following = self.step(x, *state)
        return (decoded.logits, *following)

    def step(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[Decoded, list[torch.Tensor]]:
        """The frame's decoder outputs and the next state (the training loop reads both)."""
        entries = list(self.state_shapes())
        if len(state) != len(entries):
            raise ConfigError(
                f"the temporal model takes {len(entries)} state tensors "
                f"({', '.join(entries) or 'none'}), got {len(state)}"
            )
        if not entries:
            return self.model.decode(x), []
        given = dict(zip(entries, state))
        following: dict[str, torch.Tensor] = {}
        frames = None
        if self.reduce == "mean":
            valid = given[VALID]
            frames = (1 + valid.sum(1)).reshape(-1, 1, 1)
            following[VALID] = _pushed(valid[:, :1] * 0 + 1, valid)  # 1: a frame is there

        def mix(name: str, context: torch.Tensor) -> torch.Tensor:
            history = given[name]
            following[name] = _pushed(context.unsqueeze(1), history)
            total = context + history.sum(1)
            return total if frames is None else total / frames

        decoded = self.model.decode(x, mix)
        return decoded, [following[name] for name in entries]


def _pushed(newest: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
    """``history`` (newest first along axis 1) with ``newest`` in front and the oldest gone."""
    if history.shape[1] == 1:
        return newest
    return torch.cat([newest, history[:, :-1]], dim=1)
