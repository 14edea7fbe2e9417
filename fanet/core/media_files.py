"""Image and video files: the suffixes fanet reads, a safe walk of a folder for them, and
reading and writing an image whatever its name (Python 3.6 compatible)."""

import contextlib
import logging
import os
from typing import Callable, Iterator, List, Optional, Set, Tuple

import numpy as np

from fanet.core.files import OutputError, atomic_write, private_folder

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def read_image(path: str, flags: int = 1) -> Optional[np.ndarray]:
    """The image at ``path`` (``flags`` as ``cv2.imread``'s; 1: BGR), decoded by OpenCV from
    bytes Python read, so any name the OS gives works (OpenCV's own path handling can crash
    on names that are not UTF-8); None where it cannot be read or decoded."""
    import cv2

    try:
        with open(path, "rb") as stream:
            content = stream.read()
    except OSError:
        return None
    if not content:
        return None
    return cv2.imdecode(np.frombuffer(content, np.uint8), flags)


def find_files(root: str, wanted: Callable[[str], bool]) -> List[str]:
    """The readable files under ``root`` whose names are ``wanted``, sorted. Linked
    folders are followed once (a link loop is not a loop here); dangling or looping
    links and unreadable folders are skipped with one warning that counts them."""
    found: List[str] = []
    broken: List[object] = []  # paths, or the OSErrors os.walk reports
    seen: Set[Tuple[int, int]] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True, onerror=broken.append):
        identity = _identity(folder)
        if identity is None or identity in seen:
            subfolders[:] = []  # a folder reached again through a link
            continue
        seen.add(identity)
        subfolders.sort()  # the same walk, and so the same paths, on every machine
        for name in names:
            path = os.path.join(folder, name)
            if not wanted(name):
                continue
            if os.path.isfile(path) and os.access(path, os.R_OK):
                found.append(path)
            else:
                broken.append(path)
    if broken:
        logger.warning("skipped %d broken links or unreadable entries under %s", len(broken), root)
    return sorted(found)


def _identity(folder: str) -> Optional[Tuple[int, int]]:
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def write_png(path: str, picture: np.ndarray) -> None:
    """``picture`` encoded as PNG in memory, then written atomically to ``path`` (any
    name the OS gives; ``OutputError`` naming the file where it cannot be)."""
    import cv2

    ok, encoded = cv2.imencode(".png", picture)
    if not ok:
        raise OutputError("cannot encode {}".format(path))
    with atomic_write(path) as stream:
        stream.write(encoded.tobytes())


@contextlib.contextmanager
def opencv_path(path: str) -> Iterator[str]:
    """A name for ``path`` that OpenCV's video reader and writer can take: ``path`` itself,
    or, where it is not valid UTF-8 (OpenCV crashes on such names), a link to it with a
    plain name in a private temporary folder, removed afterwards."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        yield path
        return
    with private_folder("fanet-media-") as folder:
        suffix = os.path.splitext(path)[1]  # the container, as OpenCV reads it from the name
        plain = all(ord(character) < 128 for character in suffix)
        link = os.path.join(folder, "media" + (suffix if plain else ""))
        os.symlink(os.path.abspath(path), link)
        yield link
