"""Which TensorRT API path, builder flags and ONNX variant to use: pure functions of the
TensorRT version and the request (Python 3.6 compatible, no TensorRT import needed).

API generations (TENSORRT_NOTES.md):
- 8.2-8.4: bindings API (``execute_async_v2``), ``max_workspace_size``, EXPLICIT_BATCH flag.
- 8.5-10.x: named tensors (``set_tensor_address``, ``execute_async_v3``), memory pools.
- 10.x: bindings API gone; weak typing (precision flags) deprecated from 10.12.
- 11.x: strongly typed only: no FP16/INT8 flags, no calibrators; precision is in the ONNX.

Where FP16 or INT8 comes from builder flags (weak typing), the fast attention is pinned to
FP32 (``fanet.runtime.trt.precision``) under ``OBEY_PRECISION_CONSTRAINTS``; where it comes
from a typed graph (strong typing), the graph keeps it FP32 itself.
"""

import re
from typing import NamedTuple, Optional, Tuple

from fanet.conformance.rules import generation
from fanet.core.errors import ConfigError, MissingDependencyError

Version = Tuple[int, int]
PRECISIONS = ("fp32", "fp16", "int8")
STRONGLY_TYPED_ONLY = (11, 0)
WEAK_TYPING_DEPRECATED = (10, 12)
# The typed graph a strongly typed build of each precision parses.
TYPED_VARIANT = {"fp32": "fp32", "fp16": "fp16", "int8": "int8_fp16"}


def parse_version(text: str) -> Version:
    """``"8.6.1.6"`` -> (8, 6)."""
    match = re.match(r"^\s*(\d+)\.(\d+)", str(text))
    if not match:
        raise ConfigError("cannot parse TensorRT version {!r}".format(text))
    return int(match.group(1)), int(match.group(2))


class BuildPlan(NamedTuple):
    """How to build an engine of ``precision`` with a given TensorRT."""

    precision: str
    onnx_variant: str  # which exported graph to parse: "fp32", "fp16" or "int8"
    builder_flags: Tuple[str, ...]  # names in trt.BuilderFlag
    strongly_typed: bool  # create the network with NetworkDefinitionCreationFlag.STRONGLY_TYPED
    explicit_batch_flag: bool  # pass NetworkDefinitionCreationFlag.EXPLICIT_BATCH (< 10.0)
    workspace_api: str  # "max_workspace_size" (< 8.4) or "memory_pool_limit"
    implicit_calibration: bool  # an IInt8EntropyCalibrator2 is allowed
    max_opset: int
    pin_attention_fp32: bool  # pin the attention layers to FP32 (weakly typed FP16/INT8)


class RuntimePlan(NamedTuple):
    """How to run an engine with a given TensorRT."""

    io_api: str  # "bindings" (execute_async_v2) or "named_tensors" (execute_async_v3)


def max_onnx_opset(version: Version) -> int:
    """Newest ONNX opset the TensorRT ONNX parser of ``version`` accepts."""
    return generation(version).max_opset


def runtime_plan(version: Version) -> RuntimePlan:
    """Bindings API before 8.5, named tensors from 8.5 on."""
    return RuntimePlan("bindings" if version < (8, 5) else "named_tensors")


def build_plan(
    version: Version,
    precision: str,
    available_variants: Tuple[str, ...] = ("fp32",),
    implicit_calibration: bool = False,
    fast_int8: bool = True,
    fast_fp16: bool = True,
) -> BuildPlan:
    """The build recipe for ``precision`` on TensorRT ``version``.

    ``available_variants`` are the ONNX precisions exported beside the model. Raises
    ``ConfigError`` naming what to do when the request cannot be met.
    """
    if precision not in PRECISIONS:
        raise ConfigError("unknown precision {!r}; choose fp32, fp16 or int8".format(precision))
    if precision == "int8" and not fast_int8:
        raise ConfigError("this GPU has no fast INT8 (e.g. Jetson Nano, sm_53): use --fp16")
    if precision == "fp16" and not fast_fp16:
        raise ConfigError("this GPU has no fast FP16: build fp32")
    strongly_typed_only = version >= STRONGLY_TYPED_ONLY
    if implicit_calibration and (precision != "int8" or strongly_typed_only):
        raise ConfigError(
            "implicit INT8 calibration exists only for --int8 on TensorRT 8.x-10.x "
            "(TensorRT 11 has no calibrators: export with --int8 for a Q/DQ graph)"
        )
    variant, strongly_typed = _variant(
        version, precision, available_variants, implicit_calibration, strongly_typed_only
    )
    if variant not in available_variants:
        hint = {"fp16": "fanet-export --fp16", "int8": "fanet-export --int8 --calib-data ..."}
        raise ConfigError(
            "TensorRT {}.{} builds {} from the {} ONNX graph, which is missing: run {}".format(
                version[0],
                version[1],
                precision,
                variant.upper(),
                hint.get(variant, "fanet-export"),
            )
        )
    weak_precision = not strongly_typed and precision != "fp32"
    flags: Tuple[str, ...] = ()
    if weak_precision:
        # FP16 also for the INT8 build's unquantized layers; the pins keep the attention FP32.
        flags = ("INT8", "FP16") if precision == "int8" else ("FP16",)
        flags += ("OBEY_PRECISION_CONSTRAINTS",)
    return BuildPlan(
        precision=precision,
        onnx_variant=variant,
        builder_flags=flags,
        strongly_typed=strongly_typed,
        explicit_batch_flag=version < (10, 0),
        workspace_api="max_workspace_size" if version < (8, 4) else "memory_pool_limit",
        implicit_calibration=implicit_calibration,
        max_opset=max_onnx_opset(version),
        pin_attention_fp32=weak_precision,
    )


def _variant(
    version: Version,
    precision: str,
    available: Tuple[str, ...],
    implicit_calibration: bool,
    strongly_typed_only: bool,
) -> Tuple[str, bool]:
    """(ONNX variant, strongly typed) for a build.

    11.x parses the typed graph (an INT8 graph with FP32 float parts where the FP16-typed
    one is missing). From 10.12, where weak typing is deprecated, the typed graph is used
    when it was exported; otherwise the FP32 graph (FP16, implicit INT8) or the Q/DQ graph
    (INT8) with builder flags.
    """
    typed = TYPED_VARIANT[precision]
    if strongly_typed_only:
        if precision == "int8" and typed not in available:
            return "int8", True
        return typed, True
    weak_deprecated = version >= WEAK_TYPING_DEPRECATED and not implicit_calibration
    if precision != "fp32" and weak_deprecated and typed in available:
        return typed, True
    if precision == "int8" and not implicit_calibration:
        return "int8", False
    return "fp32", False


def reports_fast_precisions(version: Version) -> bool:
    """Whether the builder has ``platform_has_fast_fp16``/``_int8`` (gone in 11.x)."""
    return version < STRONGLY_TYPED_ONLY


def require_tensorrt() -> Version:
    """The installed TensorRT version; ``MissingDependencyError`` when there is none."""
    version = installed_tensorrt_version()
    if version is None:
        raise MissingDependencyError(
            "TensorRT is not installed: use JetPack's python3-libnvinfer or NVIDIA's tensorrt "
            "wheel, plus cuda-python or pycuda"
        )
    return version


def installed_tensorrt_version() -> Optional[Version]:
    """The version of an importable TensorRT, or None (type stubs alone do not count)."""
    try:
        import tensorrt
    except ImportError:
        return None
    version = getattr(tensorrt, "__version__", None)
    return parse_version(version) if version else None
