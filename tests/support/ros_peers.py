"""The other ROS 2 processes of the node tests, and the network rule they run under
(Python 3.6 syntax).

``python -m support.ros_peers camera VIDEO TOPIC FPS STAMPS.json [WAIT_TOPIC...]`` plays a
video as ``sensor_msgs/Image`` (bgr8, sensor-data QoS) at FPS, once a subscriber of TOPIC
and of each WAIT_TOPIC is there, each frame stamped with the time it is sent, and writes
``{stamp_ns: frame index}``. ``python -m support.ros_peers checker TOPIC OUT.pickle
STOP_FILE`` records every message of TOPIC (any type) and of ``/diagnostics`` until
STOP_FILE exists.

``ros_environment(domain)`` is the environment every ROS test runs its processes in:
discovery on localhost only, a domain of the test's own; ``transmitted()`` reads the
bytes sent on every interface but loopback.
"""

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

ROS_DOMAIN_BASE = 100  # tests use domains 100-199; ROS allows 0-232


def ros_environment(domain: int) -> Dict[str, str]:
    """os.environ for a ROS process of a test: loopback only, its own domain."""
    return dict(
        os.environ,
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(ROS_DOMAIN_BASE + domain % 100),
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
    )


def transmitted() -> Dict[str, int]:
    """Bytes transmitted so far by each network interface except loopback."""
    counts = {}
    with open("/proc/net/dev") as table:
        for line in table.readlines()[2:]:
            name, fields = line.split(":", 1)
            if name.strip() != "lo":
                counts[name.strip()] = int(fields.split()[8])
    return counts


def start(command: List[str], env: Dict[str, str], log: Path) -> subprocess.Popen:
    """``command`` in the background, its output in ``log``."""
    with open(str(log), "w") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def peer(role: str, *args: str) -> List[str]:
    """The command line of a ``support.ros_peers`` process."""
    return [sys.executable, "-m", "support.ros_peers", role] + list(args)


def node(*parameters: str, params_file: str = "") -> List[str]:
    """The command line of ``fanet-ros2`` with ``NAME:=VALUE`` parameters (after those of
    ``params_file``)."""
    command = [sys.executable, "-m", "fanet.cli.device.ros2", "--ros-args"]
    if params_file:
        command += ["--params-file", params_file]
    for parameter in parameters:
        command += ["-p", parameter]
    return command


def _wait_for_subscribers(node, topics: List[str], timeout_s: float = 60.0) -> None:
    import rclpy

    deadline = time.monotonic() + timeout_s
    while any(node.count_subscribers(topic) < 1 for topic in topics):
        if time.monotonic() > deadline:
            raise SystemExit("no subscriber of {} after {} s".format(topics, timeout_s))
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)  # let the matching settle on both sides


def camera(video: str, topic: str, fps: float, stamps_path: str, wait_for: List[str]) -> None:
    import cv2
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("camera")
    publisher = node.create_publisher(Image, topic, qos_profile_sensor_data)
    _wait_for_subscribers(node, [topic] + wait_for)
    capture = cv2.VideoCapture(video)
    stamps = {}
    began = time.monotonic()
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        time.sleep(max(0.0, began + index / fps - time.monotonic()))
        message = Image()
        message.header.stamp = node.get_clock().now().to_msg()
        message.header.frame_id = "camera_optical"
        message.height, message.width = frame.shape[:2]
        message.encoding = "bgr8"
        message.step = frame.shape[1] * 3
        message.data = frame.tobytes()
        publisher.publish(message)
        stamp = message.header.stamp
        stamps[stamp.sec * 1000000000 + stamp.nanosec] = index
        index += 1
    time.sleep(1.0)  # the last frames reach the node before the publisher goes
    with open(stamps_path, "w") as out:
        json.dump({str(stamp): index for stamp, index in stamps.items()}, out)
    node.destroy_node()
    rclpy.shutdown()


def checker(topic: str, out_path: str, stop_file: str) -> None:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("checker")
    received = []
    diagnostics = []

    def on_image(message) -> None:
        stamp = message.header.stamp
        received.append(
            {
                "stamp_ns": stamp.sec * 1000000000 + stamp.nanosec,
                "frame_id": message.header.frame_id,
                "encoding": message.encoding,
                "height": message.height,
                "width": message.width,
                "step": message.step,
                "data": bytes(message.data),
            }
        )

    def on_diagnostics(message) -> None:
        for status in message.status:
            values = {value.key: value.value for value in status.values}
            diagnostics.append({"name": status.name, "message": status.message, **values})

    node.create_subscription(Image, topic, on_image, QoSProfile(depth=100))
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    while not os.path.exists(stop_file):
        rclpy.spin_once(node, timeout_sec=0.05)
    with open(out_path, "wb") as out:
        pickle.dump({"images": received, "diagnostics": diagnostics}, out)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "camera":
        camera(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5], sys.argv[6:])
    elif sys.argv[1] == "checker":
        checker(sys.argv[2], sys.argv[3], sys.argv[4])
