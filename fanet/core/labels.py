"""Cityscapes label table: label IDs, train IDs, names and colours (Python 3.6).

The one table fanet uses, on both sides; ``tests/core/test_labels.py`` holds it equal to
the official ``cityscapesscripts`` table. 255 marks ignored pixels.
"""

from typing import NamedTuple

import numpy as np

IGNORE = 255


class Label(NamedTuple):
    name: str
    id: int
    train_id: int
    color: tuple


LABELS = (
    Label("unlabeled", 0, IGNORE, (0, 0, 0)),
    Label("ego vehicle", 1, IGNORE, (0, 0, 0)),
    Label("rectification border", 2, IGNORE, (0, 0, 0)),
    Label("out of roi", 3, IGNORE, (0, 0, 0)),
    Label("static", 4, IGNORE, (0, 0, 0)),
    Label("dynamic", 5, IGNORE, (111, 74, 0)),
    Label("ground", 6, IGNORE, (81, 0, 81)),
    Label("road", 7, 0, (128, 64, 128)),
    Label("sidewalk", 8, 1, (244, 35, 232)),
    Label("parking", 9, IGNORE, (250, 170, 160)),
    Label("rail track", 10, IGNORE, (230, 150, 140)),
    Label("building", 11, 2, (70, 70, 70)),
    Label("wall", 12, 3, (102, 102, 156)),
    Label("fence", 13, 4, (190, 153, 153)),
    Label("guard rail", 14, IGNORE, (180, 165, 180)),
    Label("bridge", 15, IGNORE, (150, 100, 100)),
    Label("tunnel", 16, IGNORE, (150, 120, 90)),
    Label("pole", 17, 5, (153, 153, 153)),
    Label("polegroup", 18, IGNORE, (153, 153, 153)),
    Label("traffic light", 19, 6, (250, 170, 30)),
    Label("traffic sign", 20, 7, (220, 220, 0)),
    Label("vegetation", 21, 8, (107, 142, 35)),
    Label("terrain", 22, 9, (152, 251, 152)),
    Label("sky", 23, 10, (70, 130, 180)),
    Label("person", 24, 11, (220, 20, 60)),
    Label("rider", 25, 12, (255, 0, 0)),
    Label("car", 26, 13, (0, 0, 142)),
    Label("truck", 27, 14, (0, 0, 70)),
    Label("bus", 28, 15, (0, 60, 100)),
    Label("caravan", 29, IGNORE, (0, 0, 90)),
    Label("trailer", 30, IGNORE, (0, 0, 110)),
    Label("train", 31, 16, (0, 80, 100)),
    Label("motorcycle", 32, 17, (0, 0, 230)),
    Label("bicycle", 33, 18, (119, 11, 32)),
)
LABEL_BY_NAME = {label.name: label for label in LABELS}
TRAIN_CLASSES = tuple(
    sorted(
        (label for label in LABELS if label.train_id != IGNORE), key=lambda label: label.train_id
    )
)  # the 19 classes, in train-ID order


def train_id_palette() -> np.ndarray:
    """256 x 3 uint8 RGB colours indexed by train ID (ignored and unknown: black)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for label in LABELS:
        if label.train_id != IGNORE:
            palette[label.train_id] = label.color
    return palette


def train_id_to_id() -> np.ndarray:
    """256-entry lookup table: train ID -> Cityscapes label ID (what the benchmark server
    reads; unknown train IDs map to 0, unlabeled)."""
    table = np.zeros(256, dtype=np.uint8)
    for label in LABELS:
        if label.train_id != IGNORE:
            table[label.train_id] = label.id
    return table


def colorize(labels: np.ndarray) -> np.ndarray:
    """Cityscapes colours of a train-ID map, H x W x 3 uint8 in BGR (OpenCV) order."""
    return train_id_palette()[labels][:, :, ::-1].copy()


def blend(image: np.ndarray, colours: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``image`` mixed with ``colours`` (both H x W x 3 uint8, same channel order)."""
    mixed = image.astype(np.float32) * (1 - alpha) + colours.astype(np.float32) * alpha
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
