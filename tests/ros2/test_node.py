"""fanet-ros2 across processes with real rclpy over Fast DDS on loopback: a camera, the
node and a checker, each its own process."""

import json
import pickle
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fanet.runtime.segmenter import Segmenter

from support.artefacts import fp32_graph, host_artefact
from support.ros_peers import node, peer, start

EXAMPLE_PARAMETERS = Path(__file__).resolve().parents[2] / "examples" / "ros2" / "fanet.yaml"
CAMERA_FPS = 30.0
FRAMES = 60
SIZE = (480, 640)  # the dynamic graph at this size is slower than the camera on a CPU


@pytest.fixture(scope="module")
def camera_video(tmp_path_factory):
    """60 frames of a synthetic street, panning, as an mp4, and the frames as decoded."""
    from fanet.core.synthetic import render_scene

    path = tmp_path_factory.mktemp("camera") / "drive.mp4"
    scene, _ = render_scene(11, SIZE[0], SIZE[1] + 3 * FRAMES)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), CAMERA_FPS, SIZE[::-1])
    for index in range(FRAMES):
        writer.write(np.ascontiguousarray(scene[:, 3 * index : 3 * index + SIZE[1]]))
    writer.release()
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == FRAMES
    return path, frames


def test_each_labels_message_is_the_segmenter_s_for_the_image_of_its_stamp(
    ros_env, camera_video, tmp_path
):
    """And the model, slower than the camera, drops frames instead of queueing them; the
    latency the README quotes is printed (``-s``)."""

    video, frames = camera_video
    graph = fp32_graph(host_artefact("dynamic_export"))
    stop = tmp_path / "stop"
    checker = start(
        peer("checker", "/fanet/labels", str(tmp_path / "seen.pickle"), str(stop)),
        ros_env,
        tmp_path / "checker.log",
    )
    fanet = start(
        node(
            "model:={}".format(graph),
            "input_topic:=/camera/image_raw",
            "diagnostics_period:=0.5",
        ),
        ros_env,
        tmp_path / "node.log",
    )
    camera = start(
        peer("camera", str(video), "/camera/image_raw", str(CAMERA_FPS),
             str(tmp_path / "stamps.json"), "/fanet/labels"),
        ros_env,
        tmp_path / "camera.log",
    )  # fmt: skip
    try:
        assert camera.wait(timeout=120) == 0, (tmp_path / "camera.log").read_text()
        time.sleep(1.5)  # the last labels, and a report after them
        stop.touch()
        assert checker.wait(timeout=60) == 0, (tmp_path / "checker.log").read_text()
        fanet.send_signal(signal.SIGINT)
        assert fanet.wait(timeout=60) == 0, (tmp_path / "node.log").read_text()
    finally:
        for process in (camera, checker, fanet):
            if process.poll() is None:
                process.kill()
    stamps = {
        int(stamp): index
        for stamp, index in json.loads((tmp_path / "stamps.json").read_text()).items()
    }
    seen = pickle.loads((tmp_path / "seen.pickle").read_bytes())
    labels = seen["images"]
    log = (tmp_path / "node.log").read_text()
    assert 3 <= len(labels) < FRAMES, log
    with Segmenter.from_file(graph) as segmenter:
        for message in labels:
            image = frames[stamps[message["stamp_ns"]]]
            assert message["frame_id"] == "camera_optical"
            assert (message["encoding"], message["height"], message["width"]) == ("mono8", *SIZE)
            got = np.frombuffer(message["data"], np.uint8).reshape(SIZE)
            np.testing.assert_array_equal(got, segmenter(image))
    report = {key: float(value) for key, value in seen["diagnostics"][-1].items() if _number(value)}
    print(
        "FANet-18 on {} frames of {}x{} at {:.0f} FPS: {:.0f} ms per frame; capture to publish "
        "{:.0f} ms (median), {:.0f} ms (p99); {:.0f} of {:.0f} received dropped as stale, {:.0f} "
        "missed before the node".format(
            seen["diagnostics"][-1]["backend"],
            SIZE[1], SIZE[0], CAMERA_FPS, report["model latency ms"],
            report["capture to publish ms (median)"], report["capture to publish ms (p99)"],
            report["dropped (stale)"], report["received"], report["missed before the node"],
        )
    )  # fmt: skip
    # the model is slower than the camera: frames are dropped (by the node, or replaced in
    # the subscription's keep-last-1 queue), never queued
    assert report["dropped (stale)"] + report["missed before the node"] > 0, report
    assert report["frames"] == len(labels)
    assert report["frames"] + report["dropped (stale)"] == report["received"], report
    assert report["received"] + report["missed before the node"] <= FRAMES
    assert report["capture to publish ms (median)"] < 2 * report["model latency ms"], report


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Probe:
    """This test's own ROS node: publishes camera images, listens to the node's outputs
    and diagnostics, calls its reset service."""

    def __init__(self, topic: str) -> None:
        import rclpy
        import rclpy.context
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import Image
        from std_srvs.srv import Trigger

        self.context = rclpy.context.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("probe", context=self.context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.camera = self.node.create_publisher(Image, topic, QoSProfile(depth=10))
        self.labels, self.reports = [], []
        self.node.create_subscription(
            Image, "/fanet/labels", self.labels.append, QoSProfile(depth=100)
        )
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.reports.append, 10)
        self.reset = self.node.create_client(Trigger, "/fanet/reset")

    def spin_until(self, done, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, "timed out"
            self.executor.spin_once(timeout_sec=0.05)

    def send(self, image: np.ndarray, stamp_ns: int, encoding: str = "bgr8", data=None) -> None:
        from sensor_msgs.msg import Image

        message = Image()
        message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, 10**9)
        message.header.frame_id = "camera"
        message.height, message.width = image.shape[:2]
        message.encoding = encoding
        message.step = image.shape[1] * (image.shape[2] if image.ndim == 3 else 1)
        message.data = image.tobytes() if data is None else data
        self.camera.publish(message)

    def last_report(self) -> dict:
        status = self.reports[-1].status[0]
        return {value.key: value.value for value in status.values}

    def close(self) -> None:
        self.node.destroy_node()
        self.context.shutdown()


def test_unreadable_messages_are_skipped_and_a_temporal_state_resets_at_cuts(ros_env, tmp_path):
    """Unsupported encodings and short data are skipped, said once; the node goes on. A
    temporal model starts again at a stamp going back, at ~/reset and at a new size."""
    from std_srvs.srv import Trigger

    graph = fp32_graph(host_artefact("temporal"))
    fanet = start(
        node("model:={}".format(graph), "input_topic:=/cam", "temporal:=2",
             "diagnostics_period:=0.2", "qos:=reliable"),
        ros_env,
        tmp_path / "node.log",
    )  # fmt: skip
    probe = _Probe("/cam")
    try:
        probe.spin_until(lambda: probe.camera.get_subscription_count() > 0)
        probe.spin_until(lambda: probe.node.count_publishers("/fanet/labels") > 0)
        time.sleep(0.5)
        image = np.full((64, 128, 3), 90, np.uint8)
        now = int(time.time() * 10**9)
        segmented = []

        def segment(picture, stamp_ns, encoding="bgr8"):
            probe.send(picture, stamp_ns, encoding)
            segmented.append(stamp_ns)
            probe.spin_until(lambda: len(probe.labels) == len(segmented))

        def skip(picture, **fault):
            skipped = len(probe.reports) and int(probe.last_report()["skipped (unreadable)"])
            probe.send(picture, now, **fault)
            probe.spin_until(
                lambda: (
                    bool(probe.reports)
                    and int(probe.last_report()["skipped (unreadable)"]) == skipped + 1
                )
            )

        skip(image, encoding="yuv422")
        skip(image, encoding="yuv422")
        skip(image, data=b"\0" * 100)  # cut short
        segment(image, now)
        segment(image[:, :, 0].copy(), now + 10**8, encoding="mono8")
        segment(image, now - 10**8)  # the stamp goes back: a cut
        called = probe.reset.call_async(Trigger.Request())
        probe.spin_until(called.done)
        assert called.result().success
        segment(image, now + 2 * 10**8)  # after ~/reset: a cut
        segment(np.full((48, 96, 3), 90, np.uint8), now + 3 * 10**8)  # a new size: a cut
        probe.spin_until(lambda: probe.reports and probe.last_report()["frames"] == "5")
        report = probe.last_report()
        fanet.send_signal(signal.SIGTERM)
        assert fanet.wait(timeout=60) == 0
    finally:
        probe.close()
        if fanet.poll() is None:
            fanet.kill()
    log = (tmp_path / "node.log").read_text()
    assert report["skipped (unreadable)"] == "3", report
    assert report["temporal resets"] == "3", report
    assert log.count("encoding 'yuv422' is not read") == 1, log
    assert "needs 24576 bytes" in log and "Traceback" not in log
    assert [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in probe.labels] == segmented
    assert [(m.height, m.width, m.header.frame_id) for m in probe.labels][-2:] == [
        (64, 128, "camera"),
        (48, 96, "camera"),
    ]


def test_the_example_parameters_file_configures_the_node(ros_env, tmp_path):
    """examples/ros2/fanet.yaml (the launch example's): labels and overlay published; a
    topic ending in /compressed carries CompressedImage (JPEG here)."""
    from sensor_msgs.msg import CompressedImage

    graph = fp32_graph(host_artefact("tiny_export"))
    fanet = start(
        node(
            "model:={}".format(graph),
            "input_topic:=/cam/compressed",
            params_file=str(EXAMPLE_PARAMETERS),
        ),
        ros_env,
        tmp_path / "node.log",
    )
    probe = _Probe("/cam")
    jpeg_camera = probe.node.create_publisher(CompressedImage, "/cam/compressed", 10)
    try:
        probe.spin_until(lambda: jpeg_camera.get_subscription_count() > 0)
        probe.spin_until(lambda: probe.node.count_publishers("/fanet/overlay") > 0)
        probe.spin_until(lambda: probe.node.count_publishers("/fanet/labels") > 0)
        assert probe.node.count_publishers("/fanet/color") == 0
        time.sleep(0.5)
        image = np.full((32, 64, 3), (40, 90, 160), np.uint8)
        message = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", image)[1].tobytes())
        message.header.frame_id = "camera"
        jpeg_camera.publish(message)
        probe.spin_until(lambda: len(probe.labels) == 1)
        probe.spin_until(lambda: bool(probe.reports))
        assert probe.last_report()["precision"] == "fp32"
        assert probe.last_report()["input topic"] == "/cam/compressed"
    finally:
        probe.close()
        fanet.send_signal(signal.SIGINT)
        assert fanet.wait(timeout=60) == 0
    decoded = cv2.imdecode(np.frombuffer(message.data, np.uint8), cv2.IMREAD_COLOR)
    with Segmenter.from_file(graph) as segmenter:
        expected = segmenter(decoded)
    got = probe.labels[0]
    assert (got.height, got.width, got.header.frame_id) == (32, 64, "camera")
    np.testing.assert_array_equal(
        np.frombuffer(bytes(got.data), np.uint8).reshape(32, 64), expected
    )


def test_a_missing_model_is_one_line_before_the_node_starts(ros_env, tmp_path):
    missing = tmp_path / "missing.onnx"
    done = subprocess.run(
        node("model:={}".format(missing)),
        env=ros_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "fanet-ros2: error: model file not found: {}".format(missing)
    ]
