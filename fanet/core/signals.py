"""Hold SIGINT and SIGTERM over work that must not be cut (Python 3.6 compatible): renaming
a set of files into place, or a module's first import: a native library cut halfway
through its initialisation (torch, onnxruntime) can crash the interpreter at exit."""

import contextlib
import importlib.abc
import os
import signal
import sys
import threading
from typing import Any, Iterator, List, Optional


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends; a signal that arrived meanwhile is
    sent again right after, to the usual handler.

    (Blocking the signals with a mask would not do: with other threads running, the
    kernel hands them to a thread that does not block them.)"""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives Python's signal handlers
        return
    held: List[int] = []
    previous = {
        number: signal.signal(number, lambda received, frame: held.append(received))
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for received in held:
            os.kill(os.getpid(), received)


@contextlib.contextmanager
def imports_uninterrupted() -> Iterator[None]:
    """While the block runs, a module's first import holds the signals until it is done."""
    finder = _HoldingFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


class _HoldingFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: gives the other finders' spec a loader that holds signals."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if finder is not self and find else None
            if spec is not None:
                if hasattr(spec.loader, "exec_module"):
                    spec.loader = _HoldingLoader(spec.loader)
                return spec
        return None


class _HoldingLoader(importlib.abc.Loader):
    """The real loader, run with signals held; the module keeps the real loader."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Optional[Any]:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__loader__ = module.__spec__.loader = self.loader
        with signals_deferred():
            self.loader.exec_module(module)
