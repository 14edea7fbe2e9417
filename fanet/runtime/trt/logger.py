"""TensorRT's log routed to Python logging, TensorRT's builder and runtime created with a
one-line answer where no usable CUDA GPU is there, and the machine an engine is built for
(Python 3.6 compatible).

Without a usable GPU (none, a busy or mismatched driver, a container started without
``--runtime nvidia``) TensorRT 8.x logs why (``CUDA initialization failure with error:
35``) and its ``Builder``/``Runtime`` constructors raise ``TypeError: pybind11::init():
factory function returned nullptr``; :func:`create_builder` and :func:`create_runtime`
turn that into :class:`NoGpuError` carrying TensorRT's own reason.
"""

import contextlib
import logging
from typing import Any, Callable, Iterator, List, Tuple

import tensorrt as trt

from fanet.runtime.trt.cuda import NoGpuError

_NO_GPU_HINT = (
    "is the GPU visible here (Docker: --runtime nvidia / --gpus all) and does the driver "
    "match this TensorRT?"
)


class PythonLogger(trt.ILogger):
    """Routes TensorRT's log to Python logging (``fanet.tensorrt``); :meth:`held` keeps
    the messages back while a TensorRT object is created."""

    _LEVELS = {
        trt.ILogger.Severity.INTERNAL_ERROR: logging.CRITICAL,
        trt.ILogger.Severity.ERROR: logging.ERROR,
        trt.ILogger.Severity.WARNING: logging.WARNING,
        trt.ILogger.Severity.INFO: logging.DEBUG,
        trt.ILogger.Severity.VERBOSE: logging.DEBUG - 5,
    }

    def __init__(self) -> None:
        trt.ILogger.__init__(self)
        self._logger = logging.getLogger("fanet.tensorrt")
        self._held: List[Tuple[int, str]] = []
        self._holding = False

    def log(self, severity: Any, msg: str) -> None:
        level = self._LEVELS.get(severity, logging.INFO)
        if self._holding:
            self._held.append((level, msg))
        else:
            self._logger.log(level, "%s", msg)

    @contextlib.contextmanager
    def held(self) -> Iterator[List[Tuple[int, str]]]:
        """Keep messages back; logged as they came on success, at DEBUG on failure."""
        self._held, self._holding = [], True
        failed = False
        try:
            yield self._held
        except BaseException:
            failed = True
            raise
        finally:
            self._holding = False
            for level, msg in self._held:
                self._logger.log(logging.DEBUG if failed else level, "%s", msg)


TRT_LOGGER = PythonLogger()


def create_builder() -> "trt.Builder":
    """TensorRT's builder; ``NoGpuError`` with TensorRT's reason where it cannot start."""
    return _created(trt.Builder, "builder")


def create_runtime() -> "trt.Runtime":
    """TensorRT's runtime; ``NoGpuError`` with TensorRT's reason where it cannot start."""
    return _created(trt.Runtime, "runtime")


def _created(factory: Callable[[Any], Any], what: str) -> Any:
    with TRT_LOGGER.held() as messages:
        try:
            made = factory(TRT_LOGGER)
        except TypeError as exc:
            if "nullptr" not in str(exc):  # pybind11's answer to a failed creation
                raise
            made = None
        if made is None:
            raise NoGpuError(
                "no usable CUDA GPU was found: TensorRT {} cannot create its {} ({}); {}".format(
                    trt.__version__, what, _reason(messages), _NO_GPU_HINT
                )
            )
    return made


def _reason(messages: List[Tuple[int, str]]) -> str:
    """TensorRT's own words: its message about CUDA, else its last warning or error."""
    serious = [msg for level, msg in messages if level >= logging.WARNING]
    about_cuda = [msg for msg in serious if "CUDA" in msg]
    chosen = (about_cuda or serious or ["it logged no reason"])[-1]
    return chosen.split(". ")[0].strip().rstrip(".")  # the first sentence, without the URL
