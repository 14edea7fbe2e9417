"""Atomic writes leave nothing behind; stale temporaries of killed runs are removed safely."""

import os
import re
import resource
import shutil
import signal
import tempfile
import time

import pytest

from fanet.core.files import (
    OutputError,
    atomic_write,
    check_replaceable,
    final_name,
    private_folder,
    remove_stale_parts,
    temporary_beside,
)


def _aged(path, seconds):
    path.write_text("x")
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_only_old_temporaries_of_ours_are_removed(tmp_path):
    handle, name = tempfile.mkstemp(prefix=".m.onnx.", suffix=".part", dir=tmp_path)
    os.close(handle)  # named as atomic_write names its temporaries
    old_ours = _aged(tmp_path / os.path.basename(name), 2 * 3600)
    fresh_ours = _aged(tmp_path / ".m.json.ab12cd34.part", 60)  # a live run's
    old_other = _aged(tmp_path / ".notes.part", 2 * 3600)  # not atomic_write's name
    old_model = _aged(tmp_path / "m.onnx", 2 * 3600)
    (tmp_path / ".dir.abcdefgh.part").mkdir()  # not a file
    assert remove_stale_parts(str(tmp_path)) == [str(old_ours)]
    assert not old_ours.exists()
    assert fresh_ours.exists() and old_other.exists() and old_model.exists()


def test_a_failed_write_leaves_no_temporary(tmp_path):
    target = tmp_path / "m.onnx"
    with pytest.raises(KeyboardInterrupt), atomic_write(str(target)) as stream:
        stream.write(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_has_nothing_to_remove(tmp_path):
    assert remove_stale_parts(str(tmp_path / "absent")) == []


@pytest.fixture
def one_megabyte_files():
    """Files beyond 1 MB fail to grow, as on a full disk (EFBIG instead of ENOSPC)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    yield
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    signal.signal(signal.SIGXFSZ, previous)


def test_a_failed_write_names_the_file_and_the_free_space(tmp_path, one_megabyte_files):
    target = tmp_path / "m.onnx"
    with pytest.raises(OutputError) as caught, atomic_write(str(target)) as stream:
        stream.write(b"x" * (2 << 20))
    message = str(caught.value)
    assert message.startswith(f"cannot write {target}: File too large (")
    assert re.search(r"\(\d+\.\d MB free in ", message) and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_read_only_files_are_refused_unless_forced(tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"graph")
    check_replaceable(str(target))
    target.chmod(0o444)
    with pytest.raises(OutputError, match="m.onnx is read-only: pass --force to replace it"):
        check_replaceable(str(target))
    check_replaceable(str(target), force=True)
    check_replaceable(str(tmp_path / "absent.onnx"))
    with pytest.raises(OutputError, match="is a folder"):
        check_replaceable(str(tmp_path))


def test_temporary_names_map_back_to_their_file(tmp_path):
    temporary = temporary_beside(str(tmp_path / "m.onnx"))
    assert final_name(temporary) == str(tmp_path / "m.onnx")
    assert final_name(str(tmp_path / "m.onnx")) == str(tmp_path / "m.onnx")


def _ctrl_c_after(call):
    def cut(*args, **kwargs):
        made = call(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        return made

    return cut


def _ctrl_c_before(call):
    def cut(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return call(*args, **kwargs)

    return cut


@pytest.mark.parametrize(
    "module, step, cut",
    [(tempfile, "mkdtemp", _ctrl_c_after), (shutil, "rmtree", _ctrl_c_before)],
    ids=["just made", "about to be removed"],
)
def test_ctrl_c_while_a_private_folder_is_made_or_removed_leaves_none(
    tmp_path, monkeypatch, module, step, cut
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(module, step, cut(getattr(module, step)))
    with pytest.raises(KeyboardInterrupt), private_folder("fanet-test-") as folder:
        open(os.path.join(folder, "scratch.onnx"), "wb").close()
    assert os.listdir(str(tmp_path)) == []
