"""fanet-segment on ROS 2 bags (rosbag2's MCAP): Image and CompressedImage topics in, a bag of
the results out with the camera messages' times and headers, and bad bags in one line
(Python 3.7+: mcap)."""

import logging

import cv2
import numpy as np
import pytest

from fanet.cli.device import segment
from fanet.core.labels import train_id_palette
from fanet.runtime.segmenter import Segmenter

pytest.importorskip("mcap_ros2", reason="mcap-ros2-support is not installed (fanet[bags])")

from support.camera_bags import FIRST_STAMP_NS, read_topic, write_camera_bag  # noqa: E402

FRAMES = 12


@pytest.fixture(scope="module")
def camera_frames(scenes):
    paths, _ = scenes
    return [cv2.imread(str(path)) for path in paths[:FRAMES]]


@pytest.fixture(scope="module")
def camera_bag(camera_frames, tmp_path_factory):
    path = tmp_path_factory.mktemp("bag") / "drive.mcap"
    stamps = write_camera_bag(path, camera_frames)
    return path, stamps


@pytest.mark.parametrize("topic", ["/camera/image_raw", "/camera/image_raw/compressed"])
def test_a_bag_round_trip_keeps_times_and_headers_and_gives_the_segmenter_s_labels(
    topic, camera_bag, camera_frames, exported_trained, tmp_path
):
    bag, stamps = camera_bag
    out = tmp_path / "seg.mcap"
    args = [str(bag), "--topic", topic, "--onnx", str(exported_trained), "--bag-out", str(out)]
    assert segment.main(args + ["--bag-outputs", "labels,color"]) == 0
    source = read_topic(bag, topic)
    labels = read_topic(out, "/fanet/labels")
    colours = read_topic(out, "/fanet/color")
    assert len(labels) == len(colours) == len(source) == FRAMES
    with Segmenter.from_file(exported_trained) as segmenter:
        for (log, published, camera), (out_log, out_published, message), (_, _, colour) in zip(
            source, labels, colours
        ):
            assert (out_log, out_published) == (log, published)
            stamp = message.header.stamp
            assert (stamp.sec, stamp.nanosec) == (
                camera.header.stamp.sec,
                camera.header.stamp.nanosec,
            )
            assert message.header.frame_id == "camera_optical"
            if topic.endswith("compressed"):
                image = cv2.imdecode(np.frombuffer(camera.data, np.uint8), cv2.IMREAD_COLOR)
            else:
                image = np.frombuffer(camera.data, np.uint8).reshape(128, 256, 3)
            expected = segmenter(image)
            assert message.encoding == "mono8"
            got = np.frombuffer(message.data, np.uint8).reshape(128, 256)
            np.testing.assert_array_equal(got, expected)
            assert colour.encoding == "rgb8"
            np.testing.assert_array_equal(
                np.frombuffer(colour.data, np.uint8).reshape(128, 256, 3),
                train_id_palette()[expected],
            )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.mcap"]  # no temporaries


def test_bag_copy_carries_the_source_topics_along(camera_bag, exported_trained, tmp_path):
    bag, _ = camera_bag
    out = tmp_path / "seg.mcap"
    args = ["--topic", "/camera/image_raw", "--onnx", str(exported_trained), "--bag-copy"]
    assert segment.main([str(bag), "--bag-out", str(out)] + args) == 0
    for topic in ("/camera/image_raw", "/camera/image_raw/compressed", "/notes"):
        assert [m[:2] for m in read_topic(out, topic)] == [m[:2] for m in read_topic(bag, topic)]
    assert len(read_topic(out, "/fanet/labels")) == FRAMES


def test_pngs_and_a_video_come_from_a_bag_too(camera_bag, exported_trained, tmp_path):
    bag, _ = camera_bag
    args = [str(bag), "--topic", "/camera/image_raw", "--onnx", str(exported_trained)]
    video = tmp_path / "overlay.mp4"
    assert segment.main(args + ["--labels", "-o", str(tmp_path), "--video", str(video)]) == 0
    assert len(list(tmp_path.glob("frame_*_trainIds.png"))) == FRAMES
    assert int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES


def test_a_mono8_topic_gives_overlays_and_a_video(camera_frames, exported_trained, tmp_path):
    bag = tmp_path / "gray.mcap"
    gray = [cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) for frame in camera_frames]
    write_camera_bag(bag, gray, compressed_topic="")  # one-channel frames: mono8
    video = tmp_path / "overlay.mp4"
    args = [str(bag), "--onnx", str(exported_trained), "--overlay", "-o", str(tmp_path)]
    assert segment.main(args + ["--video", str(video)]) == 0
    overlays = sorted(tmp_path.glob("frame_*_overlay.png"))
    assert len(overlays) == FRAMES and cv2.imread(str(overlays[0])).shape == (128, 256, 3)
    assert int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES


def test_a_temporal_model_starts_again_where_the_topic_s_time_jumps(
    camera_frames, temporal_export, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    bag = tmp_path / "looped.mcap"
    half = FRAMES // 2
    second = 10**9
    stamps = [FIRST_STAMP_NS + index * second // 30 for index in range(half)] * 2  # played twice
    stamps[-1] += 5 * second  # and a gap of five seconds
    write_camera_bag(bag, camera_frames, compressed_topic="", stamps_ns=stamps)
    args = [str(bag), "--onnx", str(temporal_export), "--temporal", "2", "--labels"]
    assert segment.main(args + ["-o", str(tmp_path)]) == 0
    assert "state reset at 2 cuts" in caplog.text


def test_a_bag_cut_short_is_read_up_to_the_cut_and_said(
    camera_frames, exported_trained, tmp_path, caplog
):
    whole = tmp_path / "whole.mcap"
    write_camera_bag(whole, camera_frames, compressed_topic="", chunk_size=20000)
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    caplog.set_level(logging.INFO)
    out = tmp_path / "seg.mcap"
    args = [str(cut), "--topic", "/camera/image_raw", "--onnx", str(exported_trained)]
    assert segment.main(args + ["--bag-out", str(out)]) == 0
    read = len(read_topic(out, "/fanet/labels"))
    assert 0 < read < FRAMES
    assert "has no index (a recording cut short?)" in caplog.text
    assert "ends early, after {} messages of /camera/image_raw".format(read) in caplog.text


def test_bad_bags_and_topics_are_one_line(camera_bag, exported_trained, tmp_path, capsys):
    bag, _ = camera_bag
    text = tmp_path / "notes.mcap"
    text.write_text("not a bag")
    model = ["--onnx", str(exported_trained), "--labels", "-o", str(tmp_path)]
    cases = [
        ([str(bag)] + model, "has several image topics: choose one with --topic: "
         "/camera/image_raw (sensor_msgs/msg/Image, 12 messages), /camera/image_raw/compressed "
         "(sensor_msgs/msg/CompressedImage, 12 messages)"),
        ([str(bag), "--topic", "/notes"] + model, "has no image topic /notes; its image topics: "),
        ([str(text)] + model, "notes.mcap is not an MCAP file"),
        ([str(tmp_path / "gone.mcap")] + model, "no such bag: "),
        ([str(bag), "--topic", "/camera/image_raw", "--onnx", str(exported_trained),
          "--bag-out", str(tmp_path / "seg.bag")], "--bag-out " + str(tmp_path / "seg.bag")),
        ([str(tmp_path / "frame.png"), "--bag-out", str(tmp_path / "o.mcap")] + model,
         "--topic, --bag-out and --bag-copy read a ROS 2 bag (.mcap)"),
    ]  # fmt: skip
    cv2.imwrite(str(tmp_path / "frame.png"), np.zeros((8, 8, 3), np.uint8))
    for args, expected in cases:
        assert segment.main(args) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], (args, err)
