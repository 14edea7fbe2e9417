"""Atomic file writes and content hashes (Python 3.6 compatible)."""

import contextlib
import errno
import functools
import hashlib
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from typing import IO, Callable, Dict, Iterator, List, Tuple, TypeVar

from fanet.core.errors import FanetError
from fanet.core.signals import signals_deferred

logger = logging.getLogger(__name__)


class OutputError(FanetError):
    """An output file or folder cannot be written."""


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    On any failure (including KeyboardInterrupt) the temporary file is removed, so no
    half-written artefact ever exists under ``path``.
    """
    temporary = temporary_beside(path)
    try:
        with os.fdopen(os.open(temporary, os.O_WRONLY), mode) as stream:
            yield stream
        publish(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        if isinstance(exc, OSError):
            raise write_failure(exc, path) from None
        raise


@contextlib.contextmanager
def private_folder(prefix: str) -> Iterator[str]:
    """A new folder in the temporary folder, removed on every exit path: it is made and
    removed with SIGINT and SIGTERM held, so a signal at any moment leaves none behind."""
    folder = ""
    try:
        with signals_deferred():
            folder = tempfile.mkdtemp(prefix=prefix)
        yield folder
    finally:
        if folder:
            with signals_deferred():
                shutil.rmtree(folder, ignore_errors=True)


def temporary_beside(path: str, extension: str = "") -> str:
    """A new empty file beside ``path``, named so ``remove_stale_parts`` knows it; with
    ``extension`` (``".mp4"``) for writers that choose a format by the name's ending."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix="." + os.path.basename(path) + ".", suffix=".part" + extension, dir=folder
        )
    except OSError as exc:
        raise write_failure(exc, path) from None
    os.close(handle)
    return temporary


def publish(temporary: str, path: str) -> None:
    """Give ``temporary`` the usual file mode and rename it to ``path``."""
    os.chmod(temporary, 0o666 & ~_current_umask())
    os.replace(temporary, path)


def final_name(path: str) -> str:
    """The file a temporary of ``temporary_beside`` stands for (``path`` itself otherwise)."""
    folder, name = os.path.split(path)
    match = _PART.match(name)
    while match:
        name = match.group("final")
        match = _PART.match(name)
    return os.path.join(folder, name)


def write_failure(exc: OSError, path: str) -> "OutputError":
    """One line for a failed write: the file, the reason and the room left in its folder."""
    target = final_name(path)
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        reason += " ({} free in {})".format(free_space_text(target), _folder(target))
    return OutputError("cannot write {}: {}".format(target, reason))


def free_space_text(path: str) -> str:
    """``"12.3 MB"``: the space left on the file system of ``path``'s folder."""
    try:
        free = shutil.disk_usage(_folder(path)).free
    except OSError:
        return "unknown space"
    return "{:.1f} MB".format(free / 1e6)


def _folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path)) if not os.path.isdir(path) else path


def check_replaceable(path: str, force: bool = False) -> None:
    """Raise ``OutputError`` if ``path`` exists but is read-only (or not a file), unless
    ``force``: a write-protected artefact is never replaced silently."""
    try:
        info = os.lstat(path)
    except OSError:
        return
    if stat.S_ISDIR(info.st_mode):
        raise OutputError("{} is a folder, not a file: choose another name".format(path))
    read_only = not info.st_mode & 0o222 or not os.access(path, os.W_OK)
    if read_only and not force:
        raise OutputError("{} is read-only: pass --force to replace it".format(path))


# temporaries: "." + target name + "." + mkstemp's 8 characters + ".part" [+ extension]
_PART = re.compile(r"^\.(?P<final>.+)\.[a-z0-9_]{8}\.part(?:\.[A-Za-z0-9]{1,8})?$")
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


Result = TypeVar("Result")


def once_per_version(read: Callable[[str], Result]) -> Callable[[str], Result]:
    """``read(path)``, done once per version of the file (its path, inode, size and
    modification time): a file replaced or rewritten is read again. What ``read`` raises
    is not kept."""
    done: Dict[Tuple[str, int, int, int], Result] = {}

    @functools.wraps(read)
    def once(path: str) -> Result:
        info = os.stat(path)
        version = (os.path.abspath(path), info.st_ino, info.st_size, info.st_mtime_ns)
        if version not in done:
            done[version] = read(path)
        return done[version]

    return once


@once_per_version
def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file's bytes (computed once per version of the file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_writable_folder(folder: str) -> None:
    """Raise ``OutputError`` unless ``folder`` exists (or can be made) and is writable."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputError("output folder {} is a file".format(folder))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            "cannot create output folder {}: {}".format(folder, exc.strerror)
        ) from None
    if not os.access(folder, os.W_OK):
        raise OutputError("output folder {} is not writable".format(folder))
