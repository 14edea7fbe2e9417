"""Typed options of each backend and of the engine builder (Python 3.6 compatible).

``open_backend(path, backend, **options)`` turns its keyword options into the chosen
backend's record; an option that backend does not take is a ``ConfigError`` naming it.
"""

from typing import Any, Dict, NamedTuple, Optional, Tuple, Type

from fanet.core.errors import ConfigError

Size = Tuple[int, int]


class BuildOptions(NamedTuple):
    """How ``fanet-build`` builds an engine beyond its precision."""

    workspace_mib: Optional[int] = None  # None: TensorRT's default (256 MiB on Jetson)
    timing_cache: Optional[str] = None  # read, merged with what the build learns, written
    dla_core: Optional[int] = None
    profile: Optional[Tuple[Size, Size, Size]] = None  # (min, opt, max) of a dynamic ONNX
    implicit_int8: bool = False  # IInt8EntropyCalibrator2 from the exported cache (8.x-10.x)
    force: bool = False  # replace a read-only engine


class TensorRTOptions(NamedTuple):
    cuda_graph: bool = False  # replay inference as a CUDA graph (cuda-python)
    rebuild: bool = False  # rebuild an engine made for another TensorRT or GPU
    cache_dir: Optional[str] = None  # engine cache for .onnx inputs
    input_size: Optional[Size] = None  # engine input size for a dynamic .onnx
    build: BuildOptions = BuildOptions()  # for engines built from an .onnx


class OnnxRuntimeOptions(NamedTuple):
    threads: Optional[int] = None  # CPU intra-op threads (None: ONNX Runtime's choice)


class OpenVinoOptions(NamedTuple):
    threads: Optional[int] = None  # CPU inference threads (None: OpenVINO's choice)
    hint: str = "latency"  # "latency" (one frame at a time) or "throughput" (batches)
    cache_dir: Optional[str] = None  # compiled models (None: beside the engine cache)


class TorchOptions(NamedTuple):
    channels_last: bool = False
    cuda_graph: bool = False
    fuse: bool = True  # fold BatchNorm into the convolutions (False: the authors' eager model)
    temporal: int = 1  # frames the attention spans (fanet.model.temporal); 1: single frame
    temporal_reduce: str = "mean"


def options_for(
    backend: str, kind: Type[Any], given: Dict[str, Any], typed: Optional[Any] = None
) -> Any:
    """``typed`` where it is ``backend``'s record, else ``kind(**given)``; a ``ConfigError``
    names the options ``backend`` takes."""
    if typed is not None:
        if given or not isinstance(typed, kind):
            raise ConfigError(
                "the {} backend takes a {} record or keyword options, not {}".format(
                    backend, kind.__name__, type(typed).__name__ if not given else "both"
                )
            )
        return typed
    unknown = sorted(set(given) - set(kind._fields))
    if unknown:
        raise ConfigError(
            "the {} backend takes no option {} (its options: {})".format(
                backend, ", ".join(repr(name) for name in unknown), ", ".join(kind._fields)
            )
        )
    return kind(**given)
