"""FP16-typed ONNX for strongly typed TensorRT (11.x), with FP32 islands (host side).

The released network never divides k^T v by n = H*W, so the attention products and
``latlayer3``'s input grow with the input area and overflow FP16 (max 65,504) on large
inputs. :func:`convert_to_fp16` types every float tensor FP16 except in nodes selected
by ``keep_fp32`` and inserts the Casts between the two; :func:`attention_nodes` selects
each fast attention module's normalisation, products, reshapes and ``latlayer3`` by the
graph's structure (``fanet.core.attention_islands``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fanet.core.attention_islands import IslandError, attention_islands
from fanet.core.sidecar import INPUT_NAME
from fanet.export.errors import ExportError
from fanet.export.onnx_export import replace_nodes_by_initializers

FP16_MAX = float(np.finfo(np.float16).max)
# Inputs that keep their own type whatever the node's precision (Resize's roi and scales).
_FIXED_INPUTS = {"Resize": {1, 2}}
_TYPE_AGNOSTIC_OPS = {"Shape"}


def constant_names(graph: onnx.GraphProto) -> set[str]:
    """Initializers and ``Constant`` node outputs: the tensors fixed at build time."""
    names = {tensor.name for tensor in graph.initializer}
    return names | {out for node in graph.node if node.op_type == "Constant" for out in node.output}


def attention_nodes(model: onnx.ModelProto) -> Callable[[onnx.NodeProto], bool]:
    """Predicate selecting the fast-attention nodes that must stay FP32 (by structure)."""
    try:
        names = set(attention_islands(model.graph.node, constant_names(model.graph)))
    except IslandError as exc:
        raise ExportError(str(exc)) from None
    return lambda node: node.name in names


def _constants_to_initializers(graph: onnx.GraphProto) -> None:
    def tensor_value(node: onnx.NodeProto, _: dict) -> onnx.TensorProto | None:
        is_tensor = node.op_type == "Constant" and node.attribute
        return node.attribute[0].t if is_tensor and node.attribute[0].name == "value" else None

    replace_nodes_by_initializers(graph, tensor_value)


def _float_tensor_names(model: onnx.ModelProto) -> set[str]:
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    typed = list(graph.value_info) + list(graph.input) + list(graph.output)
    names = {v.name for v in typed if v.type.tensor_type.elem_type == TensorProto.FLOAT}
    names |= {t.name for t in graph.initializer if t.data_type == TensorProto.FLOAT}
    return names


def convert_to_fp16(
    model: onnx.ModelProto,
    keep_fp32: Callable[[onnx.NodeProto], bool] = lambda node: False,
    fp16_io: bool = False,
) -> onnx.ModelProto:
    """A copy of ``model`` with float tensors in FP16 except in ``keep_fp32`` nodes.

    The image input and the first output stay FP32 unless ``fp16_io``; any other input or
    output (a temporal graph's state, a sum over frames) stays FP32.
    """
    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    graph = converted.graph
    _constants_to_initializers(graph)
    float_names = _float_tensor_names(converted)
    initializers = {t.name: t for t in graph.initializer}
    fp16_io_names = {INPUT_NAME, graph.output[0].name} if fp16_io else set()

    def io_type(name: str) -> int:
        return TensorProto.FLOAT16 if name in fp16_io_names else TensorProto.FLOAT

    dtype: dict[str, int] = {name: TensorProto.FLOAT for name in float_names}
    for graph_input in graph.input:
        if graph_input.name in float_names:
            graph_input.type.tensor_type.elem_type = io_type(graph_input.name)
            dtype[graph_input.name] = io_type(graph_input.name)
    casts: dict[tuple[str, int], str] = {}
    nodes: list[onnx.NodeProto] = []

    def as_type(name: str, wanted: int) -> str:
        key = (name, wanted)
        if key not in casts:
            suffix = "fp16" if wanted == TensorProto.FLOAT16 else "fp32"
            casts[key] = f"{name}_{suffix}"
            if name in initializers and wanted == TensorProto.FLOAT16:
                values = numpy_helper.to_array(initializers[name])
                clipped = np.clip(values, -FP16_MAX, FP16_MAX).astype(np.float16)
                graph.initializer.append(numpy_helper.from_array(clipped, casts[key]))
            else:
                nodes.append(
                    helper.make_node(
                        "Cast", [name], [casts[key]], to=wanted, name=f"{casts[key]}/Cast"
                    )
                )
        return casts[key]

    for node in list(graph.node):
        wanted = TensorProto.FLOAT if keep_fp32(node) else TensorProto.FLOAT16
        fixed = _FIXED_INPUTS.get(node.op_type, set())
        if node.op_type not in _TYPE_AGNOSTIC_OPS:
            for index, name in enumerate(node.input):
                if name in float_names and index not in fixed and dtype[name] != wanted:
                    node.input[index] = as_type(name, wanted)
        if node.op_type == "Cast" and node.attribute[0].i == TensorProto.FLOAT:
            node.attribute[0].i = wanted
        for name in node.output:
            if name in float_names:
                dtype[name] = wanted
        nodes.append(node)
    for graph_output in graph.output:
        name = graph_output.name
        output_type = io_type(name)
        if name in float_names and dtype[name] != output_type:
            raw = f"{name}_raw"
            for node in nodes:
                node.output[:] = [raw if out == name else out for out in node.output]
            cast = helper.make_node("Cast", [raw], [name], to=output_type, name=f"{name}/Cast")
            nodes.append(cast)
        if name in float_names:
            graph_output.type.tensor_type.elem_type = output_type
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    _drop_unused_initializers(graph)
    try:
        onnx.checker.check_model(converted, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"FP16 conversion produced an invalid graph: {exc}") from None
    return converted


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
