"""Every graph fanet-export writes conforms to every TensorRT version its opset serves."""

import itertools
import json

import onnx
import pytest

from fanet.cli.host.export import main
from fanet.conformance.check import check_graph
from fanet.conformance.rules import versions_for_opset
from fanet.core.attention_islands import OVERFLOW_PRONE_OPS, attention_islands
from fanet.core.onnx_graph import FLOAT16, infer_dtypes, read_model
from fanet.export.pipeline import ExportConfig, run_export

SIZE = (64, 128)
SHAPES = [
    (opset, dynamic, output, full_res)
    for opset, dynamic, (output, full_res) in itertools.product(
        (13, 17), (False, True), (("logits", False), ("labels", False), ("labels", True))
    )
]


def _export(out, opset, dynamic, output, full_res, **extra):
    config = ExportConfig(
        random_weights=True,
        size=None if dynamic else SIZE,
        opset=opset,
        output=output,
        full_res=full_res,
        fp16=True,
        output_dir=str(out),
        **extra,
    )
    return run_export(config)


def _assert_conforms(path):
    graph = read_model(path)
    versions = versions_for_opset(graph.opset)
    assert versions, path
    for version in versions:
        findings = check_graph(graph, version)
        assert findings == [], (path, version, [str(f) for f in findings])
    types = infer_dtypes(graph)
    island = set(attention_islands(graph.nodes, graph.constants()))
    for node in graph.nodes:
        if node.name in island and node.op_type in OVERFLOW_PRONE_OPS:
            assert all(types.get(name) != FLOAT16 for name in node.input), (path, node.name)
    return versions


@pytest.mark.slow
@pytest.mark.parametrize("opset,dynamic,output,full_res", SHAPES)
def test_fp32_and_fp16_graphs_conform(tmp_path, opset, dynamic, output, full_res):
    files = _export(tmp_path, opset, dynamic, output, full_res)
    assert [f.variant for f in files] == ["fp32", "fp16"]
    for exported in files:
        versions = _assert_conforms(exported.path)
        with open(exported.path.replace(".onnx", ".json")) as stream:
            sidecar = json.load(stream)
        assert sidecar["tensorrt_checked"] == ["%d.%d" % v for v in versions]


@pytest.mark.parametrize("opset", [13, 17])
def test_fp16_io_and_int8_graphs_conform(tmp_path, synthetic_cityscapes, opset):
    files = _export(
        tmp_path,
        opset,
        False,
        "logits",
        False,
        fp16_io=True,
        int8=True,
        calib_data=str(synthetic_cityscapes),
        calib_count=4,
    )
    variants = {f.variant: f.path for f in files}
    assert sorted(variants) == ["fp16", "fp32", "int8", "int8_fp16", "int8_onnxruntime"]
    checked = {
        variant: _assert_conforms(path)
        for variant, path in variants.items()
        if variant != "int8_onnxruntime"
    }
    assert min(checked["int8"]) == ((8, 2) if opset == 13 else (8, 4))
    assert min(checked["int8_fp16"]) == (10, 0)  # opset 19: FP16 Q/DQ scales
    assert onnx.load(variants["fp16"]).graph.input[0].type.tensor_type.elem_type == FLOAT16


@pytest.mark.parametrize("version", ["9.0", "10.99", "12.0"])
def test_a_tensorrt_that_was_never_released_is_refused(tmp_path, capsys, version):
    code = main(
        ["--random-weights", "--res", "64x128", "--target-trt", version, "-o", str(tmp_path)]
    )
    assert code == 1 and list(tmp_path.iterdir()) == []
    assert capsys.readouterr().err.strip() == (
        f"fanet-export: error: --target-trt {version}: no TensorRT release fanet knows "
        "(8.2-8.6, 10.0-10.16, 11.0-11.4)"
    )


def test_a_target_the_opset_does_not_serve_is_refused_before_anything_is_written(tmp_path, capsys):
    code = main(["--random-weights", "--res", "64x128", "--target-trt", "8.2", "-o", str(tmp_path)])
    assert code == 1 and list(tmp_path.iterdir()) == []
    assert "TensorRT 8.2 parses opsets 7..13, not --opset 17" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--random-weights", "--target-trt", "latest", "-o", str(tmp_path)])
    assert exit_info.value.code == 2
    code = main(
        [
            "--random-weights",
            "--res",
            "64x128",
            "--opset",
            "13",
            "--target-trt",
            "8.2",
            "-o",
            str(tmp_path),
        ]
    )
    assert code == 0
    sidecar = json.loads((tmp_path / "fanet18_64x128.json").read_text())
    assert sidecar["tensorrt_checked"] == ["8.2"]


def test_a_graph_tensorrt_would_reject_is_not_written(tmp_path, synthetic_cityscapes, monkeypatch):
    """Were the TensorRT form ONNX Runtime's default (INT32 biases), nothing is left behind."""
    from fanet.export import int8_forms
    from fanet.export.int8 import quantize_qdq

    def onnxruntime_form(model, ranges, float_groups, check):
        path = str(tmp_path / "fp32.onnx")
        onnx.save(model, path)
        return quantize_qdq(path, ranges, float_groups=float_groups)

    monkeypatch.setattr(int8_forms, "quantize_for_tensorrt", onnxruntime_form)
    out = tmp_path / "out"
    out.mkdir()
    args = ["--random-weights", "--res", "64x128", "--int8", "--calib-count", "4"]
    code = main([*args, "--calib-data", str(synthetic_cityscapes), "-o", str(out)])
    assert code == 1 and list(out.iterdir()) == []


def test_the_device_side_reader_agrees_with_onnx(exported_trained):
    model = onnx.load(str(exported_trained))
    inferred = onnx.shape_inference.infer_shapes(model).graph
    expected = {
        v.name: v.type.tensor_type.elem_type
        for v in list(inferred.value_info) + list(inferred.output)
    }
    graph = read_model(str(exported_trained))
    assert [n.name for n in graph.nodes] == [n.name for n in model.graph.node]
    assert [n.input for n in graph.nodes] == [tuple(n.input) for n in model.graph.node]
    types = infer_dtypes(graph)
    assert {name: types[name] for name in expected} == expected
    assert set(graph.initializers) == {t.name for t in model.graph.initializer}
