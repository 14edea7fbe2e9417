"""TensorRT timing caches shared between builds: loaded before, merged after (Python 3.6).

Only builder-config methods are called, so this module does not import TensorRT. Two
builds may share one cache file: the merge re-reads it under a file lock, so what
either build learnt is kept.
"""

import logging
import os
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import tensorrt as trt

from fanet.core.files import atomic_write
from fanet.core.locks import file_lock

logger = logging.getLogger(__name__)


def _read(path: str) -> bytes:
    if not os.path.isfile(path):
        return b""
    with open(path, "rb") as stream:
        return stream.read()


def attach_timing_cache(config: "trt.IBuilderConfig", path: Optional[str]) -> None:
    """Give the builder ``config`` the cache in ``path`` (an empty one if absent)."""
    if not path:
        return
    with file_lock(path):
        data = _read(path)
    if not config.set_timing_cache(config.create_timing_cache(data), ignore_mismatch=False):
        logger.warning("%s was made by another TensorRT or GPU: starting a new cache", path)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)


def merge_timing_cache(config: "trt.IBuilderConfig", path: Optional[str]) -> None:
    """Merge what the build learnt into ``path``, keeping entries others wrote meanwhile."""
    if not path:
        return
    learnt = config.get_timing_cache()
    with file_lock(path):
        data = _read(path)
        if data and not learnt.combine(config.create_timing_cache(data), False):
            logger.warning("%s was made by another TensorRT or GPU: replacing it", path)
        with atomic_write(path) as stream:
            stream.write(bytes(learnt.serialize()))
    logger.info("timing cache %s updated", path)
