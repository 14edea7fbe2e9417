"""FANet as it trains (host side): the temporal model over a window of frames, and the
released training code's two auxiliary heads on the 1/64 and 1/32 decoder maps."""

from __future__ import annotations

import torch
from torch import nn

from fanet.model.fanet import ClassifierHead, FANet
from fanet.model.temporal import TemporalFANet

AUX_WEIGHT = 0.5


class TrainingFANet(nn.Module):
    """``forward(frames)`` -> (logits, aux 1/64, aux 1/32) of the last frame, the earlier
    frames' contexts in its attention (a window of one: the single-frame model).

    ``model`` keeps FANet's own key names (what ``fanet-export`` loads); the auxiliary
    heads are ``clslayer_32`` and ``clslayer_16`` as in the training code's checkpoints.
    """

    def __init__(self, model: FANet, window: int = 1, reduce: str = "mean") -> None:
        super().__init__()
        self.model = model
        self.temporal = TemporalFANet(model, window, reduce)
        self.clslayer_32 = ClassifierHead(128, model.num_classes, 64)
        self.clslayer_16 = ClassifierHead(128, model.num_classes, 64)
        for branch in (model.fam_8.smooth, model.fam_4.up):  # no output reads them
            branch.requires_grad_(False)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``frames``: N x t x 3 x H x W, the labelled frame last."""
        state = self.temporal.initial_state(frames[:, -1])
        for index in range(frames.shape[1] - 1):
            _, state = self.temporal.step(frames[:, index], *state)
        decoded, _ = self.temporal.step(frames[:, -1], *state)
        aux_64 = self.clslayer_32(self.model.fam_32.smooth(decoded.p32))
        aux_32 = self.clslayer_16(decoded.smooth16)
        return decoded.logits, aux_64, aux_32

    def auxiliary_state(self) -> dict[str, torch.Tensor]:
        """The auxiliary heads' weights, under the training code's key names."""
        return {k: v for k, v in self.state_dict().items() if k.startswith("clslayer_")}
