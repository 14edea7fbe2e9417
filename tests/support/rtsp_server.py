"""A real RTSP server on loopback for the stream tests: Debian's GStreamer RTSP server
(gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-ugly for x264), run by the system
Python that has PyGObject.

    /usr/bin/python3 tests/support/rtsp_server.py PORT [WIDTH HEIGHT FPS]

serves a moving test pattern as H.264 at rtsp://127.0.0.1:PORT/live until it is killed.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main(port: int, width: int = 320, height: int = 176, fps: int = 30) -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( videotestsrc is-live=true pattern=ball ! "
        "video/x-raw,width={},height={},framerate={}/1 ! "
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={} ! "
        "rtph264pay name=pay0 pt=96 )".format(width, height, fps, fps)
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/live", factory)
    if server.attach(None) == 0:
        raise SystemExit("cannot serve on port {}".format(port))
    print("serving rtsp://127.0.0.1:{}/live".format(port), flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(*[int(value) for value in sys.argv[1:]])
