"""Convolution + BatchNorm (+ LeakyReLU) blocks with the released code's key names."""

from __future__ import annotations

import torch
from torch import nn

LEAKY_SLOPE = 0.01


class ConvBN(nn.Module):
    """Bias-free convolution, BatchNorm and optionally LeakyReLU(0.01).

    Keys: ``conv.weight`` and ``bn.*``, as in the authors' checkpoints.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        activation: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act: nn.Module = nn.LeakyReLU(LEAKY_SLOPE) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))
