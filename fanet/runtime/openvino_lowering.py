"""One rewrite of an INT8 graph before OpenVINO compiles it (Python 3.6 syntax).

OpenVINO's CPU plugin (2026.4, with and without VNNI) computes a Convolution whose input
is a quantized Concat differently from the Q/DQ graph it reads: FANet's classifier reads
the decoder's concatenation that way, and its labels lose 0.7 % of their agreement with
FP32 there. The same Convolution run once per concatenated part, on that part's channels
and kernel slice, and summed, is the same arithmetic (the parts share the Concat's scale),
is computed exactly, and costs the same. Graphs without such a Convolution, and chains
that are not the ONNX frontend's Q/DQ (FakeQuantize, Convert, Convert, Subtract,
Multiply), are left as they are.
"""

import logging
from typing import Any, List, Optional

import numpy as np

logger = logging.getLogger(__name__)

DEQUANTIZED = ("FakeQuantize", "Convert", "Convert", "Subtract", "Multiply")
CHANNEL_AXES = (1, -3)  # NCHW


def split_concatenated_convolutions(model: Any, opset: Any) -> int:
    """Rewrite each Convolution of ``model`` that reads a quantized channel Concat into one
    Convolution per part, summed (``opset``: OpenVINO's ``opset13``); returns how many."""
    count = 0
    for convolution in model.get_ordered_ops():
        if convolution.get_type_name() != "Convolution":
            continue
        data = _dequantized(convolution.input_value(0))
        weights = _dequantized(convolution.input_value(1))
        if data is None or weights is None:
            continue
        concat = data[0].input_value(0).get_node()
        kernel = weights[0].input_value(0).get_node()
        if concat.get_type_name() != "Concat" or kernel.get_type_name() != "Constant":
            continue
        if concat.get_attributes()["axis"] not in CHANNEL_AXES or not _static_channels(concat):
            continue
        _replace(convolution, _partial_sums(convolution, concat, kernel, data, weights, opset))
        count += 1
    if count:
        model.validate_nodes_and_infer_types()
        logger.debug("openvino: %d convolution(s) over a quantized concat split by part", count)
    return count


def _static_channels(concat: Any) -> bool:
    """Whether every part of ``concat`` has a known channel count (dynamic exports vary
    height and width only, but a graph may say otherwise)."""
    shapes = [part.get_source_output().get_partial_shape() for part in concat.inputs()]
    return all(shape.rank.is_static and shape[1].is_static for shape in shapes)


def _dequantized(output: Any) -> Optional[List[Any]]:
    """The Q/DQ nodes ending at ``output``, first to last, each fed by the one before
    through input 0; None where ``output`` is not made so."""
    nodes = []
    node = output.get_node()
    for kind in reversed(DEQUANTIZED):
        if node.get_type_name() != kind:
            return None
        nodes.append(node)
        node = node.input_value(0).get_node()
    return nodes[::-1]


def _partial_sums(
    convolution: Any, concat: Any, kernel: Any, data: List[Any], weights: List[Any], opset: Any
) -> Any:
    """The sum over the Concat's parts of the Convolution of each part (its Q/DQ replayed)
    with its input channels' slice of the kernel (its Q/DQ replayed)."""
    values = kernel.get_data()
    attributes = convolution.get_attributes()
    total, start = None, 0
    for part in concat.inputs():
        branch = part.get_source_output()
        channels = branch.get_partial_shape()[1].get_length()
        piece = opset.constant(np.ascontiguousarray(values[:, start : start + channels]))
        start += channels
        partial = opset.convolution(
            _replayed(data, branch, opset),
            _replayed(weights, piece.output(0), opset),
            attributes["strides"],
            attributes["pads_begin"],
            attributes["pads_end"],
            attributes["dilations"],
            attributes["auto_pad"],
        ).output(0)
        total = partial if total is None else opset.add(total, partial).output(0)
    return total


def _replayed(chain: List[Any], source: Any, opset: Any) -> Any:
    """``chain`` (``DEQUANTIZED``) applied to ``source``, with its own constants."""
    output = source
    for node in chain:
        rest = [node.input_value(index) for index in range(1, node.get_input_size())]
        kind = node.get_type_name()
        if kind == "FakeQuantize":
            made = opset.fake_quantize(output, *rest, node.get_attributes()["levels"])
        elif kind == "Convert":
            made = opset.convert(output, node.get_output_element_type(0))
        elif kind == "Subtract":
            made = opset.subtract(output, rest[0])
        else:
            made = opset.multiply(output, rest[0])
        output = made.output(0)
    return output


def _replace(node: Any, output: Any) -> None:
    """Feed ``node``'s readers from ``output`` instead."""
    for reader in list(node.output(0).get_target_inputs()):
        reader.replace_source_output(output)
