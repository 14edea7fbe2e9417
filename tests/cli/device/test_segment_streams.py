"""A stream that drops never hides a lost frame: a finite video over HTTP whose connection
is cut is resumed, and every frame's output holds that frame's labels; a frame that could
not be had again is counted and reported, never replaced by another's. A video file that
ends before the frames its container announced says so."""

import logging
import re

import cv2
import numpy as np
import pytest

from fanet.cli.device import segment

from support.http_video import served


def _labels_of(folder):
    return {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in folder.glob("*.png")}


@pytest.mark.parametrize("where", [0.3, 0.55, 0.8])
def test_a_dropped_http_video_gives_each_frame_its_own_labels(
    scenes, exported_trained, tmp_path, caplog, where
):
    caplog.set_level(logging.INFO)
    _, video = scenes
    local = tmp_path / "local"
    assert (
        segment.main(
            [str(video), "--onnx", str(exported_trained), "--labels", "-o", str(local), "-q"]
        )
        == 0
    )
    remote = tmp_path / "remote"
    with served(video.read_bytes(), drop_at=where) as url:
        args = [url, "--onnx", str(exported_trained), "--labels", "-o", str(remote)]
        assert segment.main([*args, "--reconnects", "3"]) == 0
    expected, found = _labels_of(local), _labels_of(remote)
    wrong = [name for name in found if not np.array_equal(found[name], expected[name])]
    lost = sorted(set(expected) - set(found))
    summary = re.search(r"(\d+) frames at .*, (\d+) lost", caplog.text)
    print("cut at {:.0%}: {} frames, lost {}, wrong {}".format(where, len(found), lost, wrong))

    assert "1 reconnects" in caplog.text  # the connection did drop
    assert wrong == []
    assert summary and int(summary.group(1)) == len(found) and int(summary.group(2)) == len(lost)


def test_a_video_shorter_than_its_container_announces_says_so(
    scenes, exported_trained, tmp_path, caplog
):
    """A copy cut short (a download stopped, a recording's power lost) still opens and
    announces every frame; the frames it lacks are counted, not silently missing."""
    caplog.set_level(logging.INFO)
    paths, _ = scenes
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 128))
    for path in paths:
        writer.write(cv2.imread(str(path)))
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    out = tmp_path / "out"
    args = [str(cut), "--onnx", str(exported_trained), "--labels", "-o", str(out)]
    assert segment.main(args) == 0
    read = len(list(out.glob("*.png")))
    assert 0 < read < 60
    assert "ends after {} of the 60 frames its container announces".format(read) in caplog.text
    assert "{} frames at".format(read) in caplog.text
    assert ", {} lost,".format(60 - read) in caplog.text


def test_a_live_source_faster_than_the_model_is_said_to_fall_behind(caplog):
    from types import SimpleNamespace

    stream = SimpleNamespace(live=True, fps=30.0, spec="rtsp://camera/live")
    caplog.set_level(logging.WARNING)
    segment._warn_if_behind(stream, SimpleNamespace(fps=lambda: 8.3), latest_only=False)
    assert "rtsp://camera/live sends 30 FPS and 8.3 FPS were segmented" in caplog.text
    caplog.clear()
    segment._warn_if_behind(stream, SimpleNamespace(fps=lambda: 8.3), latest_only=True)
    segment._warn_if_behind(stream, SimpleNamespace(fps=lambda: 29.5), latest_only=False)
    assert caplog.text == ""
