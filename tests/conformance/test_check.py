"""TensorRT parser rules: one small bad graph per rule, and the versions each rule holds for."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fanet.conformance.check import (
    NUMERICS,
    REJECTED,
    ConformanceError,
    buildable_graph,
    check_graph,
    require_conformance,
)
from fanet.conformance.rules import generation, versions_for_opset
from fanet.core.onnx_graph import parse_model

V82, V86, V100, V110 = (8, 2), (8, 6), (10, 0), (11, 0)
FLOAT = TensorProto.FLOAT


def _graph(nodes, initializers=(), opset=13, inputs=None, outputs=None):
    inputs = inputs or [helper.make_tensor_value_info("x", FLOAT, [1, 4, 8, 8])]
    outputs = outputs or [helper.make_tensor_value_info("y", FLOAT, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return parse_model(model.SerializeToString())


def _init(name, values, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def _rules(graph, version, kind=REJECTED):
    return sorted({f.rule for f in check_graph(graph, version) if f.kind == kind})


def _conv(x="x", w="w", bias=None, name="conv"):
    inputs = [x, w] + ([bias] if bias else [])
    return helper.make_node("Conv", inputs, ["y"], name=name)


WEIGHTS = _init("w", np.ones((4, 4, 1, 1)))


def _qdq(data, scale, zero_point, out, axis=None):
    extra = {} if axis is None else {"axis": axis}
    quantized = out + "_q"
    return [
        helper.make_node("QuantizeLinear", [data, scale, zero_point], [quantized], **extra),
        helper.make_node("DequantizeLinear", [quantized, scale, zero_point], [out], **extra),
    ]


def test_a_plain_conv_conforms_everywhere():
    graph = _graph([_conv()], [WEIGHTS])
    for version in versions_for_opset(13):
        assert check_graph(graph, version) == []


def test_opset_bounds_per_version():
    graph = _graph([_conv()], [WEIGHTS], opset=17)
    assert _rules(graph, V82) == ["opset"]
    assert _rules(graph, V86) == [] and _rules(graph, V110) == []
    assert versions_for_opset(13)[0] == V82 and V82 not in versions_for_opset(17)
    assert all(generation(v).max_opset >= 19 for v in versions_for_opset(19))
    assert min(versions_for_opset(19)) == V100


def test_unknown_operator_and_custom_domain():
    graph = _graph(
        [
            helper.make_node("QLinearConv", ["x"], ["t"], name="qconv"),
            helper.make_node("Relu", ["t"], ["y"], name="plugin", domain="com.example"),
        ]
    )
    assert _rules(graph, V100) == ["domain", "operator"]


def test_input_types_follow_the_supported_types_column():
    cast = helper.make_node("Cast", ["x"], ["i"], to=TensorProto.INT32, name="cast")
    resize = helper.make_node("Resize", ["i", "", "s"], ["y"], name="resize", mode="linear")
    graph = _graph([cast, resize], [_init("s", [1, 1, 2, 2])])
    assert _rules(graph, V82) == ["input-type"]  # Resize reads FP32/FP16 only
    argmax_int = _graph(
        [cast, helper.make_node("ArgMax", ["i"], ["y"], name="argmax", axis=1)],
        outputs=[helper.make_tensor_value_info("y", TensorProto.INT64, None)],
    )
    assert _rules(argmax_int, V82) == ["input-type"] and _rules(argmax_int, V86) == []


def test_int32_bias_dequantize_is_rejected_everywhere():
    """ONNX Runtime's default: the bias quantized to INT32 and fed through a DequantizeLinear."""
    nodes = [
        helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["b"], name="bias_dq"),
        _conv(bias="b"),
    ]
    initializers = [
        WEIGHTS,
        _init("bq", [1, 2, 3, 4], np.int32),
        _init("bs", [0.1, 0.1, 0.1, 0.1]),
        _init("bz", [0, 0, 0, 0], np.int32),
    ]
    graph = _graph(nodes, initializers)
    for version in (V82, V86, V100, V110):
        rules = _rules(graph, version)
        assert {"input-type", "conv-bias", "zero-point"} <= set(rules), (version, rules)


def test_weights_form_per_version():
    """INT8 initializer -> DequantizeLinear: 10.x and 11.x only; FP32 -> Q -> DQ: all."""
    scale, zero = _init("ws", [0.1] * 4), _init("wz", [0] * 4, np.int8)
    prequantized = _graph(
        [
            helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="wdq", axis=0),
            _conv(w="wd"),
        ],
        [_init("wq", np.ones((4, 4, 1, 1)), np.int8), scale, zero],
    )
    assert _rules(prequantized, V82) == ["dequantize-input"]
    assert _rules(prequantized, V86) == ["dequantize-input"]
    assert _rules(prequantized, V100) == [] and _rules(prequantized, V110) == []
    float_weights = _graph(
        _qdq("w", "ws", "wz", "wd", axis=0) + [_conv(w="wd")], [WEIGHTS, scale, zero]
    )
    for version in (V82, V86, V100, V110):
        assert _rules(float_weights, version) == []


def test_quantization_parameters():
    x_scale, zero = _init("s", 0.1), _init("z", 0, np.int8)
    cases = {
        "zero-point": ([_init("s", 0.1), _init("z", 3, np.int8)], "z"),
        "scale": ([_init("s", -0.1), zero], "z"),
        "per-channel": ([_init("s", [0.1] * 4), _init("z", [0] * 4, np.int8)], "z"),
    }
    for rule, (initializers, zero_name) in cases.items():
        graph = _graph(_qdq("x", "s", zero_name, "xd") + [_conv(x="xd")], [WEIGHTS] + initializers)
        assert _rules(graph, V100) == [rule], rule
    no_zero_point = _graph(
        [
            helper.make_node("QuantizeLinear", ["x", "s"], ["xq"], name="Q"),
            helper.make_node("DequantizeLinear", ["xq", "s"], ["xd"], name="DQ"),
            _conv(x="xd"),
        ],
        [WEIGHTS, x_scale],
    )
    assert "zero-point" in _rules(no_zero_point, V86)
    assert "zero-point" not in _rules(no_zero_point, V100)
    uint8 = _graph(
        _qdq("x", "s", "z", "xd") + [_conv(x="xd")], [WEIGHTS, x_scale, _init("z", 0, np.uint8)]
    )
    assert "zero-point" in _rules(uint8, V86) and "zero-point" in _rules(uint8, V100, NUMERICS)


def test_per_channel_weights_need_the_output_channel_axis():
    scale, zero = _init("ws", [0.1] * 4), _init("wz", [0] * 4, np.int8)
    graph = _graph(_qdq("w", "ws", "wz", "wd", axis=1) + [_conv(w="wd")], [WEIGHTS, scale, zero])
    assert _rules(graph, V100) == ["per-channel"]


def _resize(scales="s", **attributes):
    node = helper.make_node("Resize", ["x", "", scales], ["y"], name="r", **attributes)
    return [node], [_init("s", [1, 1, 2, 2])]


def test_resize_modes_and_scales():
    assert _rules(_graph(*_resize(mode="cubic")), V82) == ["resize-mode"]
    crop = _resize(mode="linear", coordinate_transformation_mode="tf_crop_and_resize")
    assert _rules(_graph(*crop), V100) == ["resize-mode"]
    align = _resize(mode="linear", coordinate_transformation_mode="align_corners")
    assert _rules(_graph(*align), V82) == []
    nodes, initializers = _resize("s2", mode="linear")
    computed = [helper.make_node("Mul", ["s", "two"], ["s2"], name="m")] + nodes
    assert _rules(_graph(computed, initializers + [_init("two", 1.0)]), V82) == ["resize-scales"]


def test_clip_bounds_must_be_initializers_on_8x():
    nodes = [
        helper.make_node("ReduceL2", ["x"], ["m"], name="norm", keepdims=0),
        helper.make_node("Clip", ["x", "", "m"], ["y"], name="clip"),
    ]
    graph = _graph(nodes)
    assert _rules(graph, V82) == ["clip-bounds"] and _rules(graph, V100) == []


def test_axes_must_be_constant():
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Slice", ["x", "st", "en", "shape"], ["y"], name="slice"),
    ]
    graph = _graph(nodes, [_init("st", [0], np.int64), _init("en", [1], np.int64)])
    assert _rules(graph, V86) == ["axes"]


def _attention(dtype):
    """q (k^T v) with L2-normalised q and k, as FANet's attention, typed ``dtype``."""
    node = helper.make_node
    nodes = [
        node("ReduceL2", ["x"], ["n"], name="norm", axes=[1], keepdims=1),
        node("Div", ["x", "n"], ["xn"], name="div"),
        node("Reshape", ["xn", "shape"], ["k"], name="reshape"),
        node("Transpose", ["k"], ["kt"], name="transpose", perm=[0, 2, 1]),
        node("MatMul", ["k", "kt"], ["kv"], name="kv"),
        node("MatMul", ["kt", "kv"], ["y"], name="qkv"),
    ]
    value = helper.make_tensor_value_info
    return _graph(
        nodes,
        [_init("shape", [1, 4, 64], np.int64)],
        inputs=[value("x", dtype, [1, 4, 8, 8])],
        outputs=[value("y", dtype, None)],
    )


def test_fp16_attention_is_a_numerics_finding():
    fp16 = check_graph(_attention(TensorProto.FLOAT16), V100)
    assert {(f.node, f.kind) for f in fp16} == {
        ("norm", NUMERICS),
        ("div", NUMERICS),
        ("kv", NUMERICS),
        ("qkv", NUMERICS),
    }
    assert "squares it in FP16" in str(next(f for f in fp16 if f.node == "norm"))
    assert check_graph(_attention(FLOAT), V100) == []


def test_require_conformance_names_the_node_and_source():
    graph = _graph([_conv()], [WEIGHTS], opset=17)
    with pytest.raises(
        ConformanceError, match=r"TensorRT 8.2: model: opset 17 .* \[opset: ops-8.2\]"
    ):
        require_conformance(graph, [V86, V82], "g.onnx")
    require_conformance(graph, [V86, V110], "g.onnx")


def test_the_builder_refuses_a_rejected_graph_and_warns_of_numerics(tmp_path, caplog):
    """ONNX Runtime's default INT8 form on disk, as fanet-build would meet it."""
    bias_graph = helper.make_graph(
        [
            helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["b"], name="bias_dq"),
            _conv(bias="b"),
        ],
        "g",
        [helper.make_tensor_value_info("x", FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", FLOAT, None)],
        [
            WEIGHTS,
            _init("bq", [1] * 4, np.int32),
            _init("bs", [0.1] * 4),
            _init("bz", [0] * 4, np.int32),
        ],
    )
    path = tmp_path / "int8.onnx"
    onnx.save(helper.make_model(bias_graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(ConformanceError, match=r"TensorRT 10.0: bias_dq \(DequantizeLinear\)"):
        buildable_graph(str(path), V100)
    fp16 = tmp_path / "fp16.onnx"
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("ReduceL2", ["x"], ["y"], name="norm", axes=[1])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 4, 8, 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)],
        ),
        opset_imports=[helper.make_opsetid("", 13)],
    )
    onnx.save(model, fp16)
    with caplog.at_level("WARNING"):
        assert buildable_graph(str(fp16), V100).nodes[0].name == "norm"
    assert "squares it in FP16" in caplog.text


def test_versions_older_than_8_2_are_not_checked():
    with pytest.raises(ValueError, match="older than 8.2"):
        generation((7, 2))


def test_the_reader_sees_what_onnx_sees():
    model = onnx.load_from_string(
        helper.make_model(
            helper.make_graph(
                [helper.make_node("Clip", ["x", "lo"], ["y"], name="clip")],
                "g",
                [helper.make_tensor_value_info("x", FLOAT, [1, "n"])],
                [helper.make_tensor_value_info("y", FLOAT, [1, "n"])],
                [_init("lo", -1.5)],
            ),
            opset_imports=[helper.make_opsetid("", 13)],
        ).SerializeToString()
    )
    graph = parse_model(model.SerializeToString())
    assert graph.opset == 13 and graph.inputs[0].shape == (1, "n")
    assert graph.initializers["lo"].values() == np.float32(-1.5)


def test_constant_of_shape_is_typed_by_what_it_outputs():
    """Its input is a shape (INT64 by the ONNX spec); the parser's FP32-only column is about
    the tensor it makes: an FP32 fill conforms, an INT32 fill does not (8.x)."""
    shape = helper.make_node("Shape", ["x"], ["s"], name="shape")

    def fill(dtype, value):
        return helper.make_node(
            "ConstantOfShape",
            ["s"],
            ["y"],
            name="fill",
            value=helper.make_tensor("v", dtype, [1], [value]),
        )

    assert _rules(_graph([shape, fill(FLOAT, 1.0)]), (8, 4)) == []
    assert _rules(_graph([shape, fill(TensorProto.INT32, 1)]), (8, 4)) == ["input-type"]
