"""An advisory lock on a file, shared by processes on one machine (Python 3.6 compatible).

POSIX ``flock``: Linux (x86 servers, Jetson) and macOS. Where there is none (Windows)
the lock only serialises threads of this process. The lock file is removed on release,
so a finished run leaves nothing behind; a waiter that wakes on a removed file retries.
A thread that already holds a lock may take it again (the export inside a benchmark).
"""

import contextlib
import logging
import os
import threading
from typing import Dict, Iterator, Tuple

from fanet.core.errors import FanetError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

_THREADS = threading.Lock()
_HELD: Dict[Tuple[int, str], int] = {}  # (thread, lock path) -> depth


class LockError(FanetError):
    """A lock file cannot be created."""


def lock_path_for(path: str) -> str:
    """The lock file of ``path``: ``path + ".lock"``."""
    return os.path.abspath(path + ".lock")


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path + ".lock"``, waiting (with a log line) for others."""
    lock_path = lock_path_for(path)
    key = (threading.get_ident(), lock_path)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    if fcntl is None:  # pragma: no cover - Windows
        with _THREADS:
            yield
        return
    handle = _acquire(lock_path)
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            os.remove(lock_path)  # while still held: waiters see it gone and retry
        os.close(handle)  # closing releases the flock


def _acquire(lock_path: str) -> int:
    """An open, flock-ed descriptor of the file now named ``lock_path``."""
    waited = False
    while True:
        handle = _open(lock_path)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not waited:
                    logger.info("waiting for another run that holds %s", lock_path)
                    waited = True
                fcntl.flock(handle, fcntl.LOCK_EX)
            if _is_current(handle, lock_path):
                return handle
        except BaseException:
            os.close(handle)
            raise
        os.close(handle)  # the holder removed the file before we got it: retry


def _open(lock_path: str) -> int:
    try:
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise LockError("cannot create lock {}: {}".format(lock_path, exc.strerror)) from None


def _is_current(handle: int, lock_path: str) -> bool:
    try:
        return os.stat(lock_path).st_ino == os.fstat(handle).st_ino
    except OSError:
        return False
