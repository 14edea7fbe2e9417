"""Model registry: ``create_model(name)``, ``random_model(name, seed)``, ``list_models()``."""

from __future__ import annotations

import torch

from fanet.core.errors import ConfigError
from fanet.model.fanet import FANet

_BLOCKS_PER_STAGE: dict[str, tuple[int, int, int, int]] = {
    "fanet18": (2, 2, 2, 2),
    "fanet34": (3, 4, 6, 3),
}


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return sorted(_BLOCKS_PER_STAGE)


def create_model(name: str, num_classes: int = 19) -> FANet:
    """A freshly initialised FANet in eval mode; unknown names raise ``ConfigError``."""
    if name not in _BLOCKS_PER_STAGE:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be at least 1, got {num_classes}")
    return FANet(name, _BLOCKS_PER_STAGE[name], num_classes).eval()


def random_model(name: str, seed: int = 0, num_classes: int = 19) -> FANet:
    """``create_model`` with its initialisation drawn from ``seed``: the same weights each time.

    Speed comparisons need it: random weights differ in how many denormal floats they
    produce, which moves CPU timings by up to 20 %.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_model(name, num_classes)


def arch_from_blocks(blocks_per_stage: tuple[int, ...]) -> str | None:
    """The registered name whose encoder has these blocks per stage, if any."""
    for name, blocks in _BLOCKS_PER_STAGE.items():
        if blocks == tuple(blocks_per_stage):
            return name
    return None
