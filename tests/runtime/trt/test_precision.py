"""Which layers a weakly typed FP16/INT8 build pins to FP32, per TensorRT version.

The TensorRT stand-in's ONNX parser names layers as TensorRT's parser does (node name,
then ``_<counter>`` for a node's further layers, ``_quantize_scale_node`` for Q/DQ,
unnamed helper shuffles), so the test sees the layer names a real build would.
"""

import pytest

from fanet.core.attention_islands import attention_islands
from fanet.core.onnx_graph import read_model
from fanet.runtime.trt.versions import build_plan, parse_version

from support.artefacts import fp32_graph, host_artefact
from support.cuda_standins import SimulatedCuda
from support.tensorrt_standin import install_standin

ALL = ("fp32", "fp16", "int8", "int8_fp16")


@pytest.fixture
def parsed(monkeypatch):
    """(stand-in network of a FANet-18 export, its graph, the precision module) on 10.3."""
    trt = install_standin(monkeypatch, "10.3.0", SimulatedCuda())
    from fanet.runtime.trt import precision

    path = fp32_graph(host_artefact("export_set"))
    network = trt.Builder(None).create_network(0)
    assert trt.OnnxParser(network, None).parse(path.read_bytes())
    return network, read_model(str(path)), precision


def test_the_attention_layers_and_only_they_are_pinned(parsed):
    network, graph, precision = parsed
    islands = attention_islands(graph.nodes, graph.constants())
    pinned = set(precision.pin_fp32(network, islands))
    layers = [network.get_layer(index) for index in range(network.num_layers)]
    owners = {layer.name: precision.node_of_layer(layer.name, set(islands)) for layer in layers}
    expected = {name for name, owner in owners.items() if owner is not None}
    helpers = pinned - expected
    assert expected <= pinned
    assert len(helpers) == 8 and all(name.startswith("(Unnamed Layer") for name in helpers)
    kinds = {}
    for layer in layers:
        output_types = layer._output_types
        if layer.name in pinned:
            assert layer.precision.name == "FLOAT" and output_types == {0: layer.precision}
            kinds[layer.type.name] = kinds.get(layer.type.name, 0) + 1
        else:
            assert layer.precision is None and not output_types
    # 8 ReduceL2 as 3 layers each, 8 Div, 8 MatMul (+ their shuffles), 4 latlayer3 Conv.
    assert kinds["REDUCE"] == 8 and kinds["UNARY"] == 8 and kinds["MATRIX_MULTIPLY"] == 8
    assert kinds["CONVOLUTION"] == 4
    op_types = {node.name: node.op_type for node in graph.nodes}
    divisions = [name for name in pinned if op_types.get(owners[name]) == "Div"]
    assert len(divisions) == 8
    print("pinned layers by type:", dict(sorted(kinds.items())))


def test_layer_names_map_back_to_their_nodes(parsed):
    node_of_layer = parsed[2].node_of_layer
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
