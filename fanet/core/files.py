"""Atomic file writes and content hashes (Python 3.6 compatible)."""

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import time
from typing import IO, Iterator, List

from fanet.core.errors import FanetError

logger = logging.getLogger(__name__)


class OutputError(FanetError):
    """An output file or folder cannot be written."""


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    On any failure (including KeyboardInterrupt) the temporary file is removed, so no
    half-written artefact ever exists under ``path``.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix="." + os.path.basename(path) + ".", suffix=".part", dir=folder
        )
    except OSError as exc:
        raise OutputError("cannot write to {}: {}".format(folder, exc.strerror)) from None
    try:
        with os.fdopen(handle, mode) as stream:
            yield stream
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


# atomic_write's temporaries: "." + target name + "." + mkstemp's 8 characters + ".part"
_PART = re.compile(r"^\..+\.[a-z0-9_]{8}\.part$")
STALE_PART_SECONDS = 3600.0


def remove_stale_parts(folder: str, older_than_s: float = STALE_PART_SECONDS) -> List[str]:
    """Remove temporaries that killed runs left in ``folder``: only files named like
    ``atomic_write``'s and untouched for ``older_than_s`` (a live run's are fresh)."""
    removed = []  # type: List[str]
    now = time.time()
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        path = os.path.join(folder, name)
        try:
            stale = _PART.match(name) and now - os.lstat(path).st_mtime > older_than_s
            if stale and os.path.isfile(path) and not os.path.islink(path):
                os.remove(path)
                removed.append(path)
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    if removed:
        logger.info("removed %d stale temporary file(s) in %s", len(removed), folder)
    return removed


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_writable_folder(folder: str) -> None:
    """Raise ``OutputError`` unless ``folder`` exists (or can be made) and is writable."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            "cannot create output folder {}: {}".format(folder, exc.strerror)
        ) from None
    if not os.access(folder, os.W_OK):
        raise OutputError("output folder {} is not writable".format(folder))
