"""The released code's training augmentation, on uint8 images (host side).

Random scale (0.75-2 by default), random crop (padded with ignored pixels where the scaled
image is smaller), horizontal flip and colour jitter (brightness, contrast, saturation by
up to 50 %). Every draw comes from a generator seeded by (seed, epoch, sample), so a sample
is augmented alike in every process of a distributed run and after a resume; the frames of
one sample (a temporal window) get the same draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fanet.core.labels import IGNORE


@dataclass(frozen=True)
class Augmentation:
    """What to draw; ``crop`` is (height, width)."""

    crop: tuple[int, int]
    scale: tuple[float, float] = (0.75, 2.0)
    flip: bool = True
    jitter: float = 0.5  # brightness, contrast and saturation factors in 1 +- jitter

    def __call__(
        self, frames: list[np.ndarray], labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Augmented copies of ``frames`` (BGR uint8, the labelled one last) and ``labels``."""
        factor = rng.uniform(*self.scale)
        height, width = labels.shape
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames]
        labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
        frames, labels = _crop(frames, labels, self.crop, rng)
        if self.flip and rng.random() < 0.5:
            frames, labels = [f[:, ::-1] for f in frames], labels[:, ::-1]
        if self.jitter:
            factors = rng.uniform(1 - self.jitter, 1 + self.jitter, 3)
            frames = [_jitter(f, *factors) for f in frames]
        return [np.ascontiguousarray(f) for f in frames], np.ascontiguousarray(labels)


def _crop(
    frames: list[np.ndarray], labels: np.ndarray, crop: tuple[int, int], rng: np.random.Generator
) -> tuple[list[np.ndarray], np.ndarray]:
    """A random ``crop`` window; image padding is black, label padding ignored."""
    height, width = labels.shape
    pad_h, pad_w = max(crop[0] - height, 0), max(crop[1] - width, 0)
    if pad_h or pad_w:
        border = cv2.BORDER_CONSTANT
        frames = [cv2.copyMakeBorder(f, 0, pad_h, 0, pad_w, border, value=0) for f in frames]
        labels = cv2.copyMakeBorder(labels, 0, pad_h, 0, pad_w, border, value=IGNORE)
        height, width = labels.shape
    top = int(rng.integers(0, height - crop[0] + 1))
    left = int(rng.integers(0, width - crop[1] + 1))
    window = (slice(top, top + crop[0]), slice(left, left + crop[1]))
    return [f[window] for f in frames], labels[window]


def _jitter(image: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """Brightness, contrast (about the mean grey) and saturation (about each pixel's grey)."""
    pixels = image.astype(np.float32) * brightness
    grey = cv2.cvtColor(np.clip(pixels, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
    pixels = (pixels - grey.mean()) * contrast + grey.mean()
    grey = cv2.cvtColor(np.clip(pixels, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
    pixels = grey[:, :, None] + (pixels - grey[:, :, None]) * saturation
    return np.clip(pixels + 0.5, 0, 255).astype(np.uint8)
