"""TensorRT's log routed to Python logging, and the machine an engine is built for (3.6)."""

import logging
from typing import Any, Dict

import tensorrt as trt

from fanet.runtime.trt.cuda import CudaApi


class PythonLogger(trt.ILogger):
    """Routes TensorRT's log to Python logging (``fanet.tensorrt``)."""

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

    def log(self, severity: Any, msg: str) -> None:
        self._logger.log(self._LEVELS.get(severity, logging.INFO), "%s", msg)


TRT_LOGGER = PythonLogger()


def machine_info(cuda: CudaApi) -> Dict[str, str]:
    """The fields an engine record must match: TensorRT version, GPU, compute capability."""
    name, capability = cuda.device_properties()
    return {"tensorrt_version": trt.__version__, "gpu_name": name, "compute_capability": capability}
