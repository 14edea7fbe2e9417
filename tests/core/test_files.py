"""Atomic writes leave nothing behind; stale temporaries of killed runs are removed safely."""

import os
import tempfile
import time

import pytest

from fanet.core.files import atomic_write, remove_stale_parts


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
