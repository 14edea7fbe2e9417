"""Image and video files: the suffixes fanet reads, and a safe walk of a folder for them
(Python 3.6 compatible)."""

import logging
import os
from typing import Callable, List, Optional, Set, Tuple

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


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
