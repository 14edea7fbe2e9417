"""Training samples: labelled images, and the frames before them for temporal attention,
from a Cityscapes root or from image and label folders (host side).

Cityscapes labels are label IDs, mapped to train IDs with the Cityscapes table
(``fanet.core.labels``); folders hold train IDs unless told otherwise. A temporal window of
t frames reads the t-1 frames before each labelled one from ``leftImg8bit_sequence`` (as
the paper trained FANet+Temp). Images without a label, labels of another size and windows
missing a frame are skipped with a count; label IDs outside the table are ignored pixels,
counted per batch.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image

from fanet.core.errors import FanetError
from fanet.core.labels import IGNORE
from fanet.core.media_files import read_image
from fanet.core.preprocess import preprocess
from fanet.evaluation.datasets import Pairs
from fanet.evaluation.scoring import LabelTable
from fanet.train.augment import Augmentation

logger = logging.getLogger(__name__)

SEQUENCE_FOLDER = "leftImg8bit_sequence"
_FRAME = re.compile(r"^(?P<prefix>.+_)(?P<frame>\d{6})_leftImg8bit\.png$")


class TrainingDataError(FanetError):
    """Training data cannot be found or used."""


@dataclass(frozen=True)
class Sample:
    frames: tuple[str, ...]  # image paths, the labelled frame last
    label: str
    size: tuple[int, int] = (0, 0)  # the labelled image's (height, width), from its header


def training_samples(pairs: Pairs, window: int = 1, cityscapes: str | None = None) -> list[Sample]:
    """The usable samples of ``pairs`` (a window of ``window`` frames each)."""
    skipped: dict[str, list[str]] = {"without a label": list(pairs.unlabelled)}
    samples = []
    for pair in pairs.pairs:
        size = _size(pair.image)
        if size != _size(pair.label):
            skipped.setdefault("whose label has another size", []).append(pair.label)
            continue
        frames = _window(pair.image, window, cityscapes)
        if frames is None:
            skipped.setdefault(f"without the {window - 1} frames before them", []).append(
                pair.image
            )
            continue
        samples.append(Sample(frames, pair.label, (size[1], size[0]) if size else (0, 0)))
    for reason, files in skipped.items():
        if files:
            logger.warning("skipped %d images %s (first: %s)", len(files), reason, files[0])
    if not samples:
        raise TrainingDataError(f"none of the {len(pairs.pairs)} labelled images can be used")
    return samples


def largest_image(samples: list[Sample]) -> tuple[int, int]:
    """The largest height and the largest width of the samples' labelled images."""
    return max(s.size[0] for s in samples), max(s.size[1] for s in samples)


def _size(path: str) -> tuple[int, int] | None:
    """(width, height) from the file's header, without decoding it."""
    try:
        with Image.open(path) as image:
            return image.size
    except OSError:
        return None


def _window(image: str, window: int, cityscapes: str | None) -> tuple[str, ...] | None:
    """The labelled image and the ``window - 1`` frames before it (oldest first)."""
    if window == 1:
        return (image,)
    if cityscapes is None:
        raise TrainingDataError(
            "temporal training reads the frames before each image from Cityscapes' "
            f"{SEQUENCE_FOLDER}: pass --cityscapes ROOT"
        )
    relative = os.path.relpath(image, os.path.join(cityscapes, "leftImg8bit"))
    folder, name = os.path.split(relative)
    match = _FRAME.match(name)
    if match is None:
        return None
    frame = int(match.group("frame"))
    earlier = [
        os.path.join(
            cityscapes,
            SEQUENCE_FOLDER,
            folder,
            "{}{:06d}_leftImg8bit.png".format(match.group("prefix"), frame - back),
        )
        for back in range(window - 1, 0, -1)
    ]
    if not all(os.path.isfile(path) for path in earlier):
        return None
    return (*earlier, image)


class SegmentationDataset(torch.utils.data.Dataset):
    """Augmented, normalised samples: (t x 3 x H x W frames, H x W train IDs, number of
    pixels whose label ID the table does not know, the sample skipped for it or "").
    A sample whose image or label cannot be decoded (a truncated file) is replaced by the
    next one that can, in worker processes too, and named in the last field, so the
    trainer counts and reports it. ``set_epoch`` changes the draws."""

    def __init__(
        self, samples: list[Sample], table: LabelTable, augmentation: Augmentation, seed: int
    ) -> None:
        self.samples = samples
        self.table = table
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int, str]:
        skipped = ""
        for offset in range(len(self.samples)):
            sample = self.samples[(index + offset) % len(self.samples)]
            try:
                return (*self._item(sample, index), skipped)
            except TrainingDataError as exc:
                skipped = skipped or str(exc)
        raise TrainingDataError(f"none of the {len(self.samples)} training samples decodes")

    def _item(self, sample: Sample, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        raw = _decoded(sample.label, cv2.IMREAD_UNCHANGED)
        frames = [_decoded(path, cv2.IMREAD_COLOR) for path in sample.frames]
        values = np.clip(raw, 0, 255)
        unknown = (raw > 255) | ~self.table.known[values]
        labels = np.where(unknown, IGNORE, self.table.lookup[values]).astype(np.uint8)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        frames, labels = self.augmentation(frames, labels, rng)
        batch = np.concatenate([preprocess(frame) for frame in frames])
        return (
            torch.from_numpy(batch),
            torch.from_numpy(labels.astype(np.int64)),
            int(unknown.sum()),
        )


def _decoded(path: str, flags: int) -> np.ndarray:
    """The image at ``path``; ``TrainingDataError`` naming it where it does not decode."""
    image = read_image(path, flags)
    if image is None:
        raise TrainingDataError(f"cannot decode {path}")
    return image
