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
    fp16_io_names = {INPUT_NAME, graph.output[0].name} if fp16_io else set()
    retyped = _Retyping(graph, _float_tensor_names(converted), fp16_io_names)
    for node in list(graph.node):
        retyped.add(node, TensorProto.FLOAT if keep_fp32(node) else TensorProto.FLOAT16)
    retyped.finish_outputs()
    del graph.node[:]
    graph.node.extend(retyped.nodes)
    del graph.value_info[:]
    _drop_unused_initializers(graph)
    try:
        onnx.checker.check_model(converted, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"FP16 conversion produced an invalid graph: {exc}") from None
    return converted


class _Retyping:
    """The nodes of ``graph`` in order, each reading its float inputs in its own type
    (through a Cast, or an FP16 copy of an initializer, made once per tensor and type)."""

    def __init__(self, graph: onnx.GraphProto, float_names: set[str], fp16_io: set[str]):
        self.graph = graph
        self.float_names = float_names
        self.fp16_io = fp16_io
        self.initializers = {t.name: t for t in graph.initializer}
        self.dtype: dict[str, int] = {name: TensorProto.FLOAT for name in float_names}
        self.casts: dict[tuple[str, int], str] = {}
        self.nodes: list[onnx.NodeProto] = []
        for graph_input in graph.input:
            if graph_input.name in float_names:
                graph_input.type.tensor_type.elem_type = self.io_type(graph_input.name)
                self.dtype[graph_input.name] = self.io_type(graph_input.name)

    def io_type(self, name: str) -> int:
        return TensorProto.FLOAT16 if name in self.fp16_io else TensorProto.FLOAT

    def as_type(self, name: str, wanted: int) -> str:
        """``name`` in type ``wanted``: its cast, made the first time it is asked for."""
        key = (name, wanted)
        if key in self.casts:
            return self.casts[key]
        suffix = "fp16" if wanted == TensorProto.FLOAT16 else "fp32"
        self.casts[key] = cast = f"{name}_{suffix}"
        if name in self.initializers and wanted == TensorProto.FLOAT16:
            values = numpy_helper.to_array(self.initializers[name])
            clipped = np.clip(values, -FP16_MAX, FP16_MAX).astype(np.float16)
            self.graph.initializer.append(numpy_helper.from_array(clipped, cast))
        else:
            self.nodes.append(
                helper.make_node("Cast", [name], [cast], to=wanted, name=f"{cast}/Cast")
            )
        return cast

    def add(self, node: onnx.NodeProto, wanted: int) -> None:
        """``node`` computing in ``wanted`` (FP16 or FP32)."""
        fixed = _FIXED_INPUTS.get(node.op_type, set())
        if node.op_type not in _TYPE_AGNOSTIC_OPS:
            for index, name in enumerate(node.input):
                if name in self.float_names and index not in fixed and self.dtype[name] != wanted:
                    node.input[index] = self.as_type(name, wanted)
        if node.op_type == "Cast" and node.attribute[0].i == TensorProto.FLOAT:
            node.attribute[0].i = wanted
        for name in node.output:
            if name in self.float_names:
                self.dtype[name] = wanted
        self.nodes.append(node)

    def finish_outputs(self) -> None:
        """Each graph output in its I/O type, cast at the end where it is computed in another."""
        for graph_output in self.graph.output:
            name = graph_output.name
            if name not in self.float_names:
                continue
            output_type = self.io_type(name)
            if self.dtype[name] != output_type:
                raw = f"{name}_raw"
                for node in self.nodes:
                    node.output[:] = [raw if out == name else out for out in node.output]
                cast = helper.make_node("Cast", [raw], [name], to=output_type, name=f"{name}/Cast")
                self.nodes.append(cast)
            graph_output.type.tensor_type.elem_type = output_type


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
