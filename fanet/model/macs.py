"""Multiply-accumulate counts measured on the modules (convolutions and matmuls).

The forward pass runs on PyTorch's ``meta`` device under ``FlopCounterMode``, so
counting costs no arithmetic and no memory even for n^2 self-attention.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fanet.core.errors import ConfigError
from fanet.model.attention import KEY_CHANNELS, FastAttention, SelfAttention
from fanet.model.fanet import FANet

ATTENTION_KINDS = {"fast": FastAttention, "self": SelfAttention}

# The paper's Table I: GMAC of one attention module on a C x 128 x 256 map.
PAPER_TABLE_I: dict[str, dict[int, float]] = {
    "self": {32: 68, 64: 103, 128: 173, 256: 313, 512: 602, 1024: 1203},
    "fast": {32: 0.2, 64: 0.6, 128: 1.7, 256: 5, 512: 19, 1024: 73},
}
TABLE_I_SIZE = (128, 256)


def _macs_on_meta(module: nn.Module, input_shape: tuple[int, ...], as_released: bool) -> int:
    meta_module = copy.deepcopy(module).to("meta").eval()
    if isinstance(meta_module, FANet):
        meta_module.compute_discarded = as_released
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta_module(torch.empty(input_shape, device="meta"))
    return counter.get_total_flops() // 2


def count_macs(model: nn.Module, input_size: tuple[int, int], as_released: bool = True) -> int:
    """MACs of one forward pass of ``model`` on a 1 x 3 x H x W input.

    ``as_released`` counts the discarded ``fam_32.smooth`` branch that the authors' code
    evaluates (the paper's figures); ``False`` counts the deployed (exported) graph.
    """
    height, width = input_size
    if height < 1 or width < 1:
        raise ConfigError(f"input size must be positive, got {height}x{width}")
    return _macs_on_meta(model, (1, 3, height, width), as_released)


def attention_macs(
    kind: str, channels: int, height: int, width: int, key_channels: int = KEY_CHANNELS
) -> int:
    """MACs of one attention module (q/k/v projections, attention, C->C output conv)."""
    if kind not in ATTENTION_KINDS:
        raise ConfigError(f"unknown attention kind {kind!r}; choose one of: fast, self")
    with torch.device("meta"):
        module = ATTENTION_KINDS[kind](channels, key_channels)
    return _macs_on_meta(module, (1, channels, height, width), as_released=False)


def count_parameters(model: nn.Module) -> int:
    """Number of learnable parameters (BatchNorm running statistics excluded)."""
    return sum(parameter.numel() for parameter in model.parameters())
