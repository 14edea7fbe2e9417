"""fanet-triton's bad input and failed writes: one line each, nothing left behind."""

import os
import sys
import time

import pytest

from fanet.cli.device import triton
from fanet.serving import triton as repository

from support.small_disk import exit_code_and_names, run_on_small_disk, small_disk_available


def _engine(tmp_path, record=None, content=b"serialized by TensorRT"):
    engine = tmp_path / "fanet18.engine"
    engine.write_bytes(content)
    if record is not None:
        (tmp_path / "fanet18.engine.json").write_text(record)
    return engine


@pytest.mark.parametrize(
    "record, content, message",
    [
        (None, b"plan", "has no readable record"),
        ("{not json", b"plan", "has no readable record"),
        ('{"precision": "fp16"}', b"plan", "holds no sidecar: rebuild the engine"),
        (None, b"", "is empty: not a model"),
    ],
)
def test_a_file_that_is_not_a_built_engine_is_refused(tmp_path, capsys, record, content, message):
    engine = _engine(tmp_path, record, content)
    assert triton.main(["--engine", str(engine), "-o", str(tmp_path / "repo")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and "Traceback" not in error
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize("name", ["../outside", "a/b", ".", "..", 'fanet"18', "-rf", ""])
def test_a_name_that_is_not_a_plain_name_is_refused(exported_trained, tmp_path, capsys, name):
    args = ["--onnx", str(exported_trained), "-o", str(tmp_path / "repo"), "--name=" + name]
    assert triton.main(args) == 1
    assert "--name must be a plain name" in capsys.readouterr().err
    assert not (tmp_path / "repo").exists() and not (tmp_path / "outside").exists()


def test_a_protected_repository_is_one_line_and_leaves_nothing(
    exported_trained, tmp_path, capsys, monkeypatch
):
    def refused(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(repository.tempfile, "mkdtemp", refused)
    (tmp_path / "repo").mkdir()
    assert triton.main(["--onnx", str(exported_trained), "-o", str(tmp_path / "repo")]) == 1
    assert capsys.readouterr().err == (
        "fanet-triton: error: cannot write {}: Operation not permitted\n".format(
            tmp_path / "repo" / "fanet18_128x256"
        )
    )
    assert list((tmp_path / "repo").iterdir()) == []


@pytest.mark.skipif(not small_disk_available(), reason="cannot mount a small tmpfs here")
def test_a_full_disk_is_one_line_and_leaves_nothing(exported_trained, tmp_path):
    small = tmp_path / "repo"
    small.mkdir()
    command = [sys.executable, "-m", "fanet.cli.device.triton", "--onnx", str(exported_trained)]
    result = run_on_small_disk(str(small), 0.5, [*command, "-o", str(small)])
    code, left = exit_code_and_names(result)
    assert code == 1 and left == [] and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "fanet-triton: error: cannot write {}: No space left on device (0.0 MB free in {})".format(
            small / "fanet18_128x256", small
        )
    )


def test_a_garbage_onnx_is_named(tmp_path, capsys):
    garbage = tmp_path / "notes.onnx"
    garbage.write_bytes(b"\x0f\xff\xff\xff plain text, not a protobuf")
    assert triton.main(["--onnx", str(garbage), "-o", str(tmp_path / "repo")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("fanet-triton: error: {}: not a valid ONNX protobuf".format(garbage))
    assert error.count("\n") == 1


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(exported_trained, tmp_path):
    repo = tmp_path / "repo"
    left = repo / ".fanet18_128x256.ab12cd34.staging"
    (left / "1").mkdir(parents=True)
    hours_ago = time.time() - 2 * 3600
    os.utime(str(left), (hours_ago, hours_ago))
    assert triton.main(["--onnx", str(exported_trained), "-o", str(repo), "-q"]) == 0
    assert sorted(p.name for p in repo.iterdir()) == ["fanet18_128x256"]
