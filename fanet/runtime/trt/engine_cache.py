"""Engines on demand: the cached engine of an ONNX, rebuilds for this machine, and
``open_tensorrt``, which the backend registry calls (Python 3.6 compatible)."""

import logging
import os
from typing import Optional, Tuple

from fanet.core.engine_record import (
    EngineError,
    EngineMismatchError,
    EngineRecord,
    cache_key,
    default_cache_dir,
    read_record,
)
from fanet.core.errors import ConfigError
from fanet.core.files import sha256_file
from fanet.core.sidecar import MetadataError, read_sidecar
from fanet.runtime.options import BuildOptions, Size, TensorRTOptions
from fanet.runtime.trt.backend import TensorRTBackend
from fanet.runtime.trt.builder import build_engine
from fanet.runtime.trt.cuda import CudaApi, load_cuda_api
from fanet.runtime.trt.logger import create_runtime
from fanet.runtime.trt.machine import this_machine

logger = logging.getLogger(__name__)


def engine_for_onnx(
    onnx_path: str,
    precision: str,
    cache_dir: Optional[str] = None,
    input_size: Optional[Size] = None,
    options: BuildOptions = BuildOptions(),
    cuda: Optional[CudaApi] = None,
) -> str:
    """The cached engine for this ONNX, precision, shape and machine; built when missing."""
    sidecar = read_sidecar(onnx_path)
    shape = input_size or sidecar.input_size
    profile = options.profile
    if sidecar.dynamic and profile is None:
        if not shape:
            raise ConfigError("a dynamic ONNX needs an input size for its engine")
        size = (int(shape[0]), int(shape[1]))
        profile = (size, size, size)
    key = cache_key(
        sha256_file(onnx_path), precision, [shape, profile], this_machine(cuda or load_cuda_api())
    )
    folder = cache_dir or default_cache_dir()
    engine_path = os.path.join(
        folder,
        "{}_{}_{}.engine".format(os.path.splitext(os.path.basename(onnx_path))[0], precision, key),
    )
    if os.path.isfile(engine_path) and _has_record(engine_path):
        logger.info("engine cache hit: %s", engine_path)
        return engine_path
    return build_engine(onnx_path, precision, engine_path, options._replace(profile=profile))


def _has_record(engine_path: str) -> bool:
    """Whether a cached engine has a usable record (one that is missing, not JSON or
    malformed makes the entry a miss, rebuilt)."""
    try:
        return read_record(engine_path) is not None
    except MetadataError:
        return False


def rebuild_engine(engine_path: str) -> str:
    """Rebuild an engine for this machine from the ONNX and settings in its record."""
    record = read_record(engine_path) or EngineRecord()
    onnx_path = record.onnx_path
    if not onnx_path or not os.path.isfile(onnx_path):
        raise EngineError(
            "cannot rebuild {}: its ONNX ({}) is not here".format(engine_path, onnx_path)
        )
    sizes: Optional[Tuple[Size, Size, Size]] = None
    if record.profile:
        minimum, optimum, maximum = (
            (int(record.profile[k][2]), int(record.profile[k][3])) for k in ("min", "opt", "max")
        )
        sizes = (minimum, optimum, maximum)
    options = BuildOptions(
        workspace_mib=record.workspace_mib,
        dla_core=record.dla_core,
        profile=sizes,
        implicit_int8=bool(record.implicit_int8),
    )
    return build_engine(onnx_path, record.precision or "fp32", engine_path, options)


def open_engine_backend(
    path: str, device: Optional[str], precision: Optional[str], options: TensorRTOptions
) -> TensorRTBackend:
    """The registry's opener (TensorRT runs on the GPU only)."""
    if device not in (None, "cuda"):
        raise ConfigError("the tensorrt backend runs on cuda, not {}".format(device))
    return open_tensorrt(path, precision, options)


def open_tensorrt(
    path: str, precision: Optional[str] = None, options: TensorRTOptions = TensorRTOptions()
) -> TensorRTBackend:
    """A TensorRT backend for an engine, or for an ONNX through the engine cache."""
    if not os.path.isfile(path):
        raise EngineError(
            "{} not found: {}".format("ONNX file" if _is_onnx(path) else "engine", path)
        )
    runtime = create_runtime()  # first: without a usable GPU, TensorRT says why
    cuda = load_cuda_api()
    if _is_onnx(path):
        precision = precision or read_sidecar(path).precision  # as ONNX Runtime would run it
        path = engine_for_onnx(
            path, precision, options.cache_dir, options.input_size, options.build, cuda
        )
    try:
        return TensorRTBackend(path, cuda, options.cuda_graph, runtime)
    except EngineMismatchError:
        if not options.rebuild:
            raise
        logger.warning("rebuilding %s for this machine", path)
        rebuild_engine(path)
        return TensorRTBackend(path, cuda, options.cuda_graph, runtime)


def _is_onnx(path: str) -> bool:
    return path.lower().endswith(".onnx")
