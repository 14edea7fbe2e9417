"""Benchmark results as a table in the paper's layout, CSV, markdown, JSON and a plot.

Python 3.6 compatible; matplotlib is imported only for ``--plot``.
"""

import csv
import io
import math
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from fanet.bench.device_info import ISA_EXTENSIONS
from fanet.bench.measure import Budget
from fanet.core import strict_json
from fanet.core.errors import require
from fanet.core.files import atomic_write
from fanet.core.int8_budget_record import Int8Budget

SCHEMA_ID = "fanet-bench/1"
METRIC_TEXT = {
    "compute": "GPU compute (CUDA events, input already on the device; CPU: = host latency)",
    "host": "host latency (copy in + compute + copy out, synchronised)",
    "pipeline": "full pipeline (uint8 image -> labels at image size: preprocess, infer, "
    "upsample, argmax)",
}


class BenchResult(NamedTuple):
    """One row at one resolution: statistics per metric (ms), FPS of the chosen metric."""

    backend: str
    precision: str
    variant: str  # "" or "eager"
    label: str
    size: Tuple[int, int]
    metric: str
    stats: Dict[str, Dict[str, float]]
    temporal: Optional[int] = None  # frames per attention window, in a temporal benchmark
    miou: Optional[float] = None  # on the --data images (0-1), when asked
    model: str = ""  # the file measured (ONNX or engine; a checkpoint, or "FANet" for a module)
    note: str = ""  # what to know reading the row (INT8 on a CPU without VNNI or AMX)
    int8_budget: Optional[Int8Budget] = None  # an INT8 file's budget and float groups

    @property
    def resolution(self) -> str:
        return "{}x{}".format(*self.size)

    @property
    def fps(self) -> Optional[float]:
        chosen = self.stats.get(self.metric)
        return chosen["fps"] if chosen else None

    def to_json(self) -> Dict[str, Any]:
        return {
            "backend": self.backend,
            "precision": self.precision,
            "variant": self.variant,
            "label": self.label,
            "resolution": self.resolution,
            "height": self.size[0],
            "width": self.size[1],
            "metric": self.metric,
            "fps": self.fps,
            "stats": self.stats,
            "temporal": self.temporal,
            "miou": None if self.miou is None or math.isnan(self.miou) else self.miou,
            "model": self.model,
            "note": self.note,
            "int8_budget": self.int8_budget.to_json() if self.int8_budget else None,
        }


class BenchReport(NamedTuple):
    """A whole benchmark: what was measured, how, on what, and the results."""

    metric: str
    budget: Budget
    device: Dict[str, Any]
    results: List[BenchResult]
    interrupted: bool

    def to_json(self) -> Dict[str, Any]:
        """The JSON object of ``docs/bench-schema.json``."""
        return {
            "schema": SCHEMA_ID,
            "metric": self.metric,
            "method": METRIC_TEXT,
            "budget": self.budget._asdict(),
            "device": self.device,
            "results": [result.to_json() for result in self.results],
            "interrupted": self.interrupted,
        }


def _unique(results: List[BenchResult], key: str) -> List[str]:
    """Values of attribute ``key`` in first-seen order."""
    seen: List[str] = []
    for result in results:
        if getattr(result, key) not in seen:
            seen.append(getattr(result, key))
    return seen


def _cell(results: List[BenchResult], label: str, resolution: str, field: str = "fps") -> str:
    for result in results:
        if result.label == label and result.resolution == resolution:
            value = getattr(result, field)
            if value is None or math.isnan(value):  # not measured, or no class to score
                return "-"
            return "{:.1f}".format(value) if field == "fps" else "{:.2f}".format(100 * value)
    return "-"


def grid(report: BenchReport) -> List[List[str]]:
    """Header + one row per backend x precision, FPS of the chosen metric per resolution,
    then the mIoU (%) per resolution when the benchmark evaluated on data."""
    columns = _unique(report.results, "resolution")
    accuracy = columns if any(r.miou is not None for r in report.results) else []
    rows = [["backend / precision"] + columns + ["mIoU " + column for column in accuracy]]
    for label in _unique(report.results, "label"):
        cells = [_cell(report.results, label, column) for column in columns]
        cells += [_cell(report.results, label, column, "miou") for column in accuracy]
        rows.append([label] + cells)
    return rows


def method_text(report: BenchReport) -> str:
    budget = report.budget
    amount = (
        "{} iterations".format(budget.iterations)
        if budget.iterations
        else "{:g} s".format(budget.duration_s or 0.0)
    )
    where = report.device.get("gpu") or report.device.get("cpu")
    return (
        "FPS = 1000 / median latency of {}; batch 1; warm-up {:g} s, then {} per metric, "
        "the metrics in turn; on {} "
        "({} CPU threads{}{}).".format(
            METRIC_TEXT[report.metric],
            budget.warmup_s,
            amount,
            where,
            report.device["cpu_threads"],
            ", {} used".format(report.device["threads"]) if report.device.get("threads") else "",
            _isa_text(report.device.get("cpu_isa", {})),
        )
    )


def _isa_text(isa: Dict[str, bool]) -> str:
    """``; AVX2, AVX-512F, AVX-512 VNNI``: the extensions the CPU has."""
    found = [ext.title for ext in ISA_EXTENSIONS if isa.get(ext.key)]
    return "; " + ", ".join(found) if found else ""


def notes_text(report: BenchReport) -> str:
    """One line per distinct row note, naming its rows; empty where there is none."""
    notes: Dict[str, List[str]] = {}
    for result in report.results:
        if result.note and result.label not in notes.setdefault(result.note, []):
            notes[result.note].append(result.label)
    return "".join(
        "note ({}): {}\n".format(", ".join(labels), note) for note, labels in notes.items()
    )


def per_frame(report: BenchReport) -> List[List[str]]:
    """Header + one row per result of a temporal benchmark: mean and max milliseconds per
    frame of the chosen metric (the paper's Table VIII); empty when there is none."""
    temporal = [r for r in report.results if r.temporal is not None]
    if not temporal:
        return []
    rows = [["backend / precision / frames", "resolution", "mean ms", "max ms"]]
    for result in temporal:
        stats = result.stats.get(report.metric)
        figures = ["{:.1f}".format(stats[k]) for k in ("mean_ms", "max_ms")] if stats else ["-"] * 2
        rows.append([result.label, result.resolution] + figures)
    return rows


PER_FRAME_TITLE = "Per frame, the attention state carried from frame to frame (Table VIII):"


def _text_table(rows: List[List[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def _markdown_table(rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines) + "\n"


def models_text(report: BenchReport) -> str:
    """Which file each row measured, one line per row (the files of all its sizes), and
    for an INT8 file what its export kept float to meet an accuracy budget."""
    lines = []
    for label in _unique(report.results, "label"):
        measured = [r for r in report.results if r.label == label and r.model]
        if measured:
            lines.append("  {}: {}".format(label, ", ".join(_unique(measured, "model"))))
        summaries = [r.int8_budget.summary() for r in measured if r.int8_budget]
        lines += ["    " + summary for summary in sorted(set(summaries), key=summaries.index)]
    return "Models measured:\n" + "\n".join(lines) + "\n" if lines else ""


def as_table(report: BenchReport) -> str:
    text = _text_table(grid(report))
    if per_frame(report):
        text += "\n" + PER_FRAME_TITLE + "\n" + _text_table(per_frame(report))
    return text + "\n" + method_text(report) + "\n" + notes_text(report) + models_text(report)


def as_markdown(report: BenchReport) -> str:
    text = _markdown_table(grid(report))
    if per_frame(report):
        text += "\n" + PER_FRAME_TITLE + "\n\n" + _markdown_table(per_frame(report))
    return text + "\n" + method_text(report) + "\n" + notes_text(report) + models_text(report)


CSV_STATISTICS = ("median_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "mean_ms")


def as_csv(report: BenchReport) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream)
    writer.writerow(
        ["backend", "precision", "variant", "resolution", "metric", "fps"]
        + list(CSV_STATISTICS)
        + ["temporal", "miou", "model", "note", "int8_budget", "float_groups"]
    )
    for result in report.results:
        stats = result.stats.get(report.metric, {})
        writer.writerow(
            [
                result.backend,
                result.precision,
                result.variant,
                result.resolution,
                report.metric,
                result.fps,
            ]
            + [stats.get(key) for key in CSV_STATISTICS]
            + [result.temporal, result.miou, result.model, result.note]
            + _budget_cells(result.int8_budget)
        )
    return stream.getvalue()


def _budget_cells(budget: Optional[Int8Budget]) -> List[Any]:
    """The CSV's ``int8_budget`` (points) and ``float_groups`` (space-separated) cells."""
    if budget is None:
        return [None, None]
    return [budget.points, " ".join(budget.float_groups)]


def as_json(report: BenchReport) -> str:
    return strict_json.dumps(report.to_json(), indent=2, sort_keys=True)


def write_plot(report: BenchReport, path: str) -> None:
    """FPS against resolution (megapixels), one line per backend x precision."""
    matplotlib = require("matplotlib", "bench")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def megapixels(result: BenchResult) -> float:
        return result.size[0] * result.size[1] / 1e6

    figure, axis = plt.subplots(figsize=(7, 4.5), dpi=120)
    for label in _unique(report.results, "label"):
        points = sorted(
            (megapixels(r), r.fps) for r in report.results if r.label == label and r.fps is not None
        )
        if points:
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    resolutions = sorted({(megapixels(r), r.resolution) for r in report.results})
    axis.set_xticks([r[0] for r in resolutions])
    axis.set_xticklabels([r[1] for r in resolutions], rotation=30, ha="right")
    axis.set_xlabel("input resolution (H x W)")
    axis.set_ylabel("frames per second")
    axis.set_yscale("log")
    axis.grid(True, which="both", alpha=0.3)
    where = report.device.get("gpu") or report.device.get("cpu")
    metric = METRIC_TEXT[report.metric].split(" (")[0]
    axis.set_title("FANet FPS: {}, batch 1, {}".format(metric, where), fontsize=10)
    axis.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    with atomic_write(path) as stream:
        stream.write(buffer.getvalue())
