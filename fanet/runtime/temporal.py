"""Frames in turn through a temporal model, its attention state kept between them
(paper Sec. III-D; Python 3.6 compatible).

A temporal graph (``fanet-export --temporal T``) attends, in each attention module, to the
k^T v of the last T frames; it reads the earlier frames' as state inputs and writes the
next state as outputs. ``TemporalSession`` binds that state to the backend, which keeps
it on its device (TensorRT, ONNX Runtime with CUDA) or in host memory (CPU) from one
frame to the next, so a frame costs one inference whatever T.

    with segmenter.temporal_session() as session:
        for frame in frames:
            labels = session(frame)       # a change of frame size resets the state
        session.reset()                   # a cut: forget the earlier frames
"""

import logging
import threading
from typing import Any, Dict, Optional, Tuple

import numpy as np

from fanet.core.errors import ConfigError
from fanet.core.preprocess import as_color_image
from fanet.runtime.backend import BackendError

logger = logging.getLogger(__name__)


def require_window(window: Any) -> int:
    """``window`` if it is a whole number of frames >= 1, else ``ConfigError``."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ConfigError(
            "the temporal window (--temporal) must be a whole number of frames >= 1, "
            "got {!r}".format(window)
        )
    return window


def check_window(
    own: int, window: Optional[int], model: str = "the model", implicit: bool = True
) -> int:
    """The window of frames to run ``model`` with: its ``own``, which ``window`` (if
    given) must equal. ``implicit=False`` (the commands): a temporal model needs the
    window named. ``ConfigError`` otherwise."""
    if window is not None:
        require_window(window)
    if window is None and (implicit or own == 1):
        return own
    if window is None:
        raise ConfigError(
            "{} is temporal ({} frames): pass --temporal {} to run it on frames in turn, its "
            "state carried".format(model, own, own)
        )
    if window != own:
        raise ConfigError(
            "{} attends to {} frame{}, not {}: export it with --temporal {} (a checkpoint "
            "takes any)".format(model, own, "s" if own > 1 else "", window, window)
        )
    return own


class TemporalSession:
    """A Segmenter whose backend carries the model's state from frame to frame.

    One session at a time per Segmenter; ``close()`` (or leaving the ``with`` block)
    unbinds the state. A single-frame model gives a session without state."""

    def __init__(self, segmenter: Any, window: Optional[int] = None) -> None:
        self.window = check_window(segmenter.sidecar.temporal, window)
        self.segmenter = segmenter
        self.resets = 0
        self._size: Optional[Tuple[int, ...]] = None
        lock = segmenter.session_lock
        if not lock.acquire(blocking=False):
            raise BackendError("this Segmenter has a temporal session open already")
        self._lock: Optional[threading.Lock] = lock
        try:
            with segmenter.inference_lock:
                segmenter.backend.bind_state(segmenter.sidecar.state)
        except BaseException:
            self._release_lock()
            raise

    def run(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        """The model's outputs for the next frame (the state stays in the backend)."""
        self._require_open()
        image = as_color_image(image)
        self._cut_if_resized(image.shape[:2])
        return self.segmenter.infer(self.segmenter.inputs(image))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """H x W uint8 train IDs of the next frame, at its size."""
        image = as_color_image(image)
        return self.segmenter.labels(self.run(image), image.shape[:2])

    def infer(self, feed: Dict[str, np.ndarray], size: Tuple[int, ...]) -> Dict[str, np.ndarray]:
        """Outputs for prepared inputs of a frame of ``size`` (H, W), in stream order."""
        self._require_open()
        self._cut_if_resized(size)
        return self.segmenter.infer(feed)

    def reset(self) -> None:
        """Forget the earlier frames (a cut in the video, a new stream)."""
        self._require_open()
        with self.segmenter.inference_lock:
            self.segmenter.backend.reset_state()
        self.resets += 1

    def _cut_if_resized(self, size: Tuple[int, ...]) -> None:
        if self._size is not None and tuple(size) != self._size:
            if self.window > 1:  # a single-frame model has no state to start again
                logger.info("frame size changed: the temporal state starts again")
            self.reset()
        self._size = tuple(size)

    def _require_open(self) -> None:
        if self._lock is None:
            raise BackendError("this temporal session is closed")

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def close(self) -> None:
        """Stop carrying the state (a second call does nothing)."""
        if self._lock is None:
            return
        try:
            if not self.segmenter.backend.closed:
                with self.segmenter.inference_lock:
                    self.segmenter.backend.unbind_state()
        finally:
            self._release_lock()

    def __enter__(self) -> "TemporalSession":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
