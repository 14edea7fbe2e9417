"""Frame sources: stream reconnects with bounded backoff, size changes, undecodable frames."""

import logging

import cv2
import numpy as np

from fanet.media.sources import open_frames


class _FlakyStream:
    """cv2.VideoCapture stand-in for a URL: each connection gives its frames, then drops;
    the connections after the scripted ones cannot be opened."""

    script = []  # per connection: frame heights, or None for a frame that fails to decode

    def __init__(self, target):
        self.frames = list(self.script.pop(0)) if self.script else None

    def isOpened(self):
        return self.frames is not None

    def get(self, prop):
        return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def grab(self):
        return bool(self.frames)

    def retrieve(self):
        height = self.frames.pop(0)
        return (False, None) if height is None else (True, np.zeros((height, 8, 3), np.uint8))

    def release(self):
        self.frames = None


def test_a_dropped_stream_is_reopened_with_backoff(monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    _FlakyStream.script = [[4, 4, None, 4], [6, 6]]  # then the server is gone
    monkeypatch.setattr(cv2, "VideoCapture", _FlakyStream)
    source = open_frames("rtsp://camera.local/stream", reconnects=3, backoff_s=0.001)
    frames = list(source)
    assert [frame.image.shape[0] for frame in frames] == [4, 4, 4, 6, 6]
    assert [frame.name for frame in frames][-1] == "frame_000004"  # numbering carries on
    assert (source.skipped, source.size_changes, source.reconnects) == (1, 1, 4)
    assert "frame size changed from 4x8 to 6x8" in caplog.text
    assert "lost after 3 reconnect attempts" in caplog.text


class _FiniteStream(_FlakyStream):
    """A 5-frame video over the network: the first connection drops after 3 frames. Like
    OpenCV's reader it reports the position after each frame (``CAP_PROP_POS_FRAMES``)."""

    seeks = []

    def __init__(self, target):
        super().__init__(target)
        self.position = 0

    def get(self, prop):
        if prop == cv2.CAP_PROP_POS_FRAMES:
            return float(self.position)
        return 5.0 if prop == cv2.CAP_PROP_FRAME_COUNT else super().get(prop)

    def set(self, prop, value):
        assert prop == cv2.CAP_PROP_POS_FRAMES
        self.seeks.append(value)
        self.frames, self.position = self.frames[int(value) :], int(value)
        return True

    def grab(self):
        grabbed = super().grab()
        self.position += grabbed
        return grabbed


def test_a_finite_stream_resumes_where_it_dropped_and_ends_at_its_length(monkeypatch):
    """The frame being read when the connection dropped is read again, so the video's
    frames arrive once each, under their own names."""
    _FiniteStream.script = [[4, 4, 4], [4, 4, 4, 8, 8], [9]]  # a third connection: unused
    monkeypatch.setattr(cv2, "VideoCapture", _FiniteStream)
    source = open_frames("http://server.local/drive.mp4", reconnects=3, backoff_s=0.001)
    frames = list(source)
    assert [frame.image.shape[0] for frame in frames] == [4, 4, 4, 8, 8]
    assert [frame.name for frame in frames] == ["frame_{:06d}".format(i) for i in range(5)]
    assert _FiniteStream.seeks == [2] and source.reconnects == 1 and source.lost == 0


def test_frames_a_reopened_stream_jumped_over_are_counted_lost(monkeypatch, caplog):
    """The reopened video lands past the frames asked for: they are counted, and each
    frame keeps its own name."""

    class _Landing(_FiniteStream):
        def set(self, prop, value):
            return super().set(prop, value + 2 if value else value)

    _Landing.script = [[4, 4, 4], [4, 4, 4, 8, 8]]
    monkeypatch.setattr(cv2, "VideoCapture", _Landing)
    source = open_frames("http://server.local/drive.mp4", reconnects=3, backoff_s=0.001)
    names = [frame.name for frame in source]
    assert names == ["frame_000000", "frame_000001", "frame_000004"]
    assert source.lost == 2 and "frames 2 to 3 were never read" in caplog.text
