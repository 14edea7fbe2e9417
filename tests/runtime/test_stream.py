"""Segmenter.stream: the same labels as one call per frame, pipelined or not; the newest
frame only for live sources, whose latency stays bounded; threads sharing one Segmenter;
flat memory over 10,000 frames."""

import queue
import resource
import threading
import time

import numpy as np
import pytest

from fanet.media.sources import Frame
from fanet.runtime import Segmenter
from fanet.runtime.stream import StreamStats

from support.artefacts import fp32_graph, host_artefact


@pytest.fixture(scope="module")
def small_model():
    """A 32x64 FP32 export (random weights): about 1 ms per frame on ONNX Runtime."""
    path = str(fp32_graph(host_artefact("tiny_export")))
    with Segmenter.from_file(path, backend="onnxruntime") as seg:
        yield seg


def _frames(count, size=(48, 80), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size + (3,), dtype=np.uint8) for _ in range(count)]


@pytest.mark.parametrize("pipelined", [False, True])
def test_stream_gives_the_labels_of_one_call_per_frame(small_model, pipelined):
    frames = _frames(12)
    stats = StreamStats()
    streamed = list(small_model.stream(iter(frames), pipelined=pipelined, stats=stats))
    assert [f is g for (f, _), g in zip(streamed, frames)] == [True] * 12
    for frame, labels in streamed:
        assert np.array_equal(labels, small_model(frame))
    assert stats.frames == 12 and stats.dropped == 0
    assert set(stats.milliseconds()) >= {"read", "preprocess", "infer", "postprocess"}


def test_latest_only_segments_the_newest_frame_and_counts_the_dropped(small_model):
    def camera():  # 200 frames at 1 kHz, much faster than the consumer below
        for index, frame in enumerate(_frames(200)):
            frame[0, 0, 0] = index % 256
            time.sleep(0.001)
            yield frame

    stats = StreamStats()
    seen = []
    for frame, _ in small_model.stream(camera(), latest_only=True, stats=stats):
        seen.append(int(frame[0, 0, 0]))
        time.sleep(0.02)
    assert seen == sorted(seen) and seen[-1] == 199  # in order, and the last one is seen
    assert stats.dropped > 100 and stats.frames + stats.dropped == 200


@pytest.fixture(scope="module")
def slow_model():
    """A dynamic export on one ONNX Runtime thread: about 130 ms per 384x768 frame here."""
    path = str(fp32_graph(host_artefact("dynamic_export")))
    with Segmenter.from_file(path, backend="onnxruntime", threads=1) as seg:
        yield seg


class _Camera:
    """A 30 FPS camera: a driver thread stamps a frame every 1/30 s into an unbounded
    buffer, whatever the reader does; iterating takes frames from that buffer."""

    def __init__(self, seconds, size=(384, 768)):
        self.count = int(seconds * 30)
        self.image = np.random.default_rng(4).integers(0, 256, size + (3,), dtype=np.uint8)

    def __iter__(self):
        buffer = queue.Queue()

        def drive():
            start = time.perf_counter()
            for index in range(self.count):
                time.sleep(max(0.0, start + index / 30 - time.perf_counter()))
                buffer.put(Frame(f"frame_{index:06d}", self.image, time.perf_counter()))
            buffer.put(None)

        threading.Thread(target=drive, daemon=True).start()
        for frame in iter(buffer.get, None):
            yield frame


def test_latest_only_keeps_capture_to_labels_below_two_model_latencies(slow_model):
    image = _Camera(0).image
    slow_model(image)
    model_ms = float(np.median([_timed_ms(lambda: slow_model(image)) for _ in range(5)]))
    assert model_ms > 1000 / 30  # the camera is faster than the model

    live = StreamStats()
    for _ in slow_model.stream(_Camera(2.0), latest_only=True, stats=live):
        pass
    latency = live.latency_ms()
    print(f"model {model_ms:.1f} ms; live capture to labels {latency}, {live.dropped} dropped")
    assert live.dropped > 0 and live.frames + live.dropped == 60
    # a frame waits at most for the inference in flight, then for its own: two model
    # latencies, and the hand-over between threads on top (once 260 ms against 2 x 130)
    assert latency["median"] < 2 * model_ms and latency["max"] < 2.5 * model_ms

    behind = StreamStats()  # every frame, in order: the buffer, and the latency, grow
    for _ in slow_model.stream(_Camera(0.5), stats=behind):
        pass
    print(f"every frame: capture to labels {behind.latency_ms()}")
    assert behind.frames == 15 and behind.latency_ms()["max"] > 4 * model_ms


def _timed_ms(call):
    began = time.perf_counter()
    call()
    return (time.perf_counter() - began) * 1e3


def test_a_failing_source_raises_in_the_consumer(small_model):
    def broken():
        yield _frames(1)[0]
        raise OSError("camera unplugged")

    for options in ({}, {"pipelined": True}, {"latest_only": True}):
        with pytest.raises(OSError, match="camera unplugged"):
            list(small_model.stream(broken(), **options))


def test_four_threads_can_share_one_segmenter(small_model):
    frames = _frames(40, seed=3)
    expected = [small_model(frame) for frame in frames]
    results = [None] * len(frames)

    def work(offset):
        for index in range(offset, len(frames), 4):
            results[index] = small_model(frames[index])

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(a, b) for a, b in zip(results, expected))


def _resident_mb():
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * resource.getpagesize() / 1e6


@pytest.mark.slow
def test_ten_thousand_frames_keep_memory_flat(small_model):
    frame = _frames(1, size=(64, 128))[0]
    resident = []
    stats = StreamStats()
    frames = (frame for _ in range(10_000))
    for count, _ in enumerate(small_model.stream(frames, pipelined=True, stats=stats), 1):
        if count in (500, 10_000):
            resident.append(_resident_mb())
    growth = resident[1] - resident[0]
    print(f"resident memory after warm-up {resident[0]:.1f} MB, growth {growth:+.2f} MB")
    assert stats.frames == 10_000 and growth < 20
