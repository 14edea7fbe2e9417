"""Synthetic street scenes in the Cityscapes layout, deterministic by seed.

Each scene has sky, buildings with windows, vegetation, a road with lane marks,
sidewalks, and car- and person-like shapes, with textured colours so that a network
must look at context, not only at a pixel's colour. Files are written as
``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and
``gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png``.
Used for calibration without real images and by the tests (Python 3.6 compatible).
"""

import os
from typing import Any, List, NamedTuple, Tuple

import numpy as np

from fanet.core.labels import LABEL_BY_NAME
from fanet.core.media_files import write_png

CITY = "synthcity"


def _id(name: str) -> int:
    return LABEL_BY_NAME[name].id


class _Canvas(NamedTuple):
    image: np.ndarray  # BGR
    labels: np.ndarray  # label IDs
    rng: np.random.Generator


def _paint(canvas: _Canvas, mask: np.ndarray, name: str, base_bgr: Any, noise: float = 18) -> None:
    color = np.asarray(base_bgr, np.float32) + canvas.rng.normal(0, 12, 3)
    texture = canvas.rng.normal(0, noise, (int(mask.sum()), 3))
    canvas.image[mask] = np.clip(color + texture, 0, 255).astype(np.uint8)
    canvas.labels[mask] = _id(name)


def render_scene(seed: int, height: int = 256, width: int = 512) -> Tuple[np.ndarray, np.ndarray]:
    """A BGR uint8 street scene and its Cityscapes label-ID map (uint8)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.uint8)
    labels = np.zeros((height, width), np.uint8)
    canvas = _Canvas(image, labels, rng)
    rows, cols = np.mgrid[0:height, 0:width]
    horizon = int(height * rng.uniform(0.38, 0.5))
    _paint(canvas, rows < horizon, "sky", (200, 150, 90), noise=6)
    skyline = horizon - rng.integers(height // 8, height // 3, size=width // 16 + 1).repeat(16)
    building = (rows >= skyline[:width][None, :]) & (rows < horizon)
    _paint(canvas, building, "building", (80, 80, 85))
    windows = building & (rows % 12 < 5) & (cols % 14 < 6)
    image[windows] = np.clip(image[windows].astype(np.int16) + 60, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(1, 4)):  # trees
        cx, cy = int(rng.integers(0, width)), horizon - int(rng.integers(0, height // 6))
        radius = rng.integers(height // 12, height // 5)
        tree = (cols - cx) ** 2 + ((rows - cy) * 1.3) ** 2 < radius**2
        _paint(canvas, tree & (rows < horizon + 4), "vegetation", (40, 140, 60), 30)
    centre = width * rng.uniform(0.4, 0.6)
    half = (rows - horizon) * rng.uniform(0.9, 1.3) + width * 0.03
    ground = rows >= horizon
    road = ground & (np.abs(cols - centre) < half)
    _paint(canvas, ground & ~road, "sidewalk", (170, 150, 175), 10)
    _paint(canvas, road, "road", (110, 90, 105), 8)
    marks = road & (np.abs(cols - centre) < 2 + (rows - horizon) * 0.02) & ((rows // 10) % 2 == 0)
    image[marks] = 235
    for _ in range(rng.integers(1, 4)):  # cars
        bottom = int(rng.uniform(horizon + 10, height - 2))
        car_h = max(6, int((bottom - horizon) * 0.6))
        car_w = int(car_h * rng.uniform(1.4, 2.0))
        left = int(np.clip(centre + rng.uniform(-1, 1) * half[bottom, 0] - car_w / 2, 0, width - 1))
        car = (rows > bottom - car_h) & (rows <= bottom) & (cols >= left) & (cols < left + car_w)
        _paint(canvas, car, "car", rng.integers(0, 255, 3), 10)
    for _ in range(rng.integers(0, 3)):  # persons
        bottom = int(rng.uniform(horizon + 5, height - 2))
        person_h = max(8, int((bottom - horizon) * 0.9))
        cx = int(rng.uniform(0, width))
        body = (
            (np.abs(cols - cx) < person_h * 0.15)
            & (rows > bottom - person_h * 0.8)
            & (rows <= bottom)
        )
        head = (cols - cx) ** 2 + (rows - (bottom - person_h * 0.88)) ** 2 < (person_h * 0.12) ** 2
        _paint(canvas, body | head, "person", (60, 40, 180), 20)
    return image, labels


def write_cityscapes(
    root: str, split: str, count: int, seed: int = 0, size: Tuple[int, int] = (256, 512)
) -> List[str]:
    """Write ``count`` scenes in the Cityscapes layout under ``root``; returns image paths."""
    image_dir = os.path.join(root, "leftImg8bit", split, CITY)
    label_dir = os.path.join(root, "gtFine", split, CITY)
    paths = []
    for index in range(count):
        image, labels = render_scene(seed * 100_003 + index, *size)
        stem = f"{CITY}_{seed:06d}_{index:06d}"
        paths.append(os.path.join(image_dir, f"{stem}_leftImg8bit.png"))
        write_png(paths[-1], image)
        write_png(os.path.join(label_dir, f"{stem}_gtFine_labelIds.png"), labels)
    return paths
