"""The released code's training objective (host side): online hard example mining
cross-entropy on the head's logits, plus the two auxiliary heads at weight 0.5."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fanet.core.labels import IGNORE

LOSSES = ("ohem", "ce")


class OhemCrossEntropy(nn.Module):
    """Mean cross-entropy of the hard pixels: those whose loss exceeds -log(``keep``) (the
    true class below probability 0.7), and at least ``min_kept`` of all valid pixels, the
    hardest first (BiSeNet's and FANet's ``OhemCELoss``). ``keep=None``: plain
    cross-entropy over every valid pixel."""

    def __init__(self, keep: float | None = 0.7, min_kept: float = 1 / 16) -> None:
        super().__init__()
        self.threshold = None if keep is None else -math.log(keep)
        self.min_kept = min_kept

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        losses = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none")
        losses = losses.flatten()[target.flatten() != IGNORE]
        if losses.numel() == 0:
            return logits.sum() * 0.0  # a batch of ignored pixels only: no gradient
        if self.threshold is None:
            return losses.mean()
        hard = losses[losses > self.threshold]
        least = max(1, int(losses.numel() * self.min_kept))
        if hard.numel() < least:
            hard = losses.topk(least).values
        return hard.mean()


def upsampled(logits: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Logits at the labels' size, bilinear with aligned corners, as the released code."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=True)
