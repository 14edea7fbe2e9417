"""The newest camera message, handed from the ROS executor to the inference thread
(Python 3.6 compatible): while the model is busy, a newer message replaces the one
waiting, which is counted as dropped, so frames are dropped, never queued."""

import threading
from typing import Any, Optional


class NewestOnly:
    """Holds at most one item: ``put`` replaces a waiting one (``dropped`` + 1), ``take``
    waits for one; after ``close`` both give up (``take`` returns None)."""

    def __init__(self) -> None:
        self.dropped = 0
        self._item: Any = None
        self._waiting = False
        self._closed = False
        self._ready = threading.Condition()

    def put(self, item: Any) -> None:
        with self._ready:
            if self._closed:
                return
            if self._waiting:
                self.dropped += 1
            self._item, self._waiting = item, True
            self._ready.notify()

    def take(self, timeout: Optional[float] = None) -> Any:
        """The newest item, once there is one; None after ``close`` or ``timeout`` s."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._waiting or self._closed, timeout):
                return None
            if self._closed:
                return None
            item, self._item, self._waiting = self._item, None, False
            return item

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._item, self._waiting = None, False
            self._ready.notify_all()
