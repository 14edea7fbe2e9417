"""fanet-segment against a real RTSP server on loopback (GStreamer's, serving H.264): frames
are segmented, a server killed mid-stream and started again is survived by a reconnect, a
server that never returns ends the stream after --reconnects, and --latest-only keeps the
capture-to-labels latency low."""

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parents[2] / "support" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # PyGObject is Debian's, for its own Python
PROBE = (
    "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
)


def _gstreamer_rtsp_server() -> bool:
    try:
        found = subprocess.run([SYSTEM_PYTHON, "-c", PROBE], stderr=subprocess.DEVNULL, check=False)
    except OSError:
        return False
    return found.returncode == 0


pytestmark = pytest.mark.skipif(
    not _gstreamer_rtsp_server(),
    reason="GStreamer's RTSP server is not installed (apt install gir1.2-gst-rtsp-server-1.0 "
    "gstreamer1.0-rtsp python3-gi gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly)",
)


class RtspServer:
    """GStreamer's RTSP server on a loopback port, started and killed at will."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = "rtsp://127.0.0.1:{}/live".format(self.port)
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
        )
        line = self.process.stdout.readline()
        assert line.startswith("serving"), line

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def rtsp_server():
    server = RtspServer()
    server.start()
    yield server
    server.kill()


def _segment(url: str, model: Path, out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "fanet.cli.device.segment", url, "--onnx", str(model)]
    return subprocess.Popen(
        command + ["--labels", "-o", str(out)] + list(extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
    )


def _wait_for_files(folder: Path, count: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(list(folder.glob("*.png"))) < count:
        assert time.monotonic() < deadline, "fewer than {} frames segmented".format(count)
        time.sleep(0.05)


@pytest.fixture(scope="module")
def tiny_graph():
    from support.artefacts import fp32_graph, host_artefact

    return fp32_graph(host_artefact("tiny_export"))


def test_a_live_stream_is_segmented_frame_by_frame(rtsp_server, tiny_graph, tmp_path):
    run = _segment(rtsp_server.url, tiny_graph, tmp_path, "--limit", "30")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert len(list(tmp_path.glob("frame_*_trainIds.png"))) == 30
    assert "30 frames at" in err and "0 reconnects" in err


def test_a_server_killed_mid_stream_and_started_again_is_survived(
    rtsp_server, tiny_graph, tmp_path
):
    run = _segment(rtsp_server.url, tiny_graph, tmp_path, "--limit", "60")
    try:
        _wait_for_files(tmp_path, 15)
        rtsp_server.kill()
        time.sleep(1.0)
        rtsp_server.start()
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    assert "stream lost; reconnecting in 0.5 s" in err
    assert re.search(r"60 frames at .* [1-9] reconnects", err), err
    assert len(list(tmp_path.glob("frame_*_trainIds.png"))) == 60


def test_a_server_that_never_returns_ends_the_stream_after_its_reconnects(
    rtsp_server, tiny_graph, tmp_path
):
    run = _segment(rtsp_server.url, tiny_graph, tmp_path, "--reconnects", "2")
    _wait_for_files(tmp_path, 10)
    rtsp_server.kill()
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert err.count("lost after 2 reconnect attempts") == 1, err
    assert re.search(r"\d+ frames at .* 2 reconnects", err), err


def test_latest_only_reports_the_capture_to_labels_latency(rtsp_server, tiny_graph, tmp_path):
    """Prints the figure (``-s``); the README's comes from a full-size model."""
    run = _segment(rtsp_server.url, tiny_graph, tmp_path, "--limit", "60", "--latest-only")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    summary = re.search(r"(\d+) frames at .* (\d+) dropped as stale", err)
    segmented, dropped = int(summary.group(1)), int(summary.group(2))
    assert segmented + dropped == 60  # --limit counts the frames read
    assert len(list(tmp_path.glob("frame_*_trainIds.png"))) == segmented
    latency = re.search(r"capture to labels (\d+) ms \(p99 (\d+), max (\d+)\)", err)
    assert latency, err
    print("RTSP 320x176 at 30 FPS, --latest-only: capture to labels {} ms".format(latency.group(1)))
