"""Honest latency measurement of a backend (Python 3.6 compatible).

Three figures per iteration, each a different question:
- ``compute``: GPU execution alone (CUDA events, inputs already on the device); on a
  CPU backend there are no transfers, so it is the same call as ``host``.
- ``host``: ``backend.infer`` wall time: copy in + compute + copy out, synchronised.
- ``pipeline``: uint8 image -> labels at the image's size (preprocess, infer, upsample,
  argmax), as a robot would call ``Segmenter``.
Warm-up runs for a fixed time first; results holding NaN or Inf are refused. The metrics,
and the rows measured together (``measure_together``), are measured in turn, one
iteration of each per round, so a machine that speeds up or slows down during the run
moves them all alike and their ratios stay fair. A temporal model is measured frame by
frame with its state carried (mean and max per frame: the paper's Table VIII).
"""

import logging
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from fanet.core.errors import FanetError
from fanet.runtime.segmenter import Segmenter
from fanet.runtime.temporal import TemporalSession

logger = logging.getLogger(__name__)

METRICS = ("compute", "host", "pipeline")
PROGRESS_SECONDS = 5.0


class BenchmarkError(FanetError):
    """A measurement cannot be made or must not be reported."""


class Budget(NamedTuple):
    """How long to measure: warm-up seconds, then seconds and/or an iteration count."""

    warmup_s: float = 2.0
    duration_s: Optional[float] = 5.0
    iterations: Optional[int] = None

    def done(self, count: int, elapsed: float) -> bool:
        if self.iterations is not None and count >= self.iterations:
            return True
        return self.duration_s is not None and elapsed >= self.duration_s and count >= 3


def summarize(times_ms: List[float], wall_s: float) -> Dict[str, float]:
    """median, mean, p90, p99, min, max (ms), fps (1000 / median), throughput (it/s)."""
    values = np.asarray(times_ms, dtype=np.float64)
    median = float(np.median(values))
    return {
        "iterations": int(values.size),
        "median_ms": median,
        "mean_ms": float(values.mean()),
        "p90_ms": float(np.percentile(values, 90)),
        "p99_ms": float(np.percentile(values, 99)),
        "min_ms": float(values.min()),
        "max_ms": float(values.max()),
        "fps": 1000.0 / median if median > 0 else float("inf"),
        "throughput": values.size / wall_s if wall_s > 0 else float("inf"),
    }


class Timing(NamedTuple):
    """Per-iteration times (ms) of each metric, the wall time spent in each, and whether
    Ctrl-C cut the measurement short."""

    times_ms: Dict[str, List[float]]
    wall_s: Dict[str, float]
    interrupted: bool


Steps = Dict[str, Callable[[], Optional[float]]]


def _rounds(groups: List[Tuple[Callable[[], Any], Steps]], budget: Budget, label: str) -> Timing:
    """Run every step (returning its own ms, or None to be wall-timed) once per round,
    within ``budget``: its seconds and iterations count per step, as if each ran alone.

    Steps come in groups (the metrics of one model); with several groups, each group's
    first callable runs unmeasured before its steps, so a model measured right after
    another finds its weights in the caches again, as it would running alone."""
    steps = {name: step for _, group in groups for name, step in group.items()}
    times: Dict[str, List[float]] = {name: [] for name in steps}
    wall = dict.fromkeys(steps, 0.0)
    rounds = 0
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < budget.warmup_s:
            for step in steps.values():
                step()
        last_report = time.perf_counter()
        while not budget.done(rounds, sum(wall.values()) / len(steps)):
            for rewarm, group in groups:
                if len(groups) > 1:
                    rewarm()
                for name, step in group.items():
                    before = time.perf_counter()
                    measured = step()
                    elapsed = time.perf_counter() - before
                    wall[name] += elapsed
                    times[name].append(measured if measured is not None else elapsed * 1e3)
            rounds += 1
            if time.perf_counter() - last_report > PROGRESS_SECONDS:
                logger.info("%d rounds, median ms: %s", rounds, _medians(times))
                last_report = time.perf_counter()
    except KeyboardInterrupt:
        logger.warning("%s: interrupted after %d rounds", label, rounds)
        return Timing({name: values[:rounds] for name, values in times.items()}, wall, True)
    return Timing(times, wall, False)


def _medians(times: Dict[str, List[float]]) -> str:
    """``row: metric 3.1, metric 4.0; row: ...``, each row named once."""
    rows: Dict[str, List[str]] = {}
    for name, values in times.items():
        row, metric = name.rsplit(": ", 1)
        rows.setdefault(row, []).append("{} {:.1f}".format(metric, float(np.median(values))))
    return "; ".join("{}: {}".format(row, ", ".join(cells)) for row, cells in rows.items())


def _check_finite(outputs: Dict[str, np.ndarray], label: str) -> None:
    for name, array in outputs.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise BenchmarkError(
                "{}: output {!r} holds NaN or Inf; no speed is reported for it".format(label, name)
            )


class Probe(NamedTuple):
    """One row's measurement, ready to run: a step per metric, each returning its own ms
    (or None, to be wall-timed), and an inference that warms the model up again."""

    label: str
    steps: Steps
    rewarm: Callable[[], Any] = lambda: None


def probe(
    segmenter: Segmenter,
    size: Tuple[int, int],
    metrics: Tuple[str, ...] = METRICS,
    label: str = "",
    seed: int = 0,
    session: Optional[TemporalSession] = None,
) -> Probe:
    """The steps measuring ``segmenter`` on a ``size`` (H, W) random uint8 image; a
    temporal model runs in ``session``, which carries its state from frame to frame."""
    backend = segmenter.backend
    image = np.random.RandomState(seed).randint(0, 256, size=(size[0], size[1], 3))
    image = image.astype(np.uint8)
    feed = segmenter.inputs(image)
    _check_finite(backend.infer(feed), label)
    labels_of = session if session is not None else segmenter
    steps: Steps = {
        "compute": lambda: backend.compute_ms(feed),
        "host": lambda: _timed(lambda: backend.infer(feed)),
        "pipeline": lambda: _timed(lambda: labels_of(image)),
    }
    if "compute" in metrics and backend.compute_ms(feed) is None:  # CPU: no transfers,
        metrics = tuple(metric for metric in metrics if metric != "compute")  # = host
    return Probe(label, {metric: steps[metric] for metric in metrics}, lambda: backend.infer(feed))


def measure_together(
    probes: List[Probe], budget: Budget
) -> Tuple[List[Dict[str, Dict[str, float]]], bool]:
    """Statistics per metric of each probe, all measured in turn (one iteration of each
    metric of each probe per round, each probe warmed up again first), and whether
    Ctrl-C stopped them (the figures so far are returned)."""
    groups = [
        (probe.rewarm, {"{}: {}".format(probe.label, m): step for m, step in probe.steps.items()})
        for probe in probes
    ]
    timing = _rounds(groups, budget, " / ".join(probe.label for probe in probes))
    results = []
    for probe in probes:
        stats: Dict[str, Dict[str, float]] = {}
        for metric in probe.steps:
            key = "{}: {}".format(probe.label, metric)
            if timing.times_ms[key]:
                stats[metric] = summarize(timing.times_ms[key], timing.wall_s[key])
        if "compute" not in stats and "host" in stats:
            stats["compute"] = dict(stats["host"], same_as_host=1.0)
        results.append(stats)
    return results, timing.interrupted


def measure(
    segmenter: Segmenter,
    size: Tuple[int, int],
    budget: Budget,
    metrics: Tuple[str, ...] = METRICS,
    label: str = "",
    seed: int = 0,
) -> Tuple[Dict[str, Dict[str, float]], bool]:
    """Statistics per metric for ``segmenter`` on ``size`` (H, W) random uint8 images,
    and whether Ctrl-C stopped the measurement (the figures so far are returned)."""
    results, interrupted = measure_together([probe(segmenter, size, metrics, label, seed)], budget)
    return results[0], interrupted


def _timed(call: Callable[[], Any]) -> float:
    before = time.perf_counter()
    call()
    return (time.perf_counter() - before) * 1e3
