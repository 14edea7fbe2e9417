"""measure_together: the rows of a size and their metrics are measured in turn, so the
machine's drift moves them alike, each row warmed up again (unmeasured) after another
ran; each keeps its own statistics."""

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
