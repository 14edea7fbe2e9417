"""ROS 2 image messages to and from arrays (Python 3.6 compatible).

The same code serves the ROS 2 node (rclpy messages) and rosbag2 recordings (messages
decoded by ``mcap-ros2-support``): a message is read by its fields, and the messages
written are described by plain fields (``image_fields``), which the MCAP writer takes as
they are and the node copies into rclpy messages.

Input: ``sensor_msgs/msg/Image`` in ``bgr8``, ``rgb8`` or ``mono8`` (rows may be padded:
``step``), or ``sensor_msgs/msg/CompressedImage`` in JPEG or PNG. Images come out as
OpenCV does them: BGR, or one channel for ``mono8``.

Output (``OUTPUTS``): ``labels`` (``mono8`` train IDs), ``label_ids`` (``mono8``
Cityscapes label IDs), ``color`` (``rgb8``) and ``overlay`` (``bgr8``), each at the
image's size and with the image's header.
"""

from typing import Any, Dict, List, NamedTuple, Tuple

import numpy as np

from fanet.core.errors import FanetError
from fanet.core.labels import blend, colorize, train_id_palette, train_id_to_id
from fanet.core.preprocess import as_color_image

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
CHANNELS = {"bgr8": 3, "rgb8": 3, "mono8": 1}  # the raw encodings read
COMPRESSED_FORMATS = ("jpeg", "jpg", "png")
OUTPUTS = ("labels", "label_ids", "color", "overlay")
OUTPUT_ENCODINGS = {"labels": "mono8", "label_ids": "mono8", "color": "rgb8", "overlay": "bgr8"}
NANOSECONDS = 1000000000


class UnreadableImage(FanetError):
    """An image message this module cannot read: its encoding, format or size."""


class Header(NamedTuple):
    """A ``std_msgs/msg/Header``: the capture time in nanoseconds and the camera frame."""

    stamp_ns: int
    frame_id: str

    def fields(self) -> Dict[str, Any]:
        """The header as message fields."""
        sec, nanosec = divmod(self.stamp_ns, NANOSECONDS)
        return {"stamp": {"sec": sec, "nanosec": nanosec}, "frame_id": self.frame_id}


def header_of(message: Any) -> Header:
    """The header of an image message."""
    stamp = message.header.stamp
    return Header(int(stamp.sec) * NANOSECONDS + int(stamp.nanosec), str(message.header.frame_id))


def decode(message: Any, compressed: bool) -> np.ndarray:
    """The image of a ``sensor_msgs`` Image (``compressed=False``) or CompressedImage
    message: H x W x 3 BGR, or H x W for ``mono8``; ``UnreadableImage`` otherwise."""
    return _decompressed(message) if compressed else _raw(message)


def _raw(message: Any) -> np.ndarray:
    encoding = str(message.encoding)
    channels = CHANNELS.get(encoding)
    if channels is None:
        raise UnreadableImage(
            "encoding {!r} is not read (use {})".format(encoding, ", ".join(sorted(CHANNELS)))
        )
    height, width, step = int(message.height), int(message.width), int(message.step)
    data = np.frombuffer(_as_bytes(message.data), dtype=np.uint8)
    if height < 1 or width < 1 or step < width * channels or data.size < step * height:
        raise UnreadableImage(
            "a {}x{} {} image needs {} bytes of rows of at least {}, got {} bytes of rows "
            "of {}".format(
                height, width, encoding, height * width * channels, width * channels, data.size,
                step,
            )
        )  # fmt: skip
    rows = data[: step * height].reshape(height, step)[:, : width * channels]
    image = rows.reshape(height, width, channels) if channels > 1 else rows
    if encoding == "rgb8":
        return np.ascontiguousarray(image[:, :, ::-1])
    return np.ascontiguousarray(image)


def _decompressed(message: Any) -> np.ndarray:
    import cv2

    kind = str(message.format).lower()
    if not any(name in kind for name in COMPRESSED_FORMATS):
        raise UnreadableImage(
            "compressed format {!r} is not read (use jpeg or png)".format(str(message.format))
        )
    data = np.frombuffer(_as_bytes(message.data), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise UnreadableImage("a {} image that does not decode".format(str(message.format)))
    if image.dtype != np.uint8:
        raise UnreadableImage("a {}-bit image: 8 bits are read".format(8 * image.itemsize))
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    return image


def _as_bytes(data: Any) -> Any:
    """The buffer of a message's ``data``: bytes (MCAP), array.array or a list (rclpy)."""
    return (
        data
        if isinstance(data, (bytes, bytearray, memoryview)) or hasattr(data, "tobytes")
        else bytes(data)
    )


def rendered(
    wanted: List[str], image: np.ndarray, labels: np.ndarray
) -> List[Tuple[str, np.ndarray, str]]:
    """``(output, pixels, encoding)`` for each of ``wanted`` (``OUTPUTS``), in that order;
    ``image`` is the BGR (or ``mono8``) frame the ``labels`` (train IDs) are of."""
    made = []
    for output in wanted:
        if output == "labels":
            pixels = labels
        elif output == "label_ids":
            pixels = train_id_to_id()[labels]
        elif output == "color":
            pixels = train_id_palette()[labels]
        elif output == "overlay":
            pixels = blend(as_color_image(image), colorize(labels))
        else:
            raise ValueError("no output {!r} (outputs: {})".format(output, ", ".join(OUTPUTS)))
        made.append(
            (output, np.ascontiguousarray(pixels, dtype=np.uint8), OUTPUT_ENCODINGS[output])
        )
    return made


def image_fields(header: Header, pixels: np.ndarray, encoding: str) -> Dict[str, Any]:
    """The fields of a ``sensor_msgs/msg/Image`` holding ``pixels`` (H x W or H x W x 3
    uint8, C-contiguous) in ``encoding``, with ``header``."""
    height, width = pixels.shape[:2]
    return {
        "header": header.fields(),
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": 0,
        "step": width * (pixels.shape[2] if pixels.ndim == 3 else 1),
        "data": pixels.tobytes(),
    }
