"""Fast attention (paper Eq. 3) and the softmax self-attention it replaces (Eq. 1).

Both share one interface: ``Attention(channels, key_channels)(x) -> C x H x W``,
computing the q/k/v 1x1 projections, the attention and the C->C output 1x1
convolution (``latlayer3``), so that their costs compare as in the paper's Table I.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fanet.model.layers import ConvBN

KEY_CHANNELS = 32


def resize_like(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` to ``reference``'s H x W with align_corners=True."""
    return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=True)


class _Projections(nn.Module):
    """The q/k/v 1x1 projections and the C->C output convolution both attentions share."""

    def __init__(self, channels: int, key_channels: int = KEY_CHANNELS) -> None:
        super().__init__()
        self.w_qs = ConvBN(channels, key_channels, 1, activation=False)
        self.w_ks = ConvBN(channels, key_channels, 1, activation=False)
        self.w_vs = ConvBN(channels, channels, 1)
        self.latlayer3 = ConvBN(channels, channels, 1)


class FastAttention(_Projections):
    """Cosine-similarity attention computed right to left: q . (k^T . v), O(n c^2).

    As in the released code there is no 1/n factor. ``context`` (k^T v, key_channels x C)
    is a separate step so that a temporal variant can accumulate it over frames.
    """

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised queries, N x n x key_channels."""
        return F.normalize(self.w_qs(x), p=2, dim=1).flatten(2).transpose(1, 2)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """k^T v for the L2-normalised keys: N x key_channels x C."""
        keys = F.normalize(self.w_ks(x), p=2, dim=1).flatten(2)
        values = self.w_vs(x).flatten(2).transpose(1, 2)
        return torch.matmul(keys, values)

    def attend(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """q . context, reshaped to x's N x C x H x W, through ``latlayer3``."""
        y = torch.matmul(self.queries(x), context).transpose(1, 2).reshape(x.shape)
        return self.latlayer3(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attend(x, self.context(x))


class SelfAttention(_Projections):
    """Reference softmax self-attention, softmax(q k^T) v: O(n^2 c). Tests and Table I only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        queries = self.w_qs(x).flatten(2).transpose(1, 2)
        keys = self.w_ks(x).flatten(2)
        values = self.w_vs(x).flatten(2).transpose(1, 2)
        affinity = torch.softmax(torch.matmul(queries, keys), dim=-1)
        y = torch.matmul(affinity, values).transpose(1, 2).reshape(x.shape)
        return self.latlayer3(y)


class FastAttentionModule(FastAttention):
    """One decoder stage: fast attention + residual, fusion of the coarser stage, two heads.

    ``up`` is a 1x1 convolution with padding 1 (a quirk of the released code), so its
    output is (H+2) x (W+2). ``smooth`` is a 3x3 convolution to 128 channels.
    """

    def __init__(self, channels: int, key_channels: int = KEY_CHANNELS) -> None:
        super().__init__(channels, key_channels)
        self.up = ConvBN(channels, channels // 2, 1, padding=1)
        self.smooth = ConvBN(channels, 128, 3, padding=1)

    def forward(
        self,
        x: torch.Tensor,
        coarse: torch.Tensor | None = None,
        mix: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Fused map p: attention output + x, plus ``coarse`` resized to x's size if given.

        ``mix`` maps this frame's context k^T v to the one attended to (temporal attention
        adds earlier frames'). The stage's outputs are ``self.up(p)`` and ``self.smooth(p)``.
        """
        context = self.context(x)
        p = self.attend(x, mix(context) if mix is not None else context) + x
        if coarse is not None:
            p = p + resize_like(coarse, p)
        return p
