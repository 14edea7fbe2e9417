"""Deterministic calibration crops at the export resolution, preprocessed like the runtime."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from fanet.calibration.errors import CalibrationError
from fanet.calibration.sources import ImageSource, iter_indices
from fanet.core.preprocess import preprocess

logger = logging.getLogger(__name__)


@dataclass
class CropStats:
    """What sampling did: crops made, from which images (indices), unreadable images
    skipped, small images enlarged."""

    crops: int = 0
    indices: set[int] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)
    enlarged: list[str] = field(default_factory=list)


def _at_least(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled up, keeping its aspect, until it covers ``size``."""
    scale = max(size[0] / image.shape[0], size[1] / image.shape[1])
    height = max(size[0], round(image.shape[0] * scale))
    width = max(size[1], round(image.shape[1] * scale))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def _crop(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    height, width = size
    top = int(rng.integers(0, image.shape[0] - height + 1))
    left = int(rng.integers(0, image.shape[1] - width + 1))
    return image[top : top + height, left : left + width]


def sample_crops(
    source: ImageSource,
    count: int,
    size: tuple[int, int],
    seed: int = 0,
    stats: CropStats | None = None,
) -> Iterator[np.ndarray]:
    """Yield ``count`` preprocessed 1 x 3 x H x W crops from full-resolution images.

    Images are visited in a seeded random order and cropped at seeded random positions,
    so the same arguments always give the same crops. Unreadable images are skipped and
    an image smaller than the crop is enlarged to cover it, each counted in ``stats``.
    """
    stats = stats if stats is not None else CropStats()
    rng = np.random.default_rng(seed)
    for index in iter_indices(count + 10 * len(source), len(source), rng):
        if stats.crops == count:
            return
        image = source.read(index)
        name = source.paths[0] if source.kind == "video" else source.paths[index]
        if image is None:
            if name not in stats.skipped:
                stats.skipped.append(name)
                logger.warning("skipped unreadable image %s", name)
            continue
        if image.shape[0] < size[0] or image.shape[1] < size[1]:
            if name not in stats.enlarged:
                stats.enlarged.append(name)
            image = _at_least(image, size)
        stats.crops += 1
        stats.indices.add(index)
        yield preprocess(_crop(image, size, rng))
    if stats.crops < count:
        raise CalibrationError(
            f"only {stats.crops} of {count} crops could be made: {len(stats.skipped)} of "
            f"{len(source)} images are unreadable"
        )
