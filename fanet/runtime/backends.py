"""``open_backend``: the best available backend for a model file (Python 3.6 compatible)."""

import logging
import os
from typing import Any, Dict, Optional, Tuple

from fanet.runtime.backend import Backend, BackendError
from fanet.runtime.engine_record import read_record
from fanet.runtime.metadata import DEFAULTS, read_sidecar
from fanet.runtime.trt_versions import installed_tensorrt_version, require_tensorrt

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
ONNX_SUFFIXES = (".onnx",)
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".pkl")


def _cuda_available_to_onnxruntime() -> bool:
    try:
        import onnxruntime
    except ImportError:
        return False
    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def _torch_cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _backends_for(suffix: str) -> Tuple[str, ...]:
    """Backends that can run a file of this type, best first."""
    if suffix in ENGINE_SUFFIXES:
        return ("tensorrt",)
    if suffix in CHECKPOINT_SUFFIXES:
        return ("torch",)
    return ("tensorrt", "onnxruntime")


def _choose(path: Any, backend: str) -> str:
    if backend not in BACKENDS:
        raise BackendError(
            "unknown backend {!r}; choose one of: {}".format(backend, ", ".join(BACKENDS))
        )
    if not isinstance(path, str):
        return "torch" if backend == "auto" else backend
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in ENGINE_SUFFIXES + ONNX_SUFFIXES + CHECKPOINT_SUFFIXES:
        raise BackendError(
            "cannot tell the model type of {} (expected .engine, .onnx or .pth)".format(path)
        )
    if not os.path.isfile(path):
        raise BackendError("model file not found: {}".format(path))
    candidates = _backends_for(suffix)
    if backend != "auto":
        if backend not in candidates:
            raise BackendError(
                "{} files run with {}, not {}".format(suffix, " or ".join(candidates), backend)
            )
        return backend
    if candidates[0] == "tensorrt" and len(candidates) > 1 and installed_tensorrt_version() is None:
        return "onnxruntime"
    return candidates[0]


def open_backend(
    path_or_model: Any,
    backend: str = "auto",
    device: Optional[str] = None,
    precision: Optional[str] = None,
    **options: Any,
) -> Backend:
    """Open ``path_or_model`` (.engine, .onnx, .pth, or a torch module) on a backend.

    ``backend="auto"`` picks TensorRT for engines (and for ONNX where TensorRT is
    installed, through the engine cache), ONNX Runtime (CUDA if available, else CPU) for
    ONNX, and PyTorch for checkpoints; the choice is logged.
    """
    chosen = _choose(path_or_model, backend)
    if chosen == "tensorrt":
        require_tensorrt()
        from fanet.runtime.tensorrt_backend import open_tensorrt

        opened: Backend = open_tensorrt(path_or_model, precision=precision, **options)
    elif chosen == "onnxruntime":
        from fanet.runtime.onnxruntime_backend import OnnxRuntimeBackend

        if device is None:
            device = "cuda" if _cuda_available_to_onnxruntime() else "cpu"
        sidecar_precision = read_sidecar(path_or_model).get("precision", "fp32")
        opened = OnnxRuntimeBackend(
            path_or_model, device=device, precision=precision or sidecar_precision, **options
        )
    else:
        from fanet.runtime.torch_backend import TorchBackend

        if device is None:
            device = "cuda" if _torch_cuda_available() else "cpu"
        opened = TorchBackend(
            path_or_model, device=device, precision=precision or "fp32", **options
        )
    logger.info("backend: %s", opened.describe())
    return opened


def metadata_for(path_or_model: Any, backend: Backend) -> Dict[str, Any]:
    """The sidecar fields (normalisation, input size, classes) for an opened model."""
    metadata = dict(DEFAULTS)
    if not isinstance(path_or_model, str):
        metadata.update(input_size=None, num_classes=getattr(backend, "num_classes", 19))
        return metadata
    suffix = os.path.splitext(path_or_model)[1].lower()
    if suffix in ONNX_SUFFIXES:
        return read_sidecar(path_or_model)
    if suffix in ENGINE_SUFFIXES:
        record = read_record(path_or_model) or {}
        metadata.update(record.get("sidecar", {}))
        return metadata
    metadata.update(input_size=None, num_classes=getattr(backend, "num_classes", 19))
    return metadata
