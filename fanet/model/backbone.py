"""ResNet-18/34 encoder with FANet's extra reduction at Res-1 (stage strides 2,2,2,2)."""

from __future__ import annotations

import torch
from torch import nn

from fanet.model.layers import LEAKY_SLOPE

STAGE_CHANNELS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """conv3x3-BN-LeakyReLU-conv3x3-BN, plus the shortcut, then a plain ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act = nn.LeakyReLU(LEAKY_SLOPE)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
        return self.relu(y + shortcut)


class ResNetEncoder(nn.Module):
    """Torchvision-named ResNet whose four stages output 1/8, 1/16, 1/32, 1/64 maps."""

    def __init__(self, blocks_per_stage: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.act = nn.LeakyReLU(LEAKY_SLOPE)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_channels = 64
        stages = zip(STAGE_CHANNELS, blocks_per_stage, strict=True)
        for index, (channels, blocks) in enumerate(stages, 1):
            stage = [BasicBlock(in_channels, channels, 2)]
            stage += [BasicBlock(channels, channels, 1) for _ in range(blocks - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*stage))
            in_channels = channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.act(self.bn1(self.conv1(x))))
        features = []
        for index in range(1, len(STAGE_CHANNELS) + 1):
            x = getattr(self, f"layer{index}")(x)
            features.append(x)
        return features
