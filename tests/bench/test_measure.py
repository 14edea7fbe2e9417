"""measure_together: the rows of a size and their metrics are measured in turn, so the
machine's drift moves them alike, each row warmed up again (unmeasured) after another
ran; each keeps its own statistics."""

import logging

from fanet.bench import measure
from fanet.bench.measure import Budget, Probe, measure_together


def test_rows_and_metrics_are_measured_in_turn():
    calls = []

    def step(name, ms):
        def run():
            calls.append(name)
            return ms

        return run

    probes = [
        Probe(
            "a",
            {"host": step("a host", 10.0), "pipeline": step("a pipeline", 12.0)},
            step("a warm", 0),
        ),
        Probe(
            "b",
            {"host": step("b host", 20.0), "pipeline": step("b pipeline", 25.0)},
            step("b warm", 0),
        ),
    ]
    results, interrupted = measure_together(
        probes, Budget(warmup_s=0, duration_s=None, iterations=3)
    )
    assert not interrupted
    assert calls == ["a warm", "a host", "a pipeline", "b warm", "b host", "b pipeline"] * 3
    assert [r["host"]["median_ms"] for r in results] == [10.0, 20.0]
    assert [r["pipeline"]["median_ms"] for r in results] == [12.0, 25.0]
    assert all(r["compute"]["same_as_host"] == 1.0 for r in results)  # CPU: compute = host


def test_a_row_alone_is_not_warmed_up_between_rounds():
    calls = []
    probe = Probe("a", {"host": lambda: calls.append("host") or 1.0}, lambda: calls.append("warm"))
    measure_together([probe], Budget(warmup_s=0, duration_s=None, iterations=2))
    assert calls == ["host", "host"]


def test_a_progress_line_names_each_row_once(monkeypatch, caplog):
    monkeypatch.setattr(measure, "PROGRESS_SECONDS", -1.0)  # a line every round
    label = "onnxruntime fp32 512x1024"
    probes = [
        Probe(label, {"host": lambda: 10.0, "pipeline": lambda: 12.0}, lambda: 0),
        Probe("torch fp32 512x1024", {"host": lambda: 20.0}, lambda: 0),
    ]
    with caplog.at_level(logging.INFO):
        measure_together(probes, Budget(warmup_s=0, duration_s=None, iterations=1))
    (line,) = [r.message for r in caplog.records if "rounds" in r.message]
    assert line == (
        "1 rounds, median ms: onnxruntime fp32 512x1024: host 10.0, pipeline 12.0; "
        "torch fp32 512x1024: host 20.0"
    )
