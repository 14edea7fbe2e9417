"""Signals held over work that must not be cut: file renames and first imports."""

import importlib.machinery
import os
import signal
import sys

import pytest

from fanet.core.signals import imports_uninterrupted, signals_deferred


def test_a_signal_inside_the_block_arrives_after_it():
    reached = []
    with pytest.raises(KeyboardInterrupt), signals_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        reached.append("end of block")
    assert reached == ["end of block"]


def test_a_module_interrupted_while_it_imports_finishes_first(tmp_path, monkeypatch):
    marker = tmp_path / "finished"
    (tmp_path / "slow_native.py").write_text(
        "import os, signal\n"
        "os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C halfway through the import\n"
        f"open({str(marker)!r}, 'w').close()  # the rest of its initialisation\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(KeyboardInterrupt), imports_uninterrupted():
        import slow_native  # noqa: F401
    sys.modules.pop("slow_native", None)
    assert marker.exists()  # without the hold, KeyboardInterrupt would cut it before this
    assert all(type(finder).__name__ != "_HoldingFinder" for finder in sys.meta_path)


def test_imported_modules_keep_their_real_loader(tmp_path, monkeypatch):
    (tmp_path / "plain_module.py").write_text("VALUE = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with imports_uninterrupted():
        import plain_module
    assert plain_module.VALUE == 7
    assert isinstance(plain_module.__loader__, importlib.machinery.SourceFileLoader)
    assert plain_module.__spec__.loader is plain_module.__loader__
    del sys.modules["plain_module"]
