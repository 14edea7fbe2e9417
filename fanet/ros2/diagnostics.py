"""What the node reports on ``/diagnostics`` (Python 3.6 compatible): one status with its
level, a one-line message and key-value pairs, built from the node's counters and the
stream's statistics; ``node.py`` turns it into ``diagnostic_msgs`` messages."""

import time
from typing import Any, List, NamedTuple, Tuple

from fanet.runtime.stream import LatencyWindow, StreamStats

OK, WARN, ERROR = "OK", "WARN", "ERROR"
MODEL_STAGES = ("preprocess", "infer", "postprocess")
STAGES = ("decode",) + MODEL_STAGES + ("publish",)


class NodeMetrics:
    """What the node counts: messages received, missed (a gap in the camera's sequence
    numbers, where rclpy reports them: lost on the way, or replaced in the subscription's
    queue before the node could take them), skipped (unreadable) and failed; the
    stream's statistics (frames, stages, receive-to-labels latency, temporal resets); and
    the capture-to-publish latency (now minus the camera message's stamp)."""

    def __init__(self) -> None:
        self.received = 0
        self.missed = 0
        self.skipped = 0
        self.errors = 0
        self.stats = StreamStats()
        self.capture_to_publish = LatencyWindow()
        self._last = (time.perf_counter(), 0, 0, 0)  # the last report: time, frames, ...

    def since_last_report(self) -> Tuple[float, int, int, int]:
        """(seconds, frames, messages received, errors) since the last call."""
        now = time.perf_counter()
        began, frames, received, errors = self._last
        self._last = (now, self.stats.frames, self.received, self.errors)
        return (
            now - began,
            self.stats.frames - frames,
            self.received - received,
            self.errors - errors,
        )


class Report(NamedTuple):
    level: str  # OK, WARN or ERROR
    message: str
    values: List[Tuple[str, str]]


def report(metrics: NodeMetrics, dropped: int, about: List[Tuple[str, str]]) -> Report:
    """The status since the last report; ``dropped``: stale frames so far; ``about``: the
    model, backend, precision and topic, listed first."""
    seconds, frames, received, errors = metrics.since_last_report()
    fps = frames / seconds if seconds > 0 else 0.0
    stages = metrics.stats.milliseconds()
    model_ms = sum(stages.get(stage, 0.0) for stage in MODEL_STAGES)
    values = list(about) + [
        ("fps", "{:.1f}".format(fps)),
        ("frames", str(metrics.stats.frames)),
        ("received", str(metrics.received)),
        ("dropped (stale)", str(dropped)),
        ("missed before the node", str(metrics.missed)),
        ("skipped (unreadable)", str(metrics.skipped)),
        ("errors", str(metrics.errors)),
        ("temporal resets", str(metrics.stats.cuts)),
        ("model latency ms", "{:.1f}".format(model_ms)),
    ]
    values += [("{} ms".format(stage), "{:.1f}".format(stages.get(stage, 0.0))) for stage in STAGES]
    values += _latency("capture to publish ms", metrics.capture_to_publish.milliseconds())
    values += _latency("receive to labels ms", metrics.stats.latency_ms())
    if errors:
        level, message = ERROR, "{} frames failed in the last {:.1f} s".format(errors, seconds)
    elif not received:
        level, message = WARN, "no camera message in the last {:.1f} s".format(seconds)
    else:
        level, message = OK, "{:.1f} FPS, {} dropped as stale".format(fps, dropped)
    return Report(level, message, values)


def _latency(name: str, milliseconds: Any) -> List[Tuple[str, str]]:
    return [
        ("{} ({})".format(name, which), "{:.1f}".format(milliseconds[which]))
        for which in ("median", "p99", "max")
        if which in milliseconds
    ]
