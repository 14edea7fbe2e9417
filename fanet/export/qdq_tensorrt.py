"""INT8 Q/DQ placed for TensorRT 8.2-11 (host side).

What TensorRT's parser and NVIDIA's placement guidance ask for, and what ONNX Runtime's
quantizer does not give by default (``fanet.conformance.rules`` has the sources):

- Conv biases stay float initializers (TensorRT dequantizes INT8 only; the 8.x Conv
  importer wants the bias as an initializer).
- Weights are FP32 initializers -> QuantizeLinear -> DequantizeLinear, per output channel
  (axis 0): the form every TensorRT from 8.2 builds (8.x cannot dequantize an INT8
  initializer directly).
- Activations: symmetric per-tensor INT8, zero point 0, one pair per tensor at the input of
  each quantized Conv, and at the residual input of each Add fed by a Conv, so TensorRT
  fuses Conv+Add. No pair between a Conv and its activation; none on the classifier's
  output (logits leave the graph in float). MaxPool and Concat sit in front of a quantized
  Conv: TensorRT moves the pair across them (they commute with quantization).
- The fast attention (normalisation, division, both MatMuls, ``latlayer3``) is not
  quantized: its sums have no range that holds across inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from fanet.calibration.cache import Ranges
from fanet.core.attention_islands import attention_islands
from fanet.export.errors import ExportError
from fanet.export.fp16 import constant_names

INT8_MAX = 127.0
_ZERO_POINT = "qdq_zero_point_int8"
# The smallest scale each consumer takes as it is. In FP32 graphs: one whose product with
# another (TensorRT's accumulator scale, input x weight) is still a normal float32. In
# FP16-typed graphs: FP16's smallest normal number; below it a scale rounds to zero or to
# a subnormal with few significant bits. A channel whose values all lie below half a step
# quantizes to zero, which dequantizes to exactly zero.
MIN_SCALE = 2.0**-62
MIN_SCALE_FP16 = float(np.finfo(np.float16).tiny)  # 2**-14


def symmetric_scale(amax: np.ndarray | float) -> np.ndarray:
    """INT8 scales for absolute maxima ``amax``: positive and at least ``MIN_SCALE``
    (all-zero channels get 1/127)."""
    amax = np.asarray(amax, dtype=np.float32)
    scale = np.where(amax > 0, amax / INT8_MAX, 1.0 / INT8_MAX)
    return np.maximum(scale, MIN_SCALE).astype(np.float32)


class _Inserter:
    def __init__(self, model: onnx.ModelProto, ranges: Ranges) -> None:
        self.model = model
        self.graph = model.graph
        self.ranges = ranges
        self.initializers = {t.name: t for t in self.graph.initializer}
        self.dequantized: dict[str, str] = {}
        self.new_nodes: list[onnx.NodeProto] = []
        self.graph.initializer.append(numpy_helper.from_array(np.array(0, np.int8), _ZERO_POINT))

    def activation(self, name: str) -> str:
        """The dequantized twin of activation ``name`` (one pair per tensor)."""
        if name not in self.dequantized:
            if name not in self.ranges:
                raise ExportError(f"no calibration range for {name}: recalibrate")
            low, high = self.ranges[name]
            scale = symmetric_scale(max(abs(low), abs(high)))
            self.dequantized[name] = self._pair(name, scale, axis=None)
        return self.dequantized[name]

    def weights(self, name: str) -> str:
        """FP32 weights ``name`` -> QuantizeLinear -> DequantizeLinear along axis 0."""
        values = numpy_helper.to_array(self.initializers[name])
        amax = np.abs(values.reshape(values.shape[0], -1)).max(axis=1)
        return self._pair(name, symmetric_scale(amax), axis=0)

    def _pair(self, name: str, scale: np.ndarray, axis: int | None) -> str:
        scale_name = f"{name}_scale"
        self.graph.initializer.append(numpy_helper.from_array(scale, scale_name))
        zero_point = _ZERO_POINT
        if scale.ndim:
            zero_point = f"{name}_zero_point"
            self.graph.initializer.append(
                numpy_helper.from_array(np.zeros(scale.shape, np.int8), zero_point)
            )
        extra: dict[str, Any] = {} if axis is None else {"axis": axis}
        quantized, dequantized = f"{name}_quantized", f"{name}_dequantized"
        self.new_nodes += [
            helper.make_node(
                "QuantizeLinear",
                [name, scale_name, zero_point],
                [quantized],
                name=f"{name}_QuantizeLinear",
                **extra,
            ),
            helper.make_node(
                "DequantizeLinear",
                [quantized, scale_name, zero_point],
                [dequantized],
                name=f"{name}_DequantizeLinear",
                **extra,
            ),
        ]
        return dequantized


def quantized_inputs(graph: onnx.GraphProto) -> dict[str, list[int]]:
    """Node name -> the inputs quantized: a Conv's data and weights outside the attention,
    the residual input of a Conv-fed Add."""
    island = set(attention_islands(graph.node, constant_names(graph)))
    producer = {output: node for node in graph.node for output in node.output}
    quantized = {}
    for node in graph.node:
        if node.op_type == "Conv" and node.name not in island:
            quantized[node.name] = [0, 1]
        elif node.op_type == "Add":
            residual = _residual_input(node, producer)
            if residual is not None:
                quantized[node.name] = [residual]
    return quantized


def missing_ranges(model: onnx.ModelProto, ranges: Ranges) -> list[str]:
    """The activations ``quantize_for_tensorrt`` quantizes that ``ranges`` has no range for."""
    nodes = {node.name: node for node in model.graph.node}
    needed = {
        nodes[name].input[index]
        for name, inputs in quantized_inputs(model.graph).items()
        for index in inputs
        if not (nodes[name].op_type == "Conv" and index == 1)  # weights: their own values
    }
    return sorted(name for name in needed if name not in ranges)


def quantize_for_tensorrt(
    model: onnx.ModelProto,
    ranges: Ranges,
    float_groups: frozenset[str] = frozenset(),
    check: bool = True,
) -> onnx.ModelProto:
    """A copy of the FP32 graph ``model`` with Q/DQ pairs from activation ``ranges``,
    except at the nodes named in ``float_groups`` (``check``: validate the result)."""
    quantized = onnx.ModelProto()
    quantized.CopyFrom(model)
    graph = quantized.graph
    inputs = quantized_inputs(graph)
    for name in float_groups:
        inputs.pop(name, None)
    inserter = _Inserter(quantized, ranges)
    nodes = []
    for node in graph.node:
        for index in inputs.get(node.name, []):
            is_weight = node.op_type == "Conv" and index == 1
            quantize = inserter.weights if is_weight else inserter.activation
            node.input[index] = quantize(node.input[index])
        nodes += inserter.new_nodes  # each pair right before its first reader
        inserter.new_nodes = []
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    if not check:
        return quantized
    try:
        onnx.checker.check_model(quantized, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"INT8 Q/DQ insertion produced an invalid graph: {exc}") from None
    return quantized


def _residual_input(node: onnx.NodeProto, producer: dict) -> int | None:
    """The input of a Conv-fed Add that TensorRT fuses as INT8 residual, if any."""
    sources = [producer[name] for name in node.input if name in producer]
    if len(sources) != 2:
        return None
    from_conv = [source.op_type == "Conv" for source in sources]
    if not any(from_conv):
        return None
    return 1 if from_conv[0] else 0


def fp16_typed(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """The Q/DQ graph with FP16 float parts and FP32 attention, for strongly typed builds.

    FP16 Q/DQ scales need opset 19 (ONNX's QuantizeLinear-19 takes FP16); the graph is
    converted to ``max(opset, 19)`` first.
    """
    from onnx import version_converter

    from fanet.export.fp16 import attention_nodes, convert_to_fp16

    target = max(opset, 19)
    converted = version_converter.convert_version(model, target)
    _raise_scales(converted, MIN_SCALE_FP16)
    return convert_to_fp16(converted, attention_nodes(converted))


def _raise_scales(model: onnx.ModelProto, floor: float) -> None:
    """Raise every Q/DQ scale of ``model`` below ``floor`` to it, in place."""
    pairs = ("QuantizeLinear", "DequantizeLinear")
    names = {node.input[1] for node in model.graph.node if node.op_type in pairs}
    for tensor in model.graph.initializer:
        if tensor.name in names:
            values = numpy_helper.to_array(tensor)
            raised = np.maximum(values, floor).astype(values.dtype)
            tensor.CopyFrom(numpy_helper.from_array(raised, tensor.name))
