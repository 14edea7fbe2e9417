"""Files that belong together, written as one transaction (Python 3.6 compatible).

An export writes graphs, sidecars and calibration caches that are only right side by
side. ``SetWriter`` writes each to a temporary name beside its final one, under a lock
on the set's stem, and renames them all into place in ``commit``; leaving the block
without committing (an error, Ctrl-C, SIGTERM) removes the temporaries, so the folder
keeps its previous set and gains no file. A rename that fails part way (a protected file,
a full disk) puts the previous files back, so the set is never mixed. A run killed outright
(SIGKILL, power loss) leaves temporaries that the next run in that folder removes once they
are an hour old.
"""

import contextlib
import logging
import os
import shutil
from typing import ContextManager, Dict, Iterable, List, Optional, Tuple

from fanet.core.files import (
    check_replaceable,
    check_writable_folder,
    publish,
    remove_stale_parts,
    temporary_beside,
    write_failure,
)
from fanet.core.locks import file_lock
from fanet.core.signals import signals_deferred

logger = logging.getLogger(__name__)


def stem_lock(stem: str) -> ContextManager[None]:
    """The lock an ``SetWriter`` on ``stem`` holds (``out/.fanet18_512x1024.lock``);
    re-entrant, so a caller may hold it around a check and the export it leads to."""
    folder, name = os.path.split(os.path.abspath(stem))
    return file_lock(os.path.join(folder, "." + name))


class SetWriter:
    """``with SetWriter(stem) as files: write to files.stage(path) ...; files.commit()``.

    ``stem`` is the set's common path prefix (``out/fanet18_512x1024``): the lock is
    ``out/.fanet18_512x1024.lock``. Existing read-only files are refused unless ``force``.
    """

    def __init__(self, stem: str, force: bool = False) -> None:
        self.stem = stem
        self.force = force
        self._staged: Dict[str, str] = {}  # final path -> temporary
        self._lock: Optional[contextlib.ExitStack] = None
        self._committed = False

    def __enter__(self) -> "SetWriter":
        folder = os.path.dirname(os.path.abspath(self.stem))
        check_writable_folder(folder)
        stack = contextlib.ExitStack()
        stack.enter_context(stem_lock(self.stem))
        self._lock = stack
        remove_stale_parts(folder)
        return self

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if not self._committed:
                self._discard()
        finally:
            if self._lock is not None:
                self._lock.close()
        if isinstance(error, OSError):
            raise write_failure(error, self._last_path()) from None

    def stage(self, path: str) -> str:
        """A fresh temporary file that becomes ``path`` on commit; write the content there."""
        path = os.path.abspath(path)
        check_replaceable(path, self.force)
        if path in self._staged:
            return self._staged[path]
        self._staged[path] = temporary_beside(path)
        return self._staged[path]

    def current(self, path: str) -> str:
        """Where ``path``'s content is now: its temporary if staged, else ``path``."""
        return self._staged.get(os.path.abspath(path), path)

    def commit(self, obsolete: Iterable[str] = ()) -> None:
        """Rename every staged file into place, then remove ``obsolete`` files of the
        previous set (ones the new set does not replace and that no longer match it)."""
        obsolete = [p for p in obsolete if os.path.abspath(p) not in self._staged]
        for path in obsolete:
            check_replaceable(path, self.force)
        with signals_deferred():
            replaced = []  # type: List[Tuple[str, Optional[str]]]
            try:
                for path, temporary in self._staged.items():
                    replaced.append((path, _set_aside(path)))
                    publish(temporary, path)
            except OSError as exc:
                _roll_back(replaced)
                raise write_failure(exc, path) from None
            self._committed = True
            for _, previous in replaced:
                if previous is not None:
                    os.remove(previous)
            for path in obsolete:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                    logger.info("removed %s: it belonged to the previous export", path)

    def _discard(self) -> None:
        for temporary in self._staged.values():
            with contextlib.suppress(OSError):
                os.remove(temporary)

    def _last_path(self) -> str:
        return list(self._staged)[-1] if self._staged else self.stem


def _set_aside(path: str) -> Optional[str]:
    """A second name beside ``path`` for the file there now (a hard link, else a copy), so
    it can be put back; ``path`` itself stays in place until the rename replaces it."""
    if not os.path.lexists(path):
        return None
    previous = temporary_beside(path)
    try:
        os.replace(_linked(path, previous), previous)
    except OSError:
        os.remove(previous)
        raise
    return previous


def _linked(path: str, beside: str) -> str:
    """A new name for ``path``'s file next to ``beside`` (a copy where links fail)."""
    link = beside + ".link"
    try:
        os.link(path, link)
    except OSError:
        shutil.copy2(path, link)
    return link


def _roll_back(replaced: List[Tuple[str, Optional[str]]]) -> None:
    """Undo a commit that failed part way: each file set aside goes back in place, and
    the new files published without a predecessor are removed."""
    for path, previous in reversed(replaced):
        with contextlib.suppress(OSError):
            if previous is not None:
                os.replace(previous, path)  # a no-op where both still name one file
                if os.path.lexists(previous):
                    os.remove(previous)
            elif os.path.lexists(path):
                os.remove(path)
