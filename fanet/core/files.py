"""Atomic file writes and content hashes (Python 3.6 compatible)."""

import contextlib
import hashlib
import os
import tempfile
from typing import IO, Iterator

from fanet.core.errors import FanetError


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
