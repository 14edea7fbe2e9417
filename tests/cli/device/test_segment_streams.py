"""A stream that drops never hides a lost frame: a finite video over HTTP whose connection
is cut is resumed, and every frame's output holds that frame's labels; a frame that could
not be had again is counted and reported, never replaced by another's. A video file that
ends before the frames its container announced says so."""

import contextlib
import http.server
import logging
import re
import socketserver
import threading
import time

import cv2
import numpy as np
import pytest

from fanet.cli.device import segment


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class _DroppingVideo(http.server.BaseHTTPRequestHandler):
    """Serves one file with byte ranges. Once the video is open (FFmpeg has read its start
    and, at the end, its index), the first response that reaches byte ``cut`` is cut there,
    and the requests that follow soon after are refused (a server restarting, a Wi-Fi link
    coming back), so the reader's own retries fail and the stream is lost."""

    payload = b""
    cut = 0
    cuts_left = 0
    refused_until = 0.0
    requests = 0

    def do_GET(self):
        cls = type(self)
        cls.requests += 1
        if time.monotonic() < cls.refused_until:
            self.send_error(503)
            return
        size = len(self.payload)
        asked = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        start = int(asked.group(1)) if asked else 0
        stop = int(asked.group(2)) + 1 if asked and asked.group(2) else size
        self.send_response(206 if asked else 200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(stop - start))
        if asked:
            self.send_header("Content-Range", "bytes {}-{}/{}".format(start, stop - 1, size))
        self.end_headers()
        body = self.payload[start:stop]
        if cls.cuts_left and cls.requests > 2 and start < cls.cut < stop:
            cls.cuts_left -= 1
            body = body[: cls.cut - start]  # the connection drops here
            cls.refused_until = time.monotonic() + 0.3
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)
        if len(body) < stop - start:
            self.close_connection = True

    def log_message(self, *args):
        pass


def _labels_of(folder):
    return {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in folder.glob("*.png")}


@pytest.mark.parametrize("where", [0.3, 0.55, 0.8])
def test_a_dropped_http_video_gives_each_frame_its_own_labels(
    scenes, exported_trained, tmp_path, caplog, where
):
    caplog.set_level(logging.INFO)
    _, video = scenes
    local = tmp_path / "local"
    assert (
        segment.main(
            [str(video), "--onnx", str(exported_trained), "--labels", "-o", str(local), "-q"]
        )
        == 0
    )
    _DroppingVideo.payload = video.read_bytes()
    _DroppingVideo.cut = int(len(_DroppingVideo.payload) * where)
    _DroppingVideo.cuts_left, _DroppingVideo.requests = 1, 0
    server = _Server(("127.0.0.1", 0), _DroppingVideo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:{}/drive.mp4".format(server.server_address[1])
    remote = tmp_path / "remote"
    try:
        args = [url, "--onnx", str(exported_trained), "--labels", "-o", str(remote)]
        assert segment.main([*args, "--reconnects", "3"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    expected, found = _labels_of(local), _labels_of(remote)
    wrong = [name for name in found if not np.array_equal(found[name], expected[name])]
    lost = sorted(set(expected) - set(found))
    summary = re.search(r"(\d+) frames at .*, (\d+) lost", caplog.text)
    print("cut at {:.0%}: {} frames, lost {}, wrong {}".format(where, len(found), lost, wrong))

    assert wrong == []
    assert summary and int(summary.group(1)) == len(found) and int(summary.group(2)) == len(lost)


def test_a_video_shorter_than_its_container_announces_says_so(
    scenes, exported_trained, tmp_path, caplog
):
    """A copy cut short (a download stopped, a recording's power lost) still opens and
    announces every frame; the frames it lacks are counted, not silently missing."""
    caplog.set_level(logging.INFO)
    paths, _ = scenes
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 128))
    for path in paths:
        writer.write(cv2.imread(str(path)))
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    out = tmp_path / "out"
    args = [str(cut), "--onnx", str(exported_trained), "--labels", "-o", str(out)]
    assert segment.main(args) == 0
    read = len(list(out.glob("*.png")))
    assert 0 < read < 60
    assert "ends after {} of the 60 frames its container announces".format(read) in caplog.text
    assert "{} frames at".format(read) in caplog.text
    assert ", {} lost,".format(60 - read) in caplog.text
