"""fanet-segment's outputs: whole files or none. A full disk, a protected or folder target
or a failed rename is one line and leaves nothing; read-only files are kept unless
--force; a killed run's temporaries are removed by the next run."""

import os
import sys
import time

import cv2
import pytest

from fanet.cli.device import segment
from fanet.media import writers

from support.commands import captured
from support.small_disk import exit_code_and_names, run_on_small_disk, small_disk_available


def _args(video, model, out):
    return [str(video), "--onnx", str(model), "--video", str(out), "-q"]


@pytest.mark.skipif(not small_disk_available(), reason="cannot mount a small tmpfs here")
def test_a_video_on_a_full_disk_is_one_line_and_leaves_nothing(scenes, exported_trained, tmp_path):
    """OpenCV writes a cut-short MP4 (no index) without an error when the disk fills: the
    video is read back before it is published."""
    _, video = scenes
    small = tmp_path / "small"
    small.mkdir()
    command = [sys.executable, "-m", "fanet.cli.device.segment"]
    command += _args(video, exported_trained, small / "out.mp4")
    result = run_on_small_disk(str(small), 0.25, command)
    code, left = exit_code_and_names(result)
    lines = result.stderr.strip().splitlines()
    assert code == 1 and left == [] and "Traceback" not in result.stderr, result.stderr
    assert lines[-1].startswith("fanet-segment: error: cannot write {}".format(small / "out.mp4"))
    assert "of 60 frames read back" in lines[-1] and "MB free in" in lines[-1]


def test_a_read_only_or_folder_target_is_refused_before_any_work(
    scenes, exported_trained, tmp_path, capsys
):
    _, video = scenes
    kept = tmp_path / "kept.mp4"
    kept.write_bytes(b"mine")
    kept.chmod(0o444)
    assert segment.main(_args(video, exported_trained, kept)) == 1
    assert capsys.readouterr().err == (
        "fanet-segment: error: {} is read-only: pass --force to replace it\n".format(kept)
    )
    assert kept.read_bytes() == b"mine"
    assert segment.main(_args(video, exported_trained, tmp_path)) == 1
    assert "is a folder, not a file" in capsys.readouterr().err
    assert segment.main([*_args(video, exported_trained, kept), "--force"]) == 0
    assert int(cv2.VideoCapture(str(kept)).get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.mp4"]


def test_a_read_only_png_is_refused_unless_forced(scenes, exported_trained, tmp_path, capsys):
    paths, _ = scenes
    target = tmp_path / (paths[0].stem + "_trainIds.png")
    target.write_bytes(b"mine")
    target.chmod(0o444)
    args = [str(paths[0]), "--onnx", str(exported_trained), "--labels", "-o", str(tmp_path)]
    assert segment.main(args) == 1
    assert "is read-only: pass --force to replace it" in capsys.readouterr().err
    assert target.read_bytes() == b"mine"
    assert segment.main([*args, "--force"]) == 0
    assert cv2.imread(str(target), cv2.IMREAD_UNCHANGED).shape == (128, 256)


def test_a_rename_that_fails_is_one_line_and_leaves_nothing(
    scenes, exported_trained, tmp_path, monkeypatch, capsys
):
    """An immutable target (chattr +i) refuses the rename itself."""
    _, video = scenes

    def refused(temporary, path):
        raise PermissionError(1, "Operation not permitted", path)

    monkeypatch.setattr(writers, "publish", refused)
    assert segment.main(_args(video, exported_trained, tmp_path / "out.mp4")) == 1
    error = capsys.readouterr().err
    assert error == "fanet-segment: error: cannot write {}: Operation not permitted\n".format(
        tmp_path / "out.mp4"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_killed_runs_temporaries_are_removed_by_the_next_run(scenes, exported_trained, tmp_path):
    _, video = scenes
    left = [tmp_path / ".out.mp4.ab12cd34.part.mp4", tmp_path / ".out.mp4.ab12cd35.part"]
    for path in left:
        path.write_bytes(b"cut short")
        hours_ago = time.time() - 2 * 3600
        os.utime(str(path), (hours_ago, hours_ago))
    assert segment.main(_args(video, exported_trained, tmp_path / "out.mp4")) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_names_that_are_not_utf8_are_read_and_written(scenes, exported_trained, tmp_path):
    """OpenCV's imread crashes on such names; fanet reads the bytes itself."""
    paths, _ = scenes
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9")  # Latin-1, as older cameras and archives name files
    with open(os.path.join(str(folder), name + ".png"), "wb") as stream:
        stream.write(paths[0].read_bytes())
    out = tmp_path / "out"
    command = [sys.executable, "-m", "fanet.cli.device.segment", str(folder)]
    command += ["--onnx", str(exported_trained), "--labels", "-o", str(out), "-q"]
    result = captured(command)  # in a process of its own: the crash was a segfault
    assert result.returncode == 0, result.stderr
    assert os.listdir(os.fsencode(str(out))) == [b"caf\xe9_trainIds.png"]


def test_an_output_name_too_long_for_the_file_system_is_one_line(
    scenes, exported_trained, tmp_path, capsys
):
    paths, _ = scenes
    long = tmp_path / ("x" * 245 + ".png")  # a valid name; with "_trainIds" it is not
    long.write_bytes(paths[0].read_bytes())
    args = [str(long), "--onnx", str(exported_trained), "--labels", "-o", str(tmp_path / "out")]
    assert segment.main(args) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "File name too long" in error, error


def test_videos_whose_names_are_not_utf8_are_read_and_written(scenes, exported_trained, tmp_path):
    """OpenCV's video reader and writer crash on such names too (a segmentation fault)."""
    _, video = scenes
    source = os.path.join(str(tmp_path), os.fsdecode(b"dr\xefve.mp4"))
    with open(source, "wb") as stream:
        stream.write(video.read_bytes())
    out = os.path.join(str(tmp_path), os.fsdecode(b"\xe9tude.mp4"))
    command = [sys.executable, "-m", "fanet.cli.device.segment", source]
    command += ["--onnx", str(exported_trained), "--video", out, "-q"]
    result = captured(command)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(os.fsencode(str(tmp_path)))) == [b"dr\xefve.mp4", b"\xe9tude.mp4"]
    with open(out, "rb") as written:
        linked = tmp_path / "check.mp4"
        linked.write_bytes(written.read())
    assert int(cv2.VideoCapture(str(linked)).get(cv2.CAP_PROP_FRAME_COUNT)) == 60


def test_the_video_container_follows_the_name(scenes, exported_trained, tmp_path, capsys):
    """out.avi is an AVI (Motion JPEG), out.mp4 an MP4; another ending is refused first."""
    _, video = scenes
    for name, magic in (("out.avi", b"AVI "), ("out.mp4", b"ftyp")):
        assert segment.main(_args(video, exported_trained, tmp_path / name)) == 0
        head = (tmp_path / name).read_bytes()[:12]
        assert magic in head, (name, head)
        capture = cv2.VideoCapture(str(tmp_path / name))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 60
        capture.release()
    assert segment.main(_args(video, exported_trained, tmp_path / "out.mkv")) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"fanet-segment: error: --video {tmp_path / 'out.mkv'}: write .avi or .mp4 "
        "(the container follows the name)"
    )
    assert not (tmp_path / "out.mkv").exists()
