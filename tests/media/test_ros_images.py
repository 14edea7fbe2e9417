"""ROS 2 image messages to and from arrays: encodings, padded rows, compressed images, the
outputs and their encodings (Python 3.6 compatible: messages are plain objects here)."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from fanet.core.labels import blend, colorize, train_id_palette, train_id_to_id
from fanet.media import ros_images
from fanet.media.ros_images import Header, UnreadableImage, decode, header_of, image_fields

RNG = np.random.RandomState(3)
BGR = RNG.randint(0, 256, (5, 7, 3)).astype(np.uint8)


def _message(fields):
    """A message object from fields, nested ones too (as rclpy and mcap give them)."""
    return SimpleNamespace(
        **{k: _message(v) if isinstance(v, dict) else v for k, v in fields.items()}
    )


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "mono8"])
def test_raw_images_read_back_as_opencv_gives_them(encoding):
    pixels = {"bgr8": BGR, "rgb8": BGR[:, :, ::-1].copy(), "mono8": BGR[:, :, 0].copy()}
    message = _message(image_fields(Header(5, "cam"), pixels[encoding], encoding))
    expected = BGR[:, :, 0] if encoding == "mono8" else BGR
    np.testing.assert_array_equal(decode(message, compressed=False), expected)


def test_padded_rows_and_rclpy_style_data_are_read():
    fields = image_fields(Header(0, ""), BGR, "bgr8")
    padded = np.zeros((5, 32), np.uint8)
    padded[:, :21] = BGR.reshape(5, 21)
    fields.update(step=32, data=padded.tobytes())
    import array

    fields["data"] = array.array("B", fields["data"])  # what rclpy's messages hold
    np.testing.assert_array_equal(decode(_message(fields), compressed=False), BGR)


def test_headers_keep_nanoseconds_and_frame():
    header = Header(1700000000 * 10**9 + 123456789, "camera_optical")
    message = _message(image_fields(header, BGR, "bgr8"))
    assert header_of(message) == header
    assert header.fields()["stamp"] == {"sec": 1700000000, "nanosec": 123456789}


@pytest.mark.parametrize(
    "change, words",
    [
        ({"encoding": "16UC1"}, "encoding '16UC1' is not read (use bgr8, mono8, rgb8)"),
        ({"data": b"\0" * 10}, "a 5x7 bgr8 image needs 105 bytes"),
        ({"step": 20}, "rows of at least 21"),
        ({"height": 0}, "a 0x7 bgr8 image"),
    ],
)
def test_unreadable_raw_images_say_why(change, words):
    fields = image_fields(Header(0, ""), BGR, "bgr8")
    fields.update(change)
    with pytest.raises(UnreadableImage, match=words.replace("(", r"\(").replace(")", r"\)")):
        decode(_message(fields), compressed=False)


@pytest.mark.parametrize("suffix, form", [(".png", "png"), (".jpg", "bgr8; jpeg compressed bgr8")])
def test_compressed_images_decode(suffix, form):
    data = cv2.imencode(suffix, BGR)[1].tobytes()
    got = decode(_message({"format": form, "data": data}), compressed=True)
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "form, data, words",
    [
        ("tiff", b"II*\0", "compressed format 'tiff' is not read"),
        ("jpeg", b"\xff\xd8 not a jpeg", "a jpeg image that does not decode"),
        ("png", b"", "a png image that does not decode"),
    ],
)
def test_unreadable_compressed_images_say_why(form, data, words):
    with pytest.raises(UnreadableImage, match=words):
        decode(_message({"format": form, "data": data}), compressed=True)


def test_outputs_are_what_their_encodings_say():
    labels = RNG.randint(0, 19, (5, 7)).astype(np.uint8)
    made = {name: (pixels, encoding) for name, pixels, encoding in ros_images.rendered(
        list(ros_images.OUTPUTS), BGR, labels)}  # fmt: skip
    assert {name: encoding for name, (_, encoding) in made.items()} == {
        "labels": "mono8", "label_ids": "mono8", "color": "rgb8", "overlay": "bgr8"
    }  # fmt: skip
    np.testing.assert_array_equal(made["labels"][0], labels)
    np.testing.assert_array_equal(made["label_ids"][0], train_id_to_id()[labels])
    np.testing.assert_array_equal(made["color"][0], train_id_palette()[labels])
    np.testing.assert_array_equal(made["overlay"][0], blend(BGR, colorize(labels)))
    gray = ros_images.rendered(["overlay"], BGR[:, :, 0].copy(), labels)[0][1]
    assert gray.shape == (5, 7, 3)
