"""FANet: ResNet encoder, four fast attention modules, and the 1/8-resolution head."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from fanet.model.attention import FastAttentionModule, resize_like
from fanet.model.backbone import ResNetEncoder
from fanet.model.layers import ConvBN

OUTPUT_STRIDE = 8
ATTENTION_MODULES = ("fam_32", "fam_16", "fam_8", "fam_4")  # coarse to fine
ContextMix = Callable[[str, torch.Tensor], torch.Tensor]  # (module, this frame's k^T v) -> k^T v


class ClassifierHead(nn.Module):
    """3x3 conv-BN-LeakyReLU to ``mid_channels`` (256; the training code's auxiliary heads:
    64), then a bias-free 1x1 conv to the classes."""

    def __init__(self, in_channels: int, num_classes: int, mid_channels: int = 256) -> None:
        super().__init__()
        self.conv = ConvBN(in_channels, mid_channels, 3, padding=1)
        self.conv_out = nn.Conv2d(mid_channels, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class Decoded(NamedTuple):
    """The head's logits and the decoder maps the training code's auxiliary heads read."""

    logits: torch.Tensor
    p32: torch.Tensor  # fam_32's fused map (its ``smooth`` feeds the 1/64 auxiliary head)
    smooth16: torch.Tensor  # fam_16's smooth output (the 1/32 auxiliary head's input)


class FANet(nn.Module):
    """FANet as the authors' released code computes it (see FANET_SPEC.md).

    Input: N x 3 x H x W, RGB, ImageNet-normalised. Output: N x classes x ceil(H/8) x
    ceil(W/8) logits. Branches without influence on the output (``fam_32.smooth``,
    ``fam_8.smooth``, ``fam_4.up``) keep their weights but are not computed, except
    ``fam_32.smooth`` when ``compute_discarded`` is set: the released code evaluates it
    and drops the result, which counts towards the paper's MAC figures.
    """

    def __init__(
        self, arch: str, blocks_per_stage: tuple[int, int, int, int], num_classes: int = 19
    ) -> None:
        super().__init__()
        self.arch = arch
        self.num_classes = num_classes
        self.resnet = ResNetEncoder(blocks_per_stage)
        self.fam_32 = FastAttentionModule(512)
        self.fam_16 = FastAttentionModule(256)
        self.fam_8 = FastAttentionModule(128)
        self.fam_4 = FastAttentionModule(64)
        self.clslayer = ClassifierHead(256, num_classes)
        self.compute_discarded = False

    def forward(self, x: torch.Tensor, mix: ContextMix | None = None) -> torch.Tensor:
        """Logits for ``x``; ``mix(module name, k^T v)`` gives the context each attention
        module attends to (temporal attention, ``fanet.model.temporal``)."""
        return self.decode(x, mix).logits

    def decode(self, x: torch.Tensor, mix: ContextMix | None = None) -> Decoded:
        """The logits and the maps the auxiliary heads of training read."""

        def mixer(name: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
            return None if mix is None else lambda context: mix(name, context)

        feat8, feat16, feat32, feat64 = self.resnet(x)
        p32 = self.fam_32(feat64, mix=mixer("fam_32"))
        up32 = self.fam_32.up(p32)
        if self.compute_discarded:
            self.fam_32.smooth(p32)
        p16 = self.fam_16(feat32, up32, mixer("fam_16"))
        up16, smooth16 = self.fam_16.up(p16), self.fam_16.smooth(p16)
        up8 = self.fam_8.up(self.fam_8(feat16, up16, mixer("fam_8")))
        smooth4 = self.fam_4.smooth(self.fam_4(feat8, up8, mixer("fam_4")))
        logits = self.clslayer(torch.cat([resize_like(smooth16, smooth4), smooth4], dim=1))
        return Decoded(logits, p32, smooth16)
