"""The INT8 forms of one FP32 graph and one set of activation ranges, with any set of
quantization groups left in float (host side).

A group is one node whose inputs a form quantizes, named as in the ONNX: a Conv (its data
and weights) or, in the forms for TensorRT, a residual Add (its Conv-fed input). A group
left in float has no Q/DQ pair in any form, which every TensorRT from 8.2 to 11 builds in
higher precision and ONNX Runtime runs as a float Conv.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import onnx

from fanet.calibration.cache import Ranges
from fanet.export.int8 import quantize_inferred
from fanet.export.qdq_tensorrt import fp16_typed, quantize_for_tensorrt, quantized_inputs

TENSORRT_FORMS = ("int8", "int8_fp16")
CPU_FORM = "int8_onnxruntime"


@dataclass(frozen=True)
class Group:
    """A quantization group: the node, its operator and the forms that quantize it."""

    node: str
    op_type: str
    forms: tuple[str, ...]


@dataclass(frozen=True)
class Int8Forms:
    """Builds ``variants`` (of ``int8``, ``int8_fp16``, ``int8_onnxruntime``) of ``fp32``
    from ``ranges``; ``inferred`` is ``fp32`` as ONNX Runtime's quantizer reads it."""

    fp32: onnx.ModelProto
    inferred: onnx.ModelProto
    ranges: Ranges
    method: str
    variants: tuple[str, ...]
    opset: int

    def build(self, variant: str, float_groups: Iterable[str] = (), check: bool = True):
        """``variant`` with ``float_groups`` in float (``check``: validate the graph)."""
        floats = frozenset(float_groups)
        if variant == CPU_FORM:
            return quantize_inferred(self.inferred, self.ranges, self.method, floats)
        for_tensorrt = quantize_for_tensorrt(self.fp32, self.ranges, floats, check)
        return fp16_typed(for_tensorrt, self.opset) if variant == "int8_fp16" else for_tensorrt

    def groups(self) -> list[Group]:
        """Every group of every form, in graph order."""
        return quantization_groups(self.fp32, self.variants)


def quantization_groups(fp32: onnx.ModelProto, variants: tuple[str, ...]) -> list[Group]:
    """The groups of ``fp32`` that the INT8 ``variants`` quantize, in graph order."""
    for_tensorrt = quantized_inputs(fp32.graph)
    groups = []
    for node in fp32.graph.node:
        forms = [v for v in variants if v in TENSORRT_FORMS and node.name in for_tensorrt]
        if node.op_type == "Conv" and CPU_FORM in variants:
            forms.append(CPU_FORM)
        if forms:
            groups.append(Group(node.name, node.op_type, tuple(forms)))
    return groups


def fake_quant(variant: str) -> bool:
    """Whether ``variant`` is judged with its Q/DQ pairs computed as written (TensorRT's)."""
    return variant in TENSORRT_FORMS
