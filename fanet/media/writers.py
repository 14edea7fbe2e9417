"""What ``fanet-segment`` writes for each frame: label PNGs (train IDs or Cityscapes label
IDs), colour PNGs, overlays, an overlay video, a window (Python 3.6 compatible).

Every PNG is encoded in memory and written atomically; the video is written to a
temporary name, read back (OpenCV writes a cut-short file without an error when the disk
fills) and renamed when it is closed, so a run leaves whole files or none. Read-only
targets are refused unless ``force``; temporaries a killed run left are removed by the
next one (``fanet.core.files.remove_stale_parts``).
"""

import contextlib
import logging
import os
import sys
from typing import Any, List, NamedTuple, Optional, Tuple

import numpy as np

from fanet.core.files import (
    OutputError,
    check_replaceable,
    free_space_text,
    publish,
    remove_stale_parts,
    temporary_beside,
    write_failure,
)
from fanet.core.labels import blend, colorize, train_id_to_id
from fanet.core.media_files import opencv_path, write_png
from fanet.core.preprocess import as_color_image

logger = logging.getLogger(__name__)
VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}  # container (the file's suffix): codec

WINDOW = "fanet-segment"


def open_window() -> None:
    """Open the ``--show`` window now, or raise ``OutputError`` in one line: before a model
    loads, and instead of OpenCV's error (headless builds) or abort (no display)."""
    import cv2

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise OutputError("--show needs a display and neither $DISPLAY nor $WAYLAND_DISPLAY is set")
    try:
        cv2.namedWindow(WINDOW)
    except cv2.error:
        raise OutputError(
            "--show cannot open a window: this OpenCV has no GUI support "
            "(opencv-python-headless?); write --overlay or --video instead"
        ) from None


class OutputRequest(NamedTuple):
    folder: str = "."
    labels: bool = False  # <name>_trainIds.png
    label_ids: bool = False  # <name>_labelIds.png (Cityscapes benchmark server)
    color: bool = False  # <name>_color.png
    overlay: bool = False  # <name>_overlay.png
    video: Optional[str] = None  # overlay video file
    show: bool = False  # a window (q or Esc stops)
    alpha: float = 0.5
    fps: float = 30.0
    force: bool = False  # replace read-only files


class FrameWriters:
    """Writes what ``request`` asks for; ``close()`` finishes the video and the window."""

    def __init__(self, request: OutputRequest) -> None:
        """``request.show`` expects the window that :func:`open_window` opened."""
        self.request = request
        self.stopped = False  # the window was closed with q or Esc
        self._video: Any = None
        self._video_temporary = ""
        self._video_size: Optional[Tuple[int, int]] = None
        self._video_frames = 0
        self._opencv_names = contextlib.ExitStack()  # names OpenCV can take, while in use
        self._label_ids = train_id_to_id()
        if request.video:
            folder = os.path.dirname(os.path.abspath(request.video))
            if not os.path.isdir(folder):
                raise OutputError("--video folder {} does not exist".format(folder))
            check_replaceable(request.video, request.force)
            container = os.path.splitext(request.video)[1].lower()
            if container not in VIDEO_CODECS:
                raise OutputError(
                    "--video {}: write {} (the container follows the name)".format(
                        request.video, " or ".join(sorted(VIDEO_CODECS))
                    )
                )
            remove_stale_parts(folder)
        if request.labels or request.label_ids or request.color or request.overlay:
            remove_stale_parts(request.folder)

    def write(self, name: str, image: np.ndarray, labels: np.ndarray) -> None:
        request = self.request
        pngs: List[Tuple[str, np.ndarray]] = []
        if request.labels:
            pngs.append(("_trainIds", labels))
        if request.label_ids:
            pngs.append(("_labelIds", self._label_ids[labels]))
        needs_overlay = request.overlay or bool(request.video) or request.show
        if request.color or needs_overlay:
            colours = colorize(labels)
            if request.color:
                pngs.append(("_color", colours))
            if needs_overlay:
                overlay = blend(as_color_image(image), colours, request.alpha)
                if request.overlay:
                    pngs.append(("_overlay", overlay))
                if request.video:
                    self._write_video(overlay)
                if request.show:
                    self._show(overlay)
        for suffix, picture in pngs:
            path = os.path.join(request.folder, name + suffix + ".png")
            check_replaceable(path, request.force)
            write_png(path, picture)

    def _write_video(self, overlay: Any) -> None:
        import cv2

        height, width = overlay.shape[:2]
        if self._video is None:
            video = self.request.video or ""
            container = os.path.splitext(video)[1].lower()
            self._video_temporary = temporary_beside(video, container)
            self._video = cv2.VideoWriter(
                self._opencv_names.enter_context(opencv_path(self._video_temporary)),
                cv2.VideoWriter.fourcc(*VIDEO_CODECS[container]),
                self.request.fps,
                (width, height),
            )
            if not self._video.isOpened():
                raise OutputError("cannot write video {}".format(self.request.video))
            self._video_size = (height, width)
        elif (height, width) != self._video_size:
            assert self._video_size is not None
            overlay = cv2.resize(overlay, (self._video_size[1], self._video_size[0]))
        self._video.write(overlay)
        self._video_frames += 1

    def _show(self, overlay: Any) -> None:
        import cv2

        cv2.imshow(WINDOW, overlay)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stopped = True

    def close(self, keep: bool = True) -> None:
        """Finish the video, checked whole and renamed into place when ``keep`` (else
        removed), and close the window."""
        try:
            if self._video is not None:
                self._video.release()
                self._video = None
                if keep:
                    self._publish_video()
        finally:
            self._opencv_names.close()
            if self._video_temporary and os.path.exists(self._video_temporary):
                os.remove(self._video_temporary)
            if self.request.show:
                import cv2

                with contextlib.suppress(cv2.error):  # already closed by the window manager
                    cv2.destroyWindow(WINDOW)

    def _publish_video(self) -> None:
        """Rename the video into place once it reads back with every frame written."""
        target = self.request.video or ""
        found = _frames_in(self._video_temporary)
        if found != self._video_frames:
            raise OutputError(
                "cannot write {}: the video could not be finished ({} of {} frames read "
                "back; {} free in {})".format(
                    target,
                    found,
                    self._video_frames,
                    free_space_text(target),
                    os.path.dirname(os.path.abspath(target)),
                )
            )
        check_replaceable(target, self.request.force)
        try:
            publish(self._video_temporary, target)
        except OSError as exc:
            raise write_failure(exc, target) from None


def _frames_in(path: str) -> int:
    """How many frames OpenCV reads back from a video file (0: not a readable video)."""
    import cv2

    with opencv_path(path) as name:
        capture = cv2.VideoCapture(name)
        try:
            return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        finally:
            capture.release()
