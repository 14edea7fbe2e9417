"""A real HTTP server on loopback serving one video with byte ranges, as web servers do
(FFmpeg seeks to an MP4's index), that can drop the connection once mid-file (Python 3.6
compatible)."""

import contextlib
import http.server
import re
import socketserver
import threading
import time
from typing import Iterator


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """A thread per request (``http.server.ThreadingHTTPServer`` is Python 3.7+)."""

    daemon_threads = True


class _Video(http.server.BaseHTTPRequestHandler):
    """Serves ``payload``. With ``cut`` set: once the video is open (FFmpeg has read its
    start and, at the end, its index), the first response that reaches byte ``cut`` is cut
    there, and the requests that follow soon after are refused (a server restarting, a
    Wi-Fi link coming back), so the reader's own retries fail and the stream is lost."""

    payload = b""
    cut = 0
    refused_until = 0.0
    requests = 0

    def do_GET(self) -> None:
        video = type(self)
        video.requests += 1
        if time.monotonic() < video.refused_until:
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
        if video.cut and video.requests > 2 and start < video.cut < stop:
            body = body[: video.cut - start]  # the connection drops here, once
            video.cut, video.refused_until = 0, time.monotonic() + 0.3
            self.close_connection = True
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the reader had enough
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def served(payload: bytes, drop_at: float = 0.0) -> Iterator[str]:
    """The URL of ``payload`` served on loopback; with ``drop_at`` (a fraction of the file)
    the connection drops once there."""
    handler = type("Video", (_Video,), {"payload": payload, "cut": int(len(payload) * drop_at)})
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield "http://127.0.0.1:{}/drive.mp4".format(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
