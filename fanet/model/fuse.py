"""Fold every BatchNorm into the convolution before it (for export)."""

from __future__ import annotations

import copy
from typing import TypeVar

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from fanet.model.backbone import BasicBlock, ResNetEncoder
from fanet.model.layers import ConvBN


def _fold(owner: nn.Module, conv_name: str, bn_name: str) -> None:
    conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
    setattr(owner, conv_name, fuse_conv_bn_eval(conv, bn))
    setattr(owner, bn_name, nn.Identity())


Model = TypeVar("Model", bound=nn.Module)


def fuse_bn(model: Model) -> Model:
    """An eval-mode copy of ``model`` with each BatchNorm folded into its convolution."""
    fused = copy.deepcopy(model).eval()
    for module in list(fused.modules()):
        if isinstance(module, ConvBN):
            _fold(module, "conv", "bn")
        elif isinstance(module, (BasicBlock, ResNetEncoder)):
            _fold(module, "conv1", "bn1")
            if isinstance(module, BasicBlock):
                _fold(module, "conv2", "bn2")
                if module.downsample is not None:
                    _fold(module.downsample, "0", "1")
    return fused
