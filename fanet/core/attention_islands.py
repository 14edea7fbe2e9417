"""Which nodes of a FANet graph must compute in FP32: found by structure, not by name.

The released network never divides k^T v by n = H*W, so everything between the q/k/v
projections and ``latlayer3`` grows with the input area and overflows FP16 (65,504): the
L2 normalisation (TensorRT imports ReduceL2 as x*x -> ReduceSum -> Sqrt, whose square
overflows once |x| > 256), the division, both MatMuls, the reshapes between them and
``latlayer3``'s convolution, which reads q (k^T v).

An island starts at every MatMul whose two inputs are computed (not weights). From there
it follows data inputs back through normalisation, layout and summing ops until a
projection's output (a Conv or its activation), and the output forward through layout ops
to the first Conv, which it includes. A temporal graph's state (the contexts of earlier
frames, summed into each attention: paper Sec. III-D) joins the islands: every node the
state inputs reach before a MatMul or Conv. State inputs are the graph inputs that no Conv
reads (the image is read by the first Conv, directly or through Casts and Q/DQ). Works on
``onnx.NodeProto`` and on ``fanet.core.onnx_graph.Node`` alike (Python 3.6 compatible).
"""

from typing import Any, Dict, Iterable, List, Set

from fanet.core.errors import FanetError

# Ops an island may pass through on its way back from a MatMul, with the inputs that carry
# data (the others are shapes or bounds).
_BACKWARD = {
    "MatMul": (0, 1),
    "Transpose": (0,),
    "Reshape": (0,),
    "Flatten": (0,),
    "Squeeze": (0,),
    "Unsqueeze": (0,),
    "Identity": (0,),
    "Cast": (0,),
    "Div": (0, 1),
    "Mul": (0, 1),
    "Expand": (0,),
    "Clip": (0,),
    "Max": (0, 1),
    "Sqrt": (0,),
    "Pow": (0,),
    "ReduceL2": (0,),
    "ReduceSumSquare": (0,),
    "ReduceSum": (0,),
    "Add": (0, 1),  # a temporal context: this frame's k^T v plus the earlier frames'
}
_FORWARD_LAYOUT = {"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Cast"}
# What may stand between the image input and the first Conv.
_TO_CONV = ("Cast", "QuantizeLinear", "DequantizeLinear")
# The ops whose FP16 inputs would overflow: none of them may read FP16 in a FANet graph.
OVERFLOW_PRONE_OPS = ("ReduceL2", "ReduceSumSquare", "Sqrt", "Div", "MatMul")


class IslandError(FanetError):
    """The graph has no fast attention to protect."""


def attention_islands(nodes: Iterable[Any], constants: Iterable[str]) -> List[str]:
    """Names of the nodes that must run in FP32, in graph order.

    ``constants`` are the names of initializers and constant outputs (weights, shapes).
    """
    nodes = list(nodes)
    fixed = set(constants)
    producer: Dict[str, Any] = {}
    readers: Dict[str, List[Any]] = {}
    for node in nodes:
        for name in node.output:
            producer[name] = node
        for name in node.input:
            readers.setdefault(name, []).append(node)
    seeds = [
        node
        for node in nodes
        if node.op_type == "MatMul" and not any(name in fixed for name in node.input[:2])
    ]
    if not seeds:
        raise IslandError("no attention MatMul found: is this a FANet graph?")
    island: Set[str] = set()
    for seed in seeds:
        island |= _walk_back(seed, producer, fixed)
        _walk_forward(seed, readers, island)
    island |= _state_nodes(_state_inputs(nodes, producer, readers, fixed), readers)
    return [node.name for node in nodes if node.name in island]


def _state_inputs(
    nodes: List[Any], producer: Dict[str, Any], readers: Dict[str, List[Any]], fixed: Set[str]
) -> List[str]:
    """Graph inputs (read, never produced, not constant) that no Conv reads, directly or
    through Casts and Q/DQ pairs: the state of a temporal graph."""
    inputs = {name for node in nodes for name in node.input if name} - set(producer) - fixed

    def read_by_conv(name: str) -> bool:
        return any(
            reader.op_type == "Conv"
            or (reader.op_type in _TO_CONV and read_by_conv(reader.output[0]))
            for reader in readers.get(name, [])
        )

    return sorted(name for name in inputs if not read_by_conv(name))


def _state_nodes(state_inputs: List[str], readers: Dict[str, List[Any]]) -> Set[str]:
    """Every node the state inputs reach before a MatMul or Conv (those are islands'
    seeds and ends already)."""
    reached: Set[str] = set()
    pending = list(state_inputs)
    while pending:
        for reader in readers.get(pending.pop(), []):
            if reader.name in reached or reader.op_type in ("MatMul", "Conv"):
                continue
            reached.add(reader.name)
            pending.extend(reader.output)
    return reached


def _walk_back(seed: Any, producer: Dict[str, Any], fixed: Set[str]) -> Set[str]:
    visited: Set[str] = set()
    pending = [seed]
    while pending:
        node = pending.pop()
        if node.name in visited:
            continue
        visited.add(node.name)
        for index in _BACKWARD[node.op_type]:
            if index >= len(node.input) or node.input[index] in fixed:
                continue
            source = producer.get(node.input[index])
            if source is not None and source.op_type in _BACKWARD:
                pending.append(source)
    return visited


def _walk_forward(seed: Any, readers: Dict[str, List[Any]], island: Set[str]) -> None:
    pending = [seed]
    while pending:
        node = pending.pop()
        for reader in readers.get(node.output[0], []):
            if reader.op_type in _FORWARD_LAYOUT or reader.op_type == "MatMul":
                if reader.name not in island:
                    island.add(reader.name)
                    pending.append(reader)
            elif reader.op_type == "Conv":
                island.add(reader.name)
