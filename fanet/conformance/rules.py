"""TensorRT's ONNX parser rules, per TensorRT generation, as the primary sources state them.

Python 3.6 compatible: ``fanet-build`` checks a graph against them on the device before
parsing. Every rule names its source; the sources (read for this table, 2026-11):

- ``ops-8.2``   onnx/onnx-tensorrt ``docs/operators.md`` at ``8.2-GA`` (f42daee); NVIDIA/TensorRT
  ``release/8.2`` pins the parser at 4f54a19. "up to Opset 13".
- ``ops-8.6``   the same file at ``8.6-GA`` (ee0b139; ``release/8.6`` pins 6ba67d3); ``8.4-GA``
  and ``8.5-GA`` say the same opset bound: "up to Opset 17".
- ``ops-10.0``  the same file at ``10.0-GA`` (73f629e; ``release/10.0`` pins eb43908):
  "opset 9 to opset 20".
- ``ops-10.15`` the same file as pinned for 10.15: "opset 9 to opset 24". The parser revisions
  NVIDIA/TensorRT pins for 11.0 (5ab48c5) and 11.1 (7c51a63) were not available to read;
  their CHANGELOG lists only added operators, so 11.x uses the 10.15 table.
- ``importer-8.2``  ``builtin_op_importers.cpp`` at ``8.2-GA``: Q/DQ need 3 inputs, scales read as
  FP32 and must be positive, zero points all zero; Conv bias "is required to be an
  initializer"; Clip min/max "must be an initializer"; Resize modes; Resize scales must be an
  initializer when no sizes are given.
- ``importer-8.6``  the same at ``8.6-GA``: "requires 3 inputs for the INT8
  QuantizeLinear/DequantizeLinear operator"; UINT8 Q/DQ data refused.
- ``importer-10.0`` ``onnxOpImporters.cpp`` at ``10.0-GA``: Conv bias must be an initializer; a
  UINT8 zero point is replaced by INT8 (a different quantization grid).
- ``nvinfer-8.2``   NVIDIA/TensorRT ``include/NvInfer.h`` at ``release/8.2``: IDequantizeLayer
  "accepts a signed 8-bit integer input tensor", zero point INT8 and all zero, scales
  positive, per-channel "only for input that is rooted at an IConstantLayer (i.e. weights)";
  IConstantLayer turns non-INT32 weights into real values, so an INT8 initializer cannot
  feed a Dequantize layer: weights reach it as FP32 -> QuantizeLinear -> DequantizeLinear.
- ``nvinfer-10.0`` / ``nvinfer-11.1``: IDequantizeLayer takes INT8/FP8/INT4 (11.1: and FP4),
  rooted at weights for per-channel; zero point of the input's type and all zero.
- ``fast-attention``  TENSORRT_NOTES.md: the released FANet has no 1/n in its attention, so the
  attention's sums overflow FP16; ReduceL2 is imported as x*x -> ReduceSum -> Sqrt.
"""

from typing import Dict, FrozenSet, NamedTuple, Tuple

from fanet.core.onnx_graph import (
    BFLOAT16,
    BOOL,
    FLOAT,
    FLOAT4E2M1,
    FLOAT8E4M3FN,
    FLOAT16,
    INT4,
    INT8,
    INT32,
    INT64,
    UINT8,
)

Version = Tuple[int, int]

# Versions checked by default: one per parser generation and the releases devices ship.
KNOWN_VERSIONS = (
    (8, 2), (8, 4), (8, 5), (8, 6), (10, 0), (10, 3), (10, 4), (10, 8), (10, 12), (10, 15),
    (11, 0), (11, 1),
)  # fmt: skip
# The TensorRT releases fanet's rules cover, by major version: the first and last minor
# (TensorRT 9 was never released for these platforms).
RELEASES = {8: (2, 6), 10: (0, 16), 11: (0, 4)}


def is_release(version: Version) -> bool:
    """Whether ``version`` (major, minor[, patch]) is a TensorRT these rules cover."""
    first, last = RELEASES.get(version[0], (1, 0))
    return first <= version[1] <= last


def releases_text() -> str:
    """``8.2-8.6, 10.0-10.16, 11.0-11.4``."""
    return ", ".join(
        "{0}.{1}-{0}.{2}".format(major, *minors) for major, minors in sorted(RELEASES.items())
    )


_F = frozenset
_FLOATS_8 = _F({FLOAT, FLOAT16})
_FLOATS_10 = _F({FLOAT, FLOAT16, BFLOAT16})
_ANY_8 = _F({FLOAT, FLOAT16, INT32, INT8, BOOL})
_ANY_10 = _F({FLOAT, FLOAT16, BFLOAT16, INT32, INT64, BOOL})

# Supported input types ("Supported Types" column) of the ops a FANet graph can hold.
_OPS_8 = {
    "Add": _F({FLOAT, FLOAT16, INT32}),
    "ArgMax": _FLOATS_8,
    "Cast": _ANY_8,
    "Clip": _F({FLOAT, FLOAT16, INT8}),
    "Concat": _ANY_8,
    "Constant": _ANY_8,
    "ConstantOfShape": _F({FLOAT}),
    "Conv": _F({FLOAT, FLOAT16, INT8}),
    "DequantizeLinear": _F({INT8}),
    "Div": _F({FLOAT, FLOAT16, INT32}),
    "Expand": _F({FLOAT, FLOAT16, INT32, BOOL}),
    "Flatten": _F({FLOAT, FLOAT16, INT32, BOOL}),
    "Gather": _F({FLOAT, FLOAT16, INT8, INT32}),
    "Identity": _ANY_8,
    "LeakyRelu": _F({FLOAT, FLOAT16, INT8}),
    "MatMul": _FLOATS_8,
    "Max": _F({FLOAT, FLOAT16, INT32}),
    "MaxPool": _F({FLOAT, FLOAT16, INT8}),
    "Mul": _F({FLOAT, FLOAT16, INT32}),
    "Pow": _FLOATS_8,
    "QuantizeLinear": _FLOATS_8,
    "ReduceL2": _FLOATS_8,
    "ReduceSum": _FLOATS_8,
    "ReduceSumSquare": _FLOATS_8,
    "Relu": _F({FLOAT, FLOAT16, INT8}),
    "Reshape": _ANY_8,
    "Resize": _FLOATS_8,
    "Shape": _ANY_8,
    "Slice": _ANY_8,
    "Sqrt": _FLOATS_8,
    "Squeeze": _ANY_8,
    "Sub": _F({FLOAT, FLOAT16, INT32}),
    "TopK": _FLOATS_8,
    "Transpose": _ANY_8,
    "Unsqueeze": _ANY_8,
}
_OPS_86 = dict(_OPS_8, ArgMax=_F({FLOAT, FLOAT16, INT32}), TopK=_F({FLOAT, FLOAT16, INT32}))
_NUMERIC_10 = _F({FLOAT, FLOAT16, BFLOAT16, INT32, INT64})
_OPS_10 = {op: _ANY_10 for op in _OPS_8}
_OPS_10.update(
    {
        op: _NUMERIC_10
        for op in ("Add", "ArgMax", "Div", "Max", "Mul", "Sub", "Relu", "TopK", "ReduceL2")
    }
)
_OPS_10.update(
    {
        op: _FLOATS_10
        for op in ("Clip", "Conv", "LeakyRelu", "MatMul", "MaxPool", "Pow", "Resize", "Sqrt")
    }
)
_OPS_10.update(
    ReduceSum=_NUMERIC_10,
    ReduceSumSquare=_NUMERIC_10,
    QuantizeLinear=_FLOATS_10,
    ConstantOfShape=_F({FLOAT}),
    Expand=_ANY_10,
    DequantizeLinear=_F({INT8, FLOAT8E4M3FN, INT4}),
)
_OPS_1015 = dict(_OPS_10, DequantizeLinear=_F({INT8, FLOAT8E4M3FN, INT4, FLOAT4E2M1}))

RESIZE_MODES = _F({"nearest", "linear"})
RESIZE_COORDINATES = _F(
    {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
)
RESIZE_NEAREST = _F({"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"})


class Generation(NamedTuple):
    """The parser rules shared by a range of TensorRT versions."""

    first: Version
    min_opset: int
    max_opset: int
    ops: Dict[str, FrozenSet[int]]
    ops_source: str
    importer_source: str
    nvinfer_source: str
    zero_point_required: bool  # Q/DQ must have their 3rd input
    dequantize_from_quantize: bool  # DQ data must be a QuantizeLinear output (no INT8 weights)
    casts_int64: bool  # INT64 is cast down to INT32, DOUBLE to FP32
    clip_bounds_constant: bool
    io_types: FrozenSet[int]


GENERATIONS = (
    Generation(
        (8, 2), 7, 13, _OPS_8, "ops-8.2", "importer-8.2", "nvinfer-8.2",
        True, True, True, True, _F({FLOAT, FLOAT16, INT32, INT8, BOOL, INT64}),
    ),
    Generation(
        (8, 4), 7, 17, _OPS_86, "ops-8.6", "importer-8.6", "nvinfer-8.2",
        True, True, True, True, _F({FLOAT, FLOAT16, INT32, INT8, BOOL, INT64, UINT8}),
    ),
    Generation(
        (10, 0), 9, 20, _OPS_10, "ops-10.0", "importer-10.0", "nvinfer-10.0",
        False, False, False, False, _F({FLOAT, FLOAT16, BFLOAT16, INT32, INT64, INT8, BOOL, UINT8}),
    ),
    Generation(
        (10, 15), 9, 24, _OPS_1015, "ops-10.15", "importer-10.0", "nvinfer-11.1",
        False, False, False, False, _F({FLOAT, FLOAT16, BFLOAT16, INT32, INT64, INT8, BOOL, UINT8}),
    ),
)  # fmt: skip


def generation(version: Version) -> Generation:
    """The rules in force for TensorRT ``version`` (8.2 or newer)."""
    if version < GENERATIONS[0].first:
        raise ValueError("TensorRT {}.{} is older than 8.2".format(*version))
    return [g for g in GENERATIONS if g.first <= version][-1]


def serves(version: Version, opset: int) -> bool:
    """Whether TensorRT ``version``'s parser reads ONNX ``opset``."""
    rules = generation(version)
    return rules.min_opset <= opset <= rules.max_opset


def versions_for_opset(opset: int) -> Tuple[Version, ...]:
    """The known TensorRT versions whose parser reads ``opset``."""
    return tuple(version for version in KNOWN_VERSIONS if serves(version, opset))
