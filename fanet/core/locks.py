"""An advisory lock on a file, shared by processes on one machine (Python 3.6 compatible).

POSIX ``flock``: Linux (x86 servers, Jetson) and macOS. Where there is none (Windows)
the lock only serialises threads of this process.
"""

import contextlib
import os
import threading
from typing import Iterator

from fanet.core.errors import FanetError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_THREADS = threading.Lock()


class LockError(FanetError):
    """A lock file cannot be created."""


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path + ".lock"``, waiting for other holders."""
    lock_path = path + ".lock"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
        handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise LockError("cannot create lock {}: {}".format(lock_path, exc.strerror)) from None
    try:
        if fcntl is None:
            with _THREADS:
                yield
        else:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
    finally:
        os.close(handle)  # closing releases the flock
