"""Which layers a weakly typed FP16/INT8 build pins to FP32, per TensorRT version.

A recording stand-in for TensorRT's network is populated from an exported FANet ONNX the
way the ONNX parser names layers (node name, then ``_<counter>`` for a node's further
layers, ``_quantize_scale_node`` for Q/DQ, unnamed helper shuffles), so the test sees
the layer names a real build would.
"""

from types import SimpleNamespace

import pytest

from fanet.core.attention_islands import attention_islands
from fanet.core.onnx_graph import FLOAT, infer_dtypes, read_model
from fanet.export.onnx_export import export_onnx
from fanet.model import random_model
from fanet.runtime.trt.precision import node_of_layer, pin_fp32
from fanet.runtime.trt.versions import build_plan, parse_version

TRT = SimpleNamespace(float32="float32", float16="float16")
ALL = ("fp32", "fp16", "int8", "int8_fp16")


class _Tensor:
    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype


class _Layer:
    def __init__(self, name, kind, inputs, outputs):
        self.name, self.type = name, SimpleNamespace(name=kind)
        self._inputs, self._outputs = inputs, outputs
        self.precision, self.output_types = None, {}

    num_inputs = property(lambda self: len(self._inputs))
    num_outputs = property(lambda self: len(self._outputs))

    def get_input(self, index):
        return self._inputs[index]

    def get_output(self, index):
        return self._outputs[index]

    def set_output_type(self, index, dtype):
        self.output_types[index] = dtype


class _ParsedNetwork:
    """Layers as TensorRT's ONNX parser registers them for ``graph``."""

    def __init__(self, graph):
        self.layers, self.names, self.counter = [], set(), 0
        types = infer_dtypes(graph)
        tensor = {}

        def of(name):
            dtype = TRT.float32 if types.get(name) == FLOAT else "int32"
            return tensor.setdefault(name, _Tensor(name, dtype))

        for node in graph.nodes:
            if node.op_type == "Constant":
                continue
            inputs = [of(n) for n in node.input if n and n not in graph.initializers]
            outputs = [of(n) for n in node.output]
            if node.op_type == "ReduceL2":  # x*x -> ReduceSum -> Sqrt
                square, total = (
                    _Tensor(node.name + "/sq", TRT.float32),
                    _Tensor(node.name + "/sum", TRT.float32),
                )
                self.add(node.name, "ELEMENTWISE", inputs, [square])
                self.add(node.name, "REDUCE", [square], [total])
                self.add(node.name, "UNARY", [total], outputs)
            elif node.op_type == "MatMul":  # a helper shuffle the parser does not name
                moved = _Tensor(node.name + "/moved", TRT.float32)
                self.layers.append(
                    _Layer(
                        "(Unnamed Layer* %d) [Shuffle]" % len(self.layers),
                        "SHUFFLE",
                        inputs[:1],
                        [moved],
                    )
                )
                self.add(node.name, "MATRIX_MULTIPLY", [moved] + inputs[1:], outputs)
            elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                suffix = (
                    "_quantize_scale_node"
                    if node.op_type == "QuantizeLinear"
                    else "_dequantize_scale_node"
                )
                self.add(
                    node.name + suffix, node.op_type.upper().replace("LINEAR", ""), inputs, outputs
                )
            else:
                self.add(
                    node.name,
                    "SHAPE" if node.op_type == "Shape" else node.op_type.upper(),
                    inputs,
                    outputs,
                )

    def add(self, basename, kind, inputs, outputs):
        name = basename  # ImporterContext::generateUniqueName
        while name in self.names:
            name = "%s_%d" % (basename, self.counter)
            self.counter += 1
        self.names.add(name)
        self.layers.append(_Layer(name, kind, inputs, outputs))

    num_layers = property(lambda self: len(self.layers))

    def get_layer(self, index):
        return self.layers[index]


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("pins") / "fanet18_64x128.onnx"
    export_onnx(random_model("fanet18"), str(path), (64, 128), 17)
    return read_model(str(path))


def test_the_attention_layers_and_only_they_are_pinned(graph):
    network = _ParsedNetwork(graph)
    islands = attention_islands(graph.nodes, graph.constants())
    pinned = set(pin_fp32(network, TRT, islands))
    owners = {layer.name: node_of_layer(layer.name, set(islands)) for layer in network.layers}
    expected = {name for name, owner in owners.items() if owner is not None}
    helpers = pinned - expected
    assert expected <= pinned
    assert len(helpers) == 8 and all(name.startswith("(Unnamed Layer") for name in helpers)
    kinds = {}
    for layer in network.layers:
        if layer.name in pinned:
            assert layer.precision == TRT.float32 and layer.output_types == {0: TRT.float32}
            kinds[layer.type.name] = kinds.get(layer.type.name, 0) + 1
        else:
            assert layer.precision is None and not layer.output_types
    # 8 ReduceL2 as 3 layers each, 8 Div, 8 MatMul (+ their shuffles), 4 latlayer3 Conv.
    assert kinds["REDUCE"] == 8 and kinds["UNARY"] == 8 and kinds["MATRIX_MULTIPLY"] == 8
    assert kinds["DIV"] == 8 and kinds["CONV"] == 4 and kinds["SHUFFLE"] == 8
    print("pinned layers by type:", dict(sorted(kinds.items())))


def test_layer_names_map_back_to_their_nodes():
    nodes = {"/net/fam_8/ReduceL2", "/net/fam_8/ReduceL2_1", "w_QuantizeLinear"}
    assert node_of_layer("/net/fam_8/ReduceL2_57", nodes) == "/net/fam_8/ReduceL2"
    assert node_of_layer("/net/fam_8/ReduceL2_1_58", nodes) == "/net/fam_8/ReduceL2_1"
    assert node_of_layer("w_QuantizeLinear_quantize_scale_node", nodes) == "w_QuantizeLinear"
    assert node_of_layer("(Unnamed Layer* 3) [Shuffle]", nodes) is None


@pytest.mark.parametrize(
    "version,precision,available,variant,strongly_typed,pinned",
    [
        ("8.2.1", "fp16", ALL, "fp32", False, True),
        ("8.2.1", "int8", ALL, "int8", False, True),
        ("8.6.1", "fp16", ALL, "fp32", False, True),
        ("10.0.1", "int8", ALL, "int8", False, True),
        ("10.4.0", "fp16", ALL, "fp32", False, True),
        ("10.12.0", "fp16", ALL, "fp16", True, False),
        ("10.12.0", "int8", ALL, "int8_fp16", True, False),
        ("10.12.0", "int8", ("fp32", "int8"), "int8", False, True),
        ("11.0.0", "fp16", ALL, "fp16", True, False),
        ("11.0.0", "int8", ALL, "int8_fp16", True, False),
        ("11.0.0", "int8", ("fp32", "int8"), "int8", True, False),
        ("8.6.1", "fp32", ALL, "fp32", False, False),
    ],
)
def test_each_version_keeps_the_attention_fp32(
    version, precision, available, variant, strongly_typed, pinned
):
    plan = build_plan(parse_version(version), precision, available)
    assert (plan.onnx_variant, plan.strongly_typed, plan.pin_attention_fp32) == (
        variant,
        strongly_typed,
        pinned,
    )
    assert ("OBEY_PRECISION_CONSTRAINTS" in plan.builder_flags) == pinned
    if strongly_typed:
        assert plan.builder_flags == ()
