"""Benchmark results as a table in the paper's layout, CSV, markdown, JSON and a plot.

Python 3.6 compatible; matplotlib is imported only for ``--plot``.
"""

import csv
import io
import json
from typing import Any, Dict, List

from fanet.runtime.files import atomic_write

SCHEMA_ID = "fanet-bench/1"
METRIC_TEXT = {
    "compute": "GPU compute (CUDA events, input already on the device; CPU: = host latency)",
    "host": "host latency (copy in + compute + copy out, synchronised)",
    "pipeline": "full pipeline (uint8 image -> labels at image size: preprocess, infer, "
    "upsample, argmax)",
}


def _unique(results: List[Dict[str, Any]], key: str) -> List[str]:
    """Values of ``key`` in first-seen order."""
    seen: List[str] = []
    for entry in results:
        if entry[key] not in seen:
            seen.append(entry[key])
    return seen


def _cell(results: List[Dict[str, Any]], label: str, resolution: str) -> str:
    for entry in results:
        if entry["label"] == label and entry["resolution"] == resolution:
            return "-" if entry["fps"] is None else "{:.1f}".format(entry["fps"])
    return "-"


def grid(report: Dict[str, Any]) -> List[List[str]]:
    """Header + one row per backend x precision, FPS of the chosen metric per resolution."""
    results = report["results"]
    columns = _unique(results, "resolution")
    rows = [["backend / precision"] + columns]
    for label in _unique(results, "label"):
        rows.append([label] + [_cell(results, label, column) for column in columns])
    return rows


def method_text(report: Dict[str, Any]) -> str:
    budget = report["budget"]
    amount = (
        "{} iterations".format(budget["iterations"])
        if budget.get("iterations")
        else "{:g} s".format(budget["duration_s"])
    )
    device = report["device"]
    where = device.get("gpu") or device.get("cpu")
    return (
        "FPS = 1000 / median latency of {}; batch 1; warm-up {:g} s, then {} per cell; on {} "
        "({} CPU threads).".format(
            METRIC_TEXT[report["metric"]], budget["warmup_s"], amount, where, device["cpu_threads"]
        )
    )


def as_table(report: Dict[str, Any]) -> str:
    rows = grid(report)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n\n" + method_text(report) + "\n"


def as_markdown(report: Dict[str, Any]) -> str:
    rows = grid(report)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines) + "\n\n" + method_text(report) + "\n"


def as_csv(report: Dict[str, Any]) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream)
    writer.writerow(
        [
            "backend",
            "precision",
            "variant",
            "resolution",
            "metric",
            "fps",
            "median_ms",
            "p90_ms",
            "p99_ms",
            "min_ms",
            "max_ms",
            "mean_ms",
        ]
    )
    for entry in report["results"]:
        stats = entry["stats"].get(report["metric"], {})
        writer.writerow(
            [
                entry["backend"],
                entry["precision"],
                entry["variant"],
                entry["resolution"],
                report["metric"],
                entry["fps"],
            ]
            + [
                stats.get(key)
                for key in ("median_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "mean_ms")
            ]
        )
    return stream.getvalue()


def as_json(report: Dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True)


def write_plot(report: Dict[str, Any], path: str) -> None:
    """FPS against resolution (megapixels), one line per backend x precision."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5), dpi=120)
    for label in _unique(report["results"], "label"):
        points = [
            (e["height"] * e["width"] / 1e6, e["fps"], e["resolution"])
            for e in report["results"]
            if e["label"] == label and e["fps"] is not None
        ]
        points.sort()
        if points:
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    resolutions = sorted(
        {(e["height"] * e["width"] / 1e6, e["resolution"]) for e in report["results"]}
    )
    axis.set_xticks([r[0] for r in resolutions])
    axis.set_xticklabels([r[1] for r in resolutions], rotation=30, ha="right")
    axis.set_xlabel("input resolution (H x W)")
    axis.set_ylabel("frames per second")
    axis.set_yscale("log")
    axis.grid(True, which="both", alpha=0.3)
    where = report["device"].get("gpu") or report["device"].get("cpu")
    metric = METRIC_TEXT[report["metric"]].split(" (")[0]
    axis.set_title("FANet FPS: {}, batch 1, {}".format(metric, where), fontsize=10)
    axis.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    with atomic_write(path) as stream:
        stream.write(buffer.getvalue())
