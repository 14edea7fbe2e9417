"""Model registry: ``create_model(name)`` and ``list_models()``."""

from __future__ import annotations

from fanet.errors import ConfigError
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


def arch_from_blocks(blocks_per_stage: tuple[int, ...]) -> str | None:
    """The registered name whose encoder has these blocks per stage, if any."""
    for name, blocks in _BLOCKS_PER_STAGE.items():
        if blocks == tuple(blocks_per_stage):
            return name
    return None
