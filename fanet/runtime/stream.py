"""Frames in, (frame, labels) out: the streaming loop behind ``Segmenter.stream``
(Python 3.6 compatible).

Two options for live sources:

- ``latest_only``: a reader thread keeps only the newest frame; the loop always works on
  it and counts the frames it never saw (``StreamStats.dropped``), so latency stays one
  frame however slow the model is.
- ``pipelined``: a worker thread reads and preprocesses frame t+1 while the model runs on
  frame t (the backends release the GIL while they infer).
"""

import queue
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from fanet.core.preprocess import as_color_image

STAGES = ("read", "preprocess", "infer", "postprocess")
_END = object()


class StreamStats:
    """What a stream did: frames segmented, frames dropped, seconds per stage."""

    def __init__(self) -> None:
        self.frames = 0
        self.dropped = 0
        self.seconds: Dict[str, float] = {stage: 0.0 for stage in STAGES}
        self.started = time.perf_counter()
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

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
) -> Iterator[Tuple[Any, np.ndarray]]:
    """Yield ``(frame, labels)`` for ``frames``: images, or objects with an ``image``
    attribute (such as ``fanet.runtime.frames.Frame``), yielded back as given."""
    stats = stats if stats is not None else StreamStats()
    source = _timed_reads(iter(frames), stats)
    if latest_only:
        source = _newest(source, stats)

    def prepare(frame: Any) -> Tuple[Any, Tuple[int, ...], Dict[str, np.ndarray]]:
        with _Timed(stats, "preprocess"):
            image = as_color_image(getattr(frame, "image", frame))
            return frame, image.shape[:2], segmenter.inputs(image)

    prepared = _in_thread(source, prepare) if pipelined else (prepare(f) for f in source)
    for frame, size, feed in prepared:
        with _Timed(stats, "infer"):
            outputs = segmenter.infer(feed)
        with _Timed(stats, "postprocess"):
            labels = segmenter.labels(outputs, size)
        stats.frames += 1
        yield frame, labels


def _timed_reads(frames: Iterator[np.ndarray], stats: StreamStats) -> Iterator[np.ndarray]:
    while True:
        began = time.perf_counter()
        frame = next(frames, _END)
        if frame is _END:
            return
        stats.add("read", time.perf_counter() - began)
        yield frame  # type: ignore[misc]


def _newest(frames: Iterator[np.ndarray], stats: StreamStats) -> Iterator[np.ndarray]:
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
