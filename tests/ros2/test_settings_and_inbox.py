"""The node's parts that need no ROS: its parameters, the newest-only hand-over and the
diagnostics report (Python 3.6 compatible)."""

import threading

import pytest

from fanet.core.errors import ConfigError
from fanet.ros2.diagnostics import ERROR, OK, WARN, NodeMetrics, report
from fanet.ros2.inbox import NewestOnly
from fanet.ros2.settings import PARAMETERS, NodeSettings, settings_from


def test_defaults_are_the_documented_ones():
    assert settings_from({}) == NodeSettings()
    assert NodeSettings().outputs == ("labels",) and NodeSettings().qos == "sensor_data"
    assert [name for name, _, _ in PARAMETERS][-5:] == [
        "labels", "label_ids", "color", "overlay", "diagnostics_period"
    ]  # fmt: skip


def test_outputs_and_numbers_come_from_their_parameters():
    settings = settings_from({"labels": False, "color": True, "overlay": True, "temporal": 2,
                              "diagnostics_period": 2})  # fmt: skip
    assert settings.outputs == ("color", "overlay")
    assert settings.temporal == 2 and settings.diagnostics_period == 2.0


@pytest.mark.parametrize(
    "topic, kind, compressed",
    [
        ("image_raw", "", False),
        ("/camera/image_raw/compressed", "", True),
        ("/camera/jpeg", "compressed", True),
        ("/camera/image_raw/compressed", "raw", False),
    ],
)
def test_the_input_type_follows_the_topic_unless_named(topic, kind, compressed):
    assert settings_from({"input_topic": topic, "input_type": kind}).compressed is compressed


@pytest.mark.parametrize(
    "values, words",
    [
        ({"qos": "fast"}, "parameter qos must be one of sensor_data, reliable, got 'fast'"),
        ({"backend": "tvm"}, "parameter backend must be one of auto"),
        ({"temporal": -1}, "parameter temporal must be >= 0, got -1"),
        ({"temporal": True}, "parameter temporal must be a whole number, got True"),
        ({"labels": 1}, "parameter labels must be true or false, got 1"),
        ({"diagnostics_period": 0.0}, "parameter diagnostics_period must be > 0 s"),
        ({"device": "tpu"}, "parameter device must be cpu or cuda (onnxruntime, torch) or CPU"),
        ({"input_topic": ""}, "parameter input_topic is empty"),
        ({"labels": False}, "no output: set one of labels, label_ids, color, overlay to true"),
    ],
)
def test_bad_parameters_are_one_line_naming_them(values, words):
    with pytest.raises(ConfigError) as raised:
        settings_from(values)
    assert words in str(raised.value) and "\n" not in str(raised.value)


def test_a_newer_item_replaces_a_waiting_one_and_counts_it_dropped():
    inbox = NewestOnly()
    for item in range(5):
        inbox.put(item)
    assert inbox.take() == 4 and inbox.dropped == 4
    inbox.put(5)
    assert inbox.take() == 5 and inbox.dropped == 4
    assert inbox.take(timeout=0.01) is None


def test_close_wakes_a_waiting_taker_and_refuses_more():
    inbox = NewestOnly()
    taken = []
    taker = threading.Thread(target=lambda: taken.append(inbox.take()))
    taker.start()
    inbox.close()
    taker.join(5)
    assert taken == [None]
    inbox.put(1)
    assert inbox.take(timeout=0.01) is None


def test_the_report_says_how_the_node_does():
    metrics = NodeMetrics()
    assert report(metrics, 0, [("model", "m.onnx")]).level == WARN  # nothing received
    metrics.received, metrics.missed = 10, 2
    metrics.stats.frames = 6
    metrics.stats.add("infer", 0.6)
    metrics.stats.add("preprocess", 0.06)
    metrics.capture_to_publish.add(0.25)
    status = report(metrics, 4, [("model", "m.onnx")])
    values = dict(status.values)
    assert status.level == OK and status.message.endswith("4 dropped as stale")
    assert status.values[0] == ("model", "m.onnx")
    assert values["frames"] == "6" and values["dropped (stale)"] == "4"
    assert values["missed before the node"] == "2"
    assert values["model latency ms"] == "110.0" and values["infer ms"] == "100.0"
    assert values["capture to publish ms (median)"] == "250.0"
    metrics.received += 1
    metrics.errors += 1
    assert report(metrics, 4, []).level == ERROR
