"""Keep the fast attention in FP32 in weakly typed TensorRT builds (8.x-10.x; Python 3.6).

With ``BuilderFlag.FP16`` TensorRT may run any layer in FP16 unless it is pinned. The ONNX
parser names each layer after the node it imports (``ImporterContext::registerLayer``);
a node imported as several layers (ReduceL2 -> x*x, ReduceSum, Sqrt) gives the later ones
the node's name plus ``_<counter>``, and Q/DQ layers get ``_quantize_scale_node`` /
``_dequantize_scale_node`` appended. :func:`pin_fp32` maps layers back to nodes that way,
pins those of the attention islands with ``layer.precision`` and ``set_output_type``, and
also pins unnamed helper layers that sit wholly inside an island (reads only from pinned
layers), so no FP16 shuffle splits an island. ``OBEY_PRECISION_CONSTRAINTS`` (set by the
build plan) makes TensorRT honour the pins.
"""

import re
from typing import Iterable, List, Optional, Set

import tensorrt as trt

_SUFFIX = re.compile(r"^(.*?)(?:_\d+|_quantize_scale_node|_dequantize_scale_node)$")
_SKIPPED_TYPES = ("CONSTANT", "SHAPE", "QUANTIZE", "DEQUANTIZE")


def node_of_layer(layer_name: str, node_names: Set[str]) -> Optional[str]:
    """The ONNX node a parser-named layer came from, or None (an unnamed helper layer)."""
    name = layer_name
    while True:
        if name in node_names:
            return name
        match = _SUFFIX.match(name)
        if not match or not match.group(1):
            return None
        name = match.group(1)


def _layers(network: "trt.INetworkDefinition") -> List["trt.ILayer"]:
    return [network.get_layer(index) for index in range(network.num_layers)]


def _is_float(tensor: "trt.ITensor") -> bool:
    return tensor is not None and tensor.dtype in (trt.float32, trt.float16)


def _pinnable(layer: "trt.ILayer") -> bool:
    if layer.type.name in _SKIPPED_TYPES:
        return False
    outputs = [layer.get_output(i) for i in range(layer.num_outputs)]
    return bool(outputs) and all(_is_float(tensor) for tensor in outputs)


def _inputs(layer: "trt.ILayer") -> List[str]:
    tensors = [layer.get_input(i) for i in range(layer.num_inputs)]
    return [tensor.name for tensor in tensors if tensor is not None]


def pin_fp32(network: "trt.INetworkDefinition", island_nodes: Iterable[str]) -> List[str]:
    """Pin the layers of ``island_nodes`` (and helpers inside them) to FP32; their names."""
    islands = set(island_nodes)
    layers = [layer for layer in _layers(network) if _pinnable(layer)]
    pinned = [layer for layer in layers if node_of_layer(layer.name, islands) is not None]
    produced = {layer.get_output(i).name for layer in pinned for i in range(layer.num_outputs)}
    named = {layer.name for layer in pinned}
    for layer in layers:
        if layer.name in named or node_of_layer(layer.name, islands) is not None:
            continue
        inputs = _inputs(layer)
        if inputs and all(name in produced for name in inputs) and _unnamed(layer.name):
            pinned.append(layer)
            produced.update(layer.get_output(i).name for i in range(layer.num_outputs))
    for layer in pinned:
        layer.precision = trt.float32
        for index in range(layer.num_outputs):
            layer.set_output_type(index, trt.float32)
    return [layer.name for layer in pinned]


def _unnamed(name: str) -> bool:
    """TensorRT's default layer names: ``(Unnamed Layer* 12) [Shuffle]``."""
    return name.startswith("(Unnamed Layer")
