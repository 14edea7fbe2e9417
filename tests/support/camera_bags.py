"""ROS 2 bags of camera images for the tests, written with ``mcap-ros2-support`` as
rosbag2 would record them (Python 3.7+: mcap)."""

from pathlib import Path
from typing import List, Sequence

import cv2
import numpy as np

from fanet.media.bags import IMAGE_DEFINITION
from fanet.media.ros_images import COMPRESSED_TYPE, IMAGE_TYPE, Header, image_fields

COMPRESSED_DEFINITION = (
    "std_msgs/Header header\nstring format\nuint8[] data\n"
    + (IMAGE_DEFINITION.split("uint8[] data\n", 1)[1])
)
STRING_DEFINITION = "string data\n"
FIRST_STAMP_NS = 1700000000 * 10**9
PERIOD_NS = 10**9 // 30


def write_camera_bag(
    path: Path,
    frames: Sequence[np.ndarray],
    raw_topic: str = "/camera/image_raw",
    compressed_topic: str = "/camera/image_raw/compressed",
    stamps_ns: Sequence[int] = (),
    chunk_size: int = 1024 * 1024,
) -> List[int]:
    """Each frame raw on ``raw_topic`` (bgr8, or mono8 for one-channel frames) and as JPEG
    on ``compressed_topic`` (either left out when empty), with a string topic beside them;
    stamps 30 FPS apart unless given; returns the stamps. Messages are logged 30 FPS
    apart, 2 ms after the frame's time, whatever the stamps."""
    from mcap_ros2.writer import Writer

    stamps = list(stamps_ns) or [FIRST_STAMP_NS + index * PERIOD_NS for index in range(len(frames))]
    with open(str(path), "wb") as stream:
        writer = Writer(stream, chunk_size=chunk_size)
        raw = writer.register_msgdef(IMAGE_TYPE, IMAGE_DEFINITION)
        compressed = writer.register_msgdef(COMPRESSED_TYPE, COMPRESSED_DEFINITION)
        text = writer.register_msgdef("std_msgs/msg/String", STRING_DEFINITION)
        for index, (frame, stamp) in enumerate(zip(frames, stamps)):
            header = Header(stamp, "camera_optical")
            logged = FIRST_STAMP_NS + index * PERIOD_NS + 2 * 10**6
            if raw_topic:
                encoding = "mono8" if frame.ndim == 2 else "bgr8"
                fields = image_fields(header, frame, encoding)
                writer.write_message(raw_topic, raw, fields, log_time=logged, publish_time=stamp)
            if compressed_topic:
                jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
                fields = {"header": header.fields(), "format": "jpeg", "data": jpeg}
                writer.write_message(
                    compressed_topic, compressed, fields, log_time=logged + 1, publish_time=stamp
                )
            writer.write_message("/notes", text, {"data": "frame"}, log_time=logged + 2)
        writer.finish()
    return stamps


def read_topic(path: Path, topic: str) -> list:
    """(log time, publish time, decoded message) of each message of ``topic``, in log-time
    order."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(str(path), "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        return [
            (message.log_time, message.publish_time, decoded)
            for _, _, message, decoded in reader.iter_decoded_messages(topics=[topic])
        ]
