"""Where frames come from: an image, a folder or glob, a video file, a camera, a stream URL
(Python 3.6 compatible).

``open_frames(spec)`` resolves the spec once, with one clear ``SourceError`` when it
cannot be opened, and yields ``Frame(name, image, captured)``, stamped when read. Frames
that cannot be decoded are skipped and counted; a change of frame size is logged; a
network stream that drops is reopened with exponential backoff, a bounded number of times.

A finite video (a file, or a file served over HTTP) names each frame by its position in
the video, which the reader reports after each frame, so a frame is never given another's
name. Over a network each frame is held back until the next one arrives: the frame being
read when a connection drops can be cut short, and it is read again once the video is
reopened at its position. Frames a source never delivered are counted (``lost``): a
reopened video that lands past them, a stream given up, a file shorter than its container
announces.
"""

import glob
import logging
import os
import time
from typing import Any, Callable, Iterator, List, NamedTuple, Optional

import numpy as np

from fanet.core import media_files
from fanet.core.errors import FanetError
from fanet.core.media_files import IMAGE_SUFFIXES, find_files, is_image_name
from fanet.media.ros_images import Header

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = media_files.VIDEO_SUFFIXES + (".mpg", ".mpeg")  # MPEG streams, as cameras record
URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class SourceError(FanetError):
    """A frame source cannot be opened."""


class Recorded(NamedTuple):
    """Where a frame of a ROS 2 bag was recorded (``fanet.media.bags``)."""

    topic: str
    log_time_ns: int
    publish_time_ns: int
    header: Header


class Frame(NamedTuple):
    name: str  # file stem, or "frame_000042" for videos, streams and bags
    image: np.ndarray
    captured: float = 0.0  # time.perf_counter() when the frame was read; 0: not known
    sequence: int = 0  # the unbroken run of the source it belongs to: + 1 per reconnection
    recorded: Optional[Recorded] = None  # bags: the message the frame came from


class FrameSource:
    """An opened source: iterate it for frames; ``count`` is None for live sources."""

    def __init__(
        self, kind: str, spec: str, count: Optional[int], frames: Callable[[], Iterator[Frame]]
    ) -> None:
        self.kind = kind  # "images", "video", "camera", "stream" or "bag"
        self.spec = spec
        self.count = count
        self.skipped = 0
        self.lost = 0  # frames of a finite video it never delivered
        self.size_changes = 0
        self.reconnects = 0
        self.fps: Optional[float] = None
        self.topic: Optional[str] = None  # bags: the image topic read
        self._frames = frames

    @property
    def live(self) -> bool:
        return self.kind in ("camera", "stream")

    def __iter__(self) -> Iterator[Frame]:
        size = None
        for frame in self._frames():
            shape = frame.image.shape[:2]
            # Photos differ in size as a matter of course; a video or stream that changes
            # size has been cut (and a temporal model starts again).
            if size is not None and shape != size and self.kind != "images":
                self.size_changes += 1
                logger.warning(
                    "%s: frame size changed from %dx%d to %dx%d at %s",
                    self.spec, size[0], size[1], shape[0], shape[1], frame.name,
                )  # fmt: skip
            size = shape
            yield frame


def open_frames(spec: str, reconnects: int = 5, backoff_s: float = 0.5) -> FrameSource:
    """The source ``spec`` names (see the module docstring)."""
    if spec.isdigit():
        return _capture_source("camera", spec, int(spec), reconnects=0, backoff_s=backoff_s)
    if spec.lower().startswith(URL_SCHEMES):
        return _capture_source("stream", spec, spec, reconnects, backoff_s)
    if os.path.isdir(spec):
        return _image_source(spec, find_files(spec, is_image_name))
    if any(character in spec for character in "*?["):
        return _image_source(spec, sorted(p for p in glob.glob(spec) if _is_image(p)))
    if not os.path.exists(spec):
        raise SourceError("no such file, folder, camera or URL: {}".format(spec))
    if _is_image(spec):
        return _image_source(spec, [spec])
    if spec.lower().endswith(VIDEO_SUFFIXES):
        return _video_source(spec)
    raise SourceError(
        "{} is not an image ({}) or a video ({})".format(
            spec, " ".join(IMAGE_SUFFIXES), " ".join(VIDEO_SUFFIXES)
        )
    )


def _is_image(path: str) -> bool:
    return is_image_name(path) and os.path.isfile(path)


def _image_source(spec: str, paths: List[str]) -> FrameSource:
    if not paths:
        raise SourceError("no images ({}) in {}".format(" ".join(IMAGE_SUFFIXES), spec))
    source: Optional[FrameSource] = None

    def frames() -> Iterator[Frame]:
        import cv2

        for path in paths:
            image = media_files.read_image(path, cv2.IMREAD_COLOR)
            if image is None:
                logger.warning("cannot decode %s: skipped", path)
                assert source is not None
                source.skipped += 1
                continue
            name = os.path.splitext(os.path.basename(path))[0]
            yield Frame(name, image, time.perf_counter())

    source = FrameSource("images", spec, len(paths), frames)
    return source


def _video_source(path: str) -> FrameSource:
    import cv2

    with media_files.opencv_path(path) as name:
        capture = cv2.VideoCapture(name)
        if not capture.isOpened():
            raise SourceError("cannot open video {}".format(path))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        fps = capture.get(cv2.CAP_PROP_FPS) or None
        capture.release()

    def frames() -> Iterator[Frame]:
        reader = _Reader(source, count or 0)
        with media_files.opencv_path(path) as name:
            for frame in reader.read(cv2.VideoCapture(name)):
                yield frame
        if count and reader.next_index < count:
            source.lost += count - reader.next_index
            logger.warning(
                "%s ends after %d of the %d frames its container announces",
                path,
                reader.next_index,
                count,
            )

    source = FrameSource("video", path, count, frames)
    source.fps = fps
    return source


def _capture_source(
    kind: str, spec: str, target: Any, reconnects: int, backoff_s: float
) -> FrameSource:
    import cv2

    capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        what = "camera {}".format(spec) if kind == "camera" else "stream {}".format(spec)
        raise SourceError("cannot open {}".format(what))
    fps = capture.get(cv2.CAP_PROP_FPS) or None
    length = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)  # a file over HTTP has one
    opened = [capture]

    def frames() -> Iterator[Frame]:
        reader = _Reader(source, length, hold_back=bool(length))
        attempts = 0
        while True:
            if opened:
                resume = opened.pop()
            else:
                resume = _reopened(target, reader.next_index if length else 0)
            for frame in reader.read(resume):
                attempts = 0
                yield frame
            if length and reader.next_index >= length:
                return  # a finite video, read to its end
            if attempts >= reconnects:
                if reconnects:
                    logger.warning("%s: lost after %d reconnect attempts", spec, attempts)
                if length:
                    source.lost += length - reader.next_index
                    logger.warning(
                        "%s: %d of its %d frames were never read",
                        spec,
                        length - reader.next_index,
                        length,
                    )
                return
            attempts += 1
            source.reconnects += 1
            delay = backoff_s * 2 ** (attempts - 1)
            logger.warning("%s: stream lost; reconnecting in %.1f s", spec, delay)
            time.sleep(delay)

    source = FrameSource(kind, spec, None, frames)
    source.fps = fps
    return source


def _reopened(target: Any, position: int) -> Any:
    """A new capture of ``target``, moved to frame ``position`` of a finite video."""
    import cv2

    capture = cv2.VideoCapture(target)
    if position and capture.isOpened():
        capture.set(cv2.CAP_PROP_POS_FRAMES, position)
    return capture


class _Reader:
    """Frames of OpenCV captures of one source, one capture after another (a stream
    reopened); undecodable frames are counted. With ``length`` (a finite video) a frame
    is named by the position the reader reports, frames read again are passed over and
    frames jumped over are counted lost; ``hold_back`` yields each frame only once the next
    one arrived (or at the video's end), so one cut short by a dropped connection is read
    again instead."""

    def __init__(self, source: FrameSource, length: int = 0, hold_back: bool = False) -> None:
        self.source = source
        self.length = length
        self.hold_back = hold_back
        self.next_index = 0  # the position of the next frame to deliver

    def read(self, capture: Any) -> Iterator[Frame]:
        held: Optional[Frame] = None
        failures = 0
        try:
            while capture.isOpened() and capture.grab():
                index = self._position(capture)
                if index is None:
                    continue  # read already, before the stream was reopened
                if held is not None:
                    yield held
                    held = None
                ok, image = capture.retrieve()
                if not ok or image is None:
                    self.source.skipped += 1
                    failures += 1
                    if failures > 30:
                        break  # a held frame is still delivered or read again below
                    continue
                failures = 0
                frame = Frame(
                    "frame_{:06d}".format(index), image, time.perf_counter(), self.source.reconnects
                )
                self.next_index = index + 1
                if self.hold_back:
                    held = frame
                else:
                    yield frame
            if held is not None and self.length and self.next_index >= self.length:
                yield held  # the last frame: the video ended, it was not cut short
            elif held is not None:
                self.next_index -= 1  # read it again once reopened
        finally:
            capture.release()

    def _position(self, capture: Any) -> Optional[int]:
        """The grabbed frame's position: for a finite video the reader's own count (None
        for a frame delivered already; a jump counts the frames passed over as lost), else
        the next in turn."""
        import cv2

        if not self.length:
            return self.next_index
        index = int(capture.get(cv2.CAP_PROP_POS_FRAMES)) - 1
        if index < 0:
            return self.next_index  # the reader does not say: assume the next
        if index < self.next_index:
            return None
        if index > self.next_index:
            self.source.lost += index - self.next_index
            logger.warning(
                "%s: frames %d to %d were never read", self.source.spec, self.next_index, index - 1
            )
        return index
