"""SetWriter: all files appear together or none does, and the previous set survives."""

import errno
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from fanet.core import set_writer
from fanet.core.files import OutputError
from fanet.core.set_writer import SetWriter


def _write(path: str, text: str) -> None:
    with open(path, "w") as stream:
        stream.write(text)


def _contents(folder) -> dict:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def _previous_set(folder) -> dict:
    (folder / "m.onnx").write_text("old graph")
    (folder / "m.json").write_text("old sidecar")
    return _contents(folder)


def test_commit_renames_every_file_and_removes_obsolete_ones(tmp_path):
    _previous_set(tmp_path)
    (tmp_path / "m_int8.onnx").write_text("made from the old graph")
    with SetWriter(str(tmp_path / "m")) as files:
        _write(files.stage(str(tmp_path / "m.onnx")), "new graph")
        _write(files.stage(str(tmp_path / "m.json")), "new sidecar")
        assert _contents(tmp_path)["m.onnx"] == "old graph"  # nothing visible before commit
        assert Path(files.current(str(tmp_path / "m.onnx"))).read_text() == "new graph"
        files.commit(obsolete=[str(tmp_path / "m_int8.onnx"), str(tmp_path / "m.onnx")])
    assert _contents(tmp_path) == {"m.json": "new sidecar", "m.onnx": "new graph"}


@pytest.mark.parametrize("failure", [ValueError("bad graph"), KeyboardInterrupt()])
def test_a_failure_keeps_the_previous_set_and_adds_no_file(tmp_path, failure):
    before = _previous_set(tmp_path)
    with pytest.raises(type(failure)), SetWriter(str(tmp_path / "m")) as files:
        _write(files.stage(str(tmp_path / "m.onnx")), "new graph")
        _write(files.stage(str(tmp_path / "m_fp16.onnx")), "new fp16 graph")
        raise failure
    assert _contents(tmp_path) == before


def test_a_write_error_is_one_line_naming_the_final_file(tmp_path):
    before = _previous_set(tmp_path)
    with pytest.raises(OutputError) as caught, SetWriter(str(tmp_path / "m")) as files:
        files.stage(str(tmp_path / "m.onnx"))
        raise OSError(errno.ENOSPC, "No space left on device")
    assert str(caught.value).startswith(f"cannot write {tmp_path / 'm.onnx'}: No space left")
    assert "MB free in" in str(caught.value)
    assert _contents(tmp_path) == before


def test_read_only_files_are_refused_unless_forced(tmp_path):
    _previous_set(tmp_path)
    (tmp_path / "m.onnx").chmod(0o444)
    with pytest.raises(OutputError, match="read-only"), SetWriter(str(tmp_path / "m")) as files:
        files.stage(str(tmp_path / "m.onnx"))
    with SetWriter(str(tmp_path / "m"), force=True) as files:
        _write(files.stage(str(tmp_path / "m.onnx")), "new graph")
        files.commit()
    assert (tmp_path / "m.onnx").read_text() == "new graph"


def test_a_signal_during_commit_waits_until_the_whole_set_is_in_place(tmp_path, monkeypatch):
    renamed = []
    publish = set_writer.publish

    def publish_then_signal(temporary, path):
        publish(temporary, path)
        renamed.append(path)
        if len(renamed) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C after the first rename

    monkeypatch.setattr(set_writer, "publish", publish_then_signal)
    other = threading.Thread(target=time.sleep, args=(2,), daemon=True)
    other.start()  # a second thread, as ONNX Runtime's: a signal mask would not hold there
    with pytest.raises(KeyboardInterrupt), SetWriter(str(tmp_path / "m")) as files:
        for name in ("m.onnx", "m.json", "m_fp16.onnx"):
            _write(files.stage(str(tmp_path / name)), name)
        files.commit()
    assert _contents(tmp_path) == {n: n for n in ("m.json", "m.onnx", "m_fp16.onnx")}


def test_a_rename_that_fails_part_way_puts_the_previous_set_back(tmp_path, monkeypatch):
    """The second rename fails (an immutable sidecar, a full disk): the first file, already
    in place, goes back to its previous content, and nothing new is left."""
    before = _previous_set(tmp_path)
    publish = set_writer.publish

    def refuse_the_sidecar(temporary, path):
        if path.endswith("m.json"):
            raise PermissionError(errno.EPERM, "Operation not permitted", path)
        publish(temporary, path)

    monkeypatch.setattr(set_writer, "publish", refuse_the_sidecar)
    refused = pytest.raises(OutputError, match=r"cannot write .*m\.json: Operation not permitted")
    with refused, SetWriter(str(tmp_path / "m")) as files:
        for name in ("m.onnx", "m.json", "m_fp16.onnx"):
            _write(files.stage(str(tmp_path / name)), "new " + name)
        files.commit()
    assert _contents(tmp_path) == before
