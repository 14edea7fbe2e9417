"""Frames in, (frame, labels) out: the streaming loop behind ``Segmenter.stream``
(Python 3.6 compatible).

Two options for live sources:

- ``latest_only``: a reader thread keeps only the newest frame; the loop always works on
  it and counts the frames it never saw (``StreamStats.dropped``), so latency stays one
  frame however slow the model is.
- ``pipelined``: a worker thread reads and preprocesses frame t+1 while the model runs on
  frame t (the backends release the GIL while they infer).

A temporal model runs in a ``TemporalSession``: its attention state is kept between frames
and reset at a cut: a change of frame size, or a frame whose ``sequence`` differs from the
one before (``fanet.media.sources`` counts a stream's reconnections there).

``StreamStats.latency_ms()`` reports the time from each frame's capture to its labels: a
frame's ``captured`` stamp (``time.perf_counter()``, as ``fanet.media.sources`` sets it)
where it has one, else the moment the stream took it from the source.
"""

import collections
import queue
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from fanet.core.preprocess import as_color_image
from fanet.runtime.temporal import TemporalSession

STAGES = ("read", "preprocess", "infer", "postprocess")
LATENCY_WINDOW = 1000  # frames whose capture-to-labels latency the median is taken over
_END = object()


class LatencyWindow:
    """Latencies of the last ``LATENCY_WINDOW`` frames, and the largest of all."""

    def __init__(self) -> None:
        self._recent: Deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self._max = 0.0

    def add(self, seconds: float) -> None:
        self._recent.append(seconds)
        self._max = max(self._max, seconds)

    def milliseconds(self) -> Dict[str, float]:
        """Median and p99 of the recent latencies, maximum of all, in ms; empty before the
        first."""
        if not self._recent:
            return {}
        recent = np.asarray(self._recent) * 1000.0
        return {
            "median": float(np.median(recent)),
            "p99": float(np.percentile(recent, 99)),
            "max": 1000.0 * self._max,
        }


class StreamStats:
    """What a stream did: frames segmented, frames dropped, seconds per stage, and the
    latency from capture to labels."""

    def __init__(self) -> None:
        self.frames = 0
        self.dropped = 0
        self.cuts = 0  # temporal models: the times the state started again
        self.seconds: Dict[str, float] = {stage: 0.0 for stage in STAGES}
        self.started = time.perf_counter()
        self._lock = threading.Lock()
        self._latency = LatencyWindow()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def add_latency(self, seconds: float) -> None:
        """One frame's time from capture to labels."""
        self._latency.add(seconds)

    def latency_ms(self) -> Dict[str, float]:
        """Capture-to-labels milliseconds (``LatencyWindow.milliseconds``)."""
        return self._latency.milliseconds()

    def fps(self) -> float:
        """Frames per second of wall time since the stream began."""
        elapsed = time.perf_counter() - self.started
        return self.frames / elapsed if elapsed > 0 else 0.0

    def milliseconds(self) -> Dict[str, float]:
        """Mean milliseconds per frame of each stage."""
        count = max(self.frames, 1)
        return {stage: 1000.0 * total / count for stage, total in self.seconds.items()}


class _Timed:
    """``with _Timed(stats, "infer"):`` adds the block's duration to ``stats``."""

    def __init__(self, stats: StreamStats, stage: str) -> None:
        self.stats, self.stage = stats, stage

    def __enter__(self) -> None:
        self.began = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        self.stats.add(self.stage, time.perf_counter() - self.began)


def stream(
    segmenter: Any,
    frames: Iterable[np.ndarray],
    latest_only: bool = False,
    pipelined: bool = False,
    stats: Optional[StreamStats] = None,
    temporal: Optional[int] = None,
) -> Iterator[Tuple[Any, np.ndarray]]:
    """Yield ``(frame, labels)`` for ``frames``: images, or objects with an ``image``
    attribute (such as ``fanet.media.sources.Frame``), yielded back as given."""
    stats = stats if stats is not None else StreamStats()
    session = None
    if temporal is not None or segmenter.sidecar.temporal > 1:
        session = TemporalSession(segmenter, temporal)
    try:
        for result in _segmented(segmenter, frames, latest_only, pipelined, stats, session):
            yield result
    finally:
        if session is not None:
            session.close()


def _segmented(
    segmenter: Any,
    frames: Iterable[Any],
    latest_only: bool,
    pipelined: bool,
    stats: StreamStats,
    session: Optional[TemporalSession],
) -> Iterator[Tuple[Any, np.ndarray]]:
    source = _timed_reads(iter(frames), stats)
    if latest_only:
        source = _newest(source, stats)

    def prepare(taken: Tuple[Any, float]) -> Tuple[Any, float, Tuple[int, ...], Dict[str, Any]]:
        frame, captured = taken
        with _Timed(stats, "preprocess"):
            image = as_color_image(getattr(frame, "image", frame))
            return frame, captured, image.shape[:2], segmenter.inputs(image)

    prepared = _in_thread(source, prepare) if pipelined else (prepare(f) for f in source)
    sequence = None
    for frame, captured, size, feed in prepared:
        with _Timed(stats, "infer"):
            if session is None:
                outputs = segmenter.infer(feed)
            else:
                if sequence is not None and getattr(frame, "sequence", 0) != sequence:
                    session.reset()  # the stream was reopened: a cut
                sequence = getattr(frame, "sequence", 0)
                outputs = session.infer(feed, size)
                stats.cuts = session.resets
        with _Timed(stats, "postprocess"):
            labels = segmenter.labels(outputs, size)
        stats.frames += 1
        stats.add_latency(time.perf_counter() - captured)
        yield frame, labels


def _timed_reads(frames: Iterator[Any], stats: StreamStats) -> Iterator[Tuple[Any, float]]:
    """(frame, capture time): the frame's own stamp, else the moment it was taken."""
    while True:
        began = time.perf_counter()
        frame = next(frames, _END)
        if frame is _END:
            return
        taken = time.perf_counter()
        stats.add("read", taken - began)
        yield frame, getattr(frame, "captured", 0.0) or taken


def _newest(frames: Iterator[Any], stats: StreamStats) -> Iterator[Any]:
    """Frames from a reader thread that keeps only the newest; older ones are dropped."""
    slot: List[Any] = []
    ready = threading.Condition()
    stop = threading.Event()

    def read() -> None:
        try:
            for frame in frames:
                with ready:
                    if slot:
                        stats.dropped += 1
                    slot[:] = [frame]
                    ready.notify()
                if stop.is_set():
                    return
            item: Any = _END
        except BaseException as exc:  # handed to the consumer
            item = exc
        with ready:
            slot.append(item)
            ready.notify()

    threading.Thread(target=read, name="fanet-latest", daemon=True).start()
    try:
        while True:
            with ready:
                while not slot:
                    ready.wait()
                item = slot.pop(0)
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _in_thread(items: Iterator[Any], work: Callable[[Any], Any]) -> Iterator[Any]:
    """``work(item)`` for each item, computed one ahead in a worker thread."""
    results: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                done = work(item)
                while not stop.is_set():
                    try:
                        results.put(done, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            results.put(_END)
        except BaseException as exc:  # handed to the consumer
            results.put(exc)

    threading.Thread(target=produce, name="fanet-prefetch", daemon=True).start()
    try:
        while True:
            done = results.get()
            if done is _END:
                return
            if isinstance(done, BaseException):
                raise done
            yield done
    finally:
        stop.set()
