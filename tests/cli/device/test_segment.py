"""fanet-segment end to end: images, folders, videos, a camera (a test double), bad sources;
and the robot-loop example on a generated video."""

import logging
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fanet.cli.device import segment
from fanet.core.labels import LABEL_BY_NAME

from support.commands import captured
from support.http_video import served

ROOT = Path(__file__).resolve().parents[3]


def test_a_video_becomes_an_overlay_video_of_the_same_frames(scenes, exported_trained, tmp_path):
    _, video = scenes
    out = tmp_path / "out.mp4"
    assert segment.main([str(video), "--onnx", str(exported_trained), "--video", str(out)]) == 0
    capture = cv2.VideoCapture(str(out))
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        assert frame.shape == (128, 256, 3)
        count += 1
    assert count == 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temporaries


def test_an_image_gives_train_ids_label_ids_and_colours(scenes, exported_trained, tmp_path):
    paths, _ = scenes
    args = [str(paths[0]), "--onnx", str(exported_trained), "-o", str(tmp_path)]
    assert segment.main([*args, "--labels", "--label-ids", "--color"]) == 0
    stem = paths[0].stem
    train = cv2.imread(str(tmp_path / f"{stem}_trainIds.png"), cv2.IMREAD_UNCHANGED)
    ids = cv2.imread(str(tmp_path / f"{stem}_labelIds.png"), cv2.IMREAD_UNCHANGED)
    color = cv2.imread(str(tmp_path / f"{stem}_color.png"))
    assert train.shape == ids.shape == (128, 256) and color.shape == (128, 256, 3)
    road = train == LABEL_BY_NAME["road"].train_id
    assert road.mean() > 0.05 and (ids[road] == LABEL_BY_NAME["road"].id).all()
    truth_path = str(paths[0]).replace("leftImg8bit", "gtFine")
    truth = cv2.imread(truth_path.replace("gtFine.png", "gtFine_labelIds.png"), -1)
    assert (ids == truth).mean() > 0.8  # label IDs, and a trained model that is right


def test_a_folder_skips_and_counts_unreadable_files(scenes, exported_trained, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    paths, _ = scenes
    folder = tmp_path / "in"
    folder.mkdir()
    for path in paths[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    code = segment.main([str(folder), "--onnx", str(exported_trained), "--overlay", "-o", str(out)])
    assert code == 0 and len(list(out.glob("*_overlay.png"))) == 3
    assert "3 images at" in caplog.text and "1 unreadable skipped" in caplog.text


def test_photos_of_several_sizes_are_files_not_a_stream(scenes, exported_trained, tmp_path, caplog):
    """No frame-size warnings, capture latency or reconnects for a folder of photos."""
    caplog.set_level(logging.INFO)
    paths, _ = scenes
    folder = tmp_path / "in"
    folder.mkdir()
    for index, path in enumerate(paths[:3]):
        image = cv2.imread(str(path))
        cv2.imwrite(str(folder / path.name), image[: 64 + 16 * index, : 128 + 32 * index])
    code = segment.main(
        [str(folder), "--onnx", str(exported_trained), "--labels", "-o", str(tmp_path)]
    )
    assert code == 0 and "3 images at" in caplog.text
    for stream_word in ("size changed", "size changes", "capture to labels", "reconnects"):
        assert stream_word not in caplog.text


def test_an_undecodable_image_alone_is_an_error(exported_trained, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    command = [sys.executable, "-m", "fanet.cli.device.segment", str(broken)]
    result = captured(command + ["--onnx", str(exported_trained), "--labels", "-o", str(tmp_path)])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"fanet-segment: error: nothing segmented: {broken} had no frame that could be read "
        "(1 unreadable skipped)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.png"]


class _Camera:
    """cv2.VideoCapture stand-in: 5 frames from camera 0, then it is unplugged (files are
    read by the real one: the written video is read back)."""

    real = cv2.VideoCapture

    def __new__(cls, target):
        return super().__new__(cls) if target == 0 else cls.real(target)

    def __init__(self, target):
        self.opened, self.left = target == 0, 5

    def isOpened(self):
        return self.opened

    def get(self, prop):
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def grab(self):
        self.left -= 1
        return self.left >= 0

    def retrieve(self):
        return True, np.full((128, 256, 3), 90, np.uint8)

    def release(self):
        self.opened = False


def test_a_camera_index_is_a_live_source(monkeypatch, exported_trained, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(cv2, "VideoCapture", _Camera)
    out = tmp_path / "cam.mp4"
    args = ["0", "--onnx", str(exported_trained), "--video", str(out), "--latest-only"]
    assert segment.main(args) == 0
    done = re.search(r"(\d+) frames at .* (\d+) dropped as stale", caplog.text)
    assert out.is_file() and int(done.group(1)) >= 1
    assert int(done.group(1)) + int(done.group(2)) == 5  # the stale ones were dropped
    assert re.search(r"capture to labels \d+ ms \(p99 \d+, max \d+\)", caplog.text)


@pytest.mark.parametrize(
    "source, message",
    [
        ("missing.mp4", "no such file, folder, camera or URL: missing.mp4"),
        ("notes.txt", "notes.txt is not an image"),
        ("7", "cannot open camera 7"),
        ("http://127.0.0.1:9/none.mp4", "cannot open stream http://127.0.0.1:9/none.mp4"),
    ],
)
def test_bad_sources_are_one_line(tmp_path, exported_trained, source, message):
    (tmp_path / "notes.txt").write_text("hello")
    command = [sys.executable, "-m", "fanet.cli.device.segment", source]
    command += ["--onnx", str(exported_trained), "--overlay"]
    result = captured(
        command,
        cwd=tmp_path,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"fanet-segment: error: {message}")


def test_a_video_over_http_is_read_once_to_its_end(scenes, exported_trained, tmp_path, caplog):
    """A real HTTP server, not a double: a finite video's end is not a lost stream."""
    caplog.set_level(logging.INFO)
    _, video = scenes
    out = tmp_path / "out.mp4"
    with served(video.read_bytes()) as url:
        assert segment.main([url, "--onnx", str(exported_trained), "--video", str(out)]) == 0
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    assert "60 frames at" in caplog.text and "stream lost" not in caplog.text


class _Window:
    """cv2's window functions, recorded; the viewer presses q on the third frame."""

    def __init__(self, monkeypatch):
        self.shown, self.destroyed = [], 0
        monkeypatch.setenv("DISPLAY", ":0")
        monkeypatch.setattr(cv2, "namedWindow", lambda name: None)
        monkeypatch.setattr(cv2, "imshow", lambda name, image: self.shown.append(image.shape))
        monkeypatch.setattr(cv2, "waitKey", lambda delay: ord("q") if len(self.shown) == 3 else -1)
        monkeypatch.setattr(cv2, "destroyWindow", lambda name: setattr(self, "destroyed", 1))


def test_show_displays_overlays_until_q(scenes, exported_trained, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    window = _Window(monkeypatch)
    _, video = scenes
    assert segment.main([str(video), "--onnx", str(exported_trained), "--show"]) == 0
    assert window.shown == [(128, 256, 3)] * 3 and window.destroyed == 1
    assert re.search(r"\b3 frames at", caplog.text)


def test_show_without_a_display_or_gui_is_one_line(scenes, exported_trained, monkeypatch, capsys):
    paths, _ = scenes
    args = [str(paths[0]), "--onnx", str(exported_trained), "--show"]
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert segment.main(args) == 1
    assert "--show needs a display" in capsys.readouterr().err
    if "NONE" not in cv2.getBuildInformation().split("GUI:")[1].splitlines()[0]:
        pytest.skip("this OpenCV has a GUI; the headless case needs opencv-python-headless")
    monkeypatch.setenv("DISPLAY", ":0")
    assert segment.main(args) == 1
    assert "--show cannot open a window" in capsys.readouterr().err


def test_nothing_to_write_is_refused(scenes, exported_trained, capsys):
    paths, _ = scenes
    assert segment.main([str(paths[0]), "--onnx", str(exported_trained)]) == 1
    assert "nothing to write" in capsys.readouterr().err


def test_the_robot_loop_example_runs_on_a_video(scenes, exported_trained):
    _, video = scenes
    command = [sys.executable, str(ROOT / "examples" / "robot_loop.py"), str(video)]
    command += ["--model", str(exported_trained), "--frames", "20"]
    result = captured(
        command,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    fractions = [float(line.split("drivable ")[1].rstrip("%")) for line in lines[:20]]
    assert len(fractions) == 20 and all(10 < f < 90 for f in fractions)
    assert lines[-1].startswith("20 frames at")


def test_a_temporal_graph_segments_a_video_with_its_window(
    scenes, temporal_export, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    _, video = scenes
    out = tmp_path / "out.mp4"
    args = [str(video), "--onnx", str(temporal_export), "--video", str(out)]
    assert segment.main([*args, "--temporal", "2"]) == 0
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    assert (
        "60 frames at" in caplog.text
        and "2-frame attention, its state reset at 0 cuts" in caplog.text
    )


@pytest.mark.parametrize(
    "extra, expected, message",
    [
        ([], 1, "is temporal (2 frames): pass --temporal 2"),
        (["--temporal", "4"], 1, "attends to 2 frames, not 4"),
        (["--temporal", "0"], 2, "the temporal window must be a whole number of frames >= 1"),
        (["--reconnects", "-5"], 2, "argument --reconnects: expected a number >= 0, got -5"),
    ],
)
def test_a_temporal_graph_without_its_window_is_one_line(
    scenes, temporal_export, extra, expected, message
):
    paths, _ = scenes
    command = [sys.executable, "-m", "fanet.cli.device.segment", str(paths[0])]
    command += ["--onnx", str(temporal_export), "--overlay", "-o", "out", *extra]
    result = captured(command, cwd=paths[0].parent)
    assert result.returncode == expected and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]


def test_in_an_export_folder_the_plain_graph_runs_and_is_named(
    scenes, exported_trained, temporal_export, tmp_path, caplog
):
    """After the README's step 4 a temporal export sits beside the plain one, newer: a
    command given no model runs the plain one, and says which and what else is there."""
    caplog.set_level(logging.INFO)
    paths, _ = scenes
    folder = tmp_path / "exports"
    folder.mkdir()
    for export in (exported_trained, temporal_export):  # the temporal one written last
        for path in export.parent.iterdir():
            if path.is_file():
                (folder / path.name).write_bytes(path.read_bytes())
    result = captured(
        [sys.executable, "-m", "fanet.cli.device.segment", str(paths[0]), "--labels", "-o", "out"],
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr
    chosen = [line for line in result.stderr.splitlines() if "model: " in line][0]
    others = f"of the exports in {folder}; also there: {temporal_export.name}: pass --onnx"
    assert chosen.endswith(others + " to choose)")
    assert (
        f"model: {exported_trained.name}" in chosen or f"model: ./{exported_trained.name}" in chosen
    )


def test_openvino_segments_as_onnxruntime_does(scenes, exported_trained, tmp_path):
    pytest.importorskip("openvino", reason="OpenVINO is not installed (fanet[openvino])")
    paths, _ = scenes
    labels = {}
    for backend in ("onnxruntime", "openvino"):
        out = tmp_path / backend
        args = [str(paths[0].parent), "--onnx", str(exported_trained), "--backend", backend]
        assert segment.main(args + ["--labels", "-o", str(out)]) == 0
        labels[backend] = np.stack(
            [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(out.glob("*.png"))]
        )
    assert labels["openvino"].shape == (60, 128, 256)
    assert (labels["openvino"] == labels["onnxruntime"]).mean() >= 0.999
