"""Where calibration images come from: a Cityscapes root, a folder of images, or a video."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from fanet.calibration.errors import CalibrationError
from fanet.core.media_files import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    find_files,
    is_image_name,
    opencv_path,
    read_image,
)
from fanet.evaluation.datasets import CITYSCAPES_IMAGE, DatasetError, cityscapes_images


@dataclass(frozen=True)
class ImageSource:
    """A resolved calibration source: image files, or one video and its frame count."""

    kind: str  # "cityscapes", "folder" or "video"
    paths: tuple[str, ...]
    frame_count: int = 0

    def __len__(self) -> int:
        return self.frame_count if self.kind == "video" else len(self.paths)

    def fingerprint(self) -> str:
        """SHA-256 over the file names, sizes and modification times."""
        digest = hashlib.sha256(self.kind.encode())
        for path in self.paths:
            stat = os.stat(path)
            digest.update(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        return digest.hexdigest()

    def read(self, index: int) -> np.ndarray | None:
        """The index-th image (BGR uint8), or None when it cannot be decoded."""
        if self.kind == "video":
            with opencv_path(self.paths[0]) as name:
                capture = cv2.VideoCapture(name)
                try:
                    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
                    ok, frame = capture.read()
                finally:
                    capture.release()
            return frame if ok else None
        return read_image(self.paths[index], cv2.IMREAD_COLOR)


def open_source(path: str, split: str = "train", option: str = "--calib-data") -> ImageSource:
    """Resolve ``path`` (Cityscapes root, image folder, or video file) to an ImageSource;
    ``CalibrationError`` names ``option``, the flag that gave ``path``, if it holds none."""
    try:
        return _source(path, split)
    except CalibrationError as exc:
        raise CalibrationError(f"{option}: {exc}") from None


def _source(path: str, split: str) -> ImageSource:
    if os.path.isfile(path):
        if not path.lower().endswith(VIDEO_SUFFIXES):
            raise CalibrationError(
                f"{path} is a file but not a video ({', '.join(VIDEO_SUFFIXES)})"
            )
        with opencv_path(path) as name:
            capture = cv2.VideoCapture(name)
            frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
            capture.release()
        if frames <= 0:
            raise CalibrationError(f"cannot read any frame from video {path}")
        return ImageSource("video", (path,), frames)
    if not os.path.isdir(path):
        raise CalibrationError(f"not found: {path}")
    try:
        cityscapes = cityscapes_images(path, split)
    except DatasetError as exc:
        raise CalibrationError(str(exc)) from None
    if cityscapes is not None:
        if not cityscapes:
            raise CalibrationError(
                f"no *{CITYSCAPES_IMAGE} images under {path}/leftImg8bit/{split}"
            )
        return ImageSource("cityscapes", tuple(cityscapes))
    images = find_files(path, is_image_name)
    if not images:
        raise CalibrationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
    return ImageSource("folder", tuple(images))


def iter_indices(count: int, length: int, rng: np.random.Generator) -> Iterator[int]:
    """``count`` image indices: a shuffled pass over all images, repeated as needed."""
    produced = 0
    while produced < count:
        for index in rng.permutation(length):
            if produced == count:
                return
            produced += 1
            yield int(index)
