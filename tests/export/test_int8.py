"""INT8 Q/DQ export of a trained model, calibrated on a Cityscapes-layout folder."""

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from fanet.conformance.check import check_graph
from fanet.conformance.rules import versions_for_opset
from fanet.core.attention_islands import attention_islands
from fanet.core.metrics import labels_agreement
from fanet.core.onnx_graph import parse_model
from fanet.core.preprocess import preprocess
from fanet.export.int8 import dedicate_quantized_inputs
from fanet.export.pipeline import ExportConfig, run_export

SIZE = (128, 256)


@pytest.fixture(scope="module")
def int8_export(trained_checkpoint, synthetic_cityscapes, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8")
    config = ExportConfig(
        weights=str(trained_checkpoint),
        size=SIZE,
        int8=True,
        calib_data=str(synthetic_cityscapes),
        calib_count=32,
        output_dir=str(out),
    )
    files = run_export(config)
    return config, {f.variant: f for f in files}


def _labels(path, batch):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": batch})[0].argmax(1)


@pytest.mark.parametrize("variant", ["int8", "int8_fp16", "int8_onnxruntime"])
def test_int8_agrees_with_fp32_on_held_out_images(int8_export, synthetic_cityscapes, variant):
    _, files = int8_export
    held_out = sorted((synthetic_cityscapes / "leftImg8bit" / "val").rglob("*.png"))
    reference, candidate = [], []
    for path in held_out:
        batch = preprocess(cv2.imread(str(path)))
        reference.append(_labels(files["fp32"].path, batch))
        candidate.append(_labels(files[variant].path, batch))
    agreement = labels_agreement(np.stack(reference), np.stack(candidate), 19)
    print(f"{variant} vs FP32 on {len(held_out)} held-out images: {agreement}")
    assert agreement["argmax_agreement"] >= 0.99
    assert agreement["miou"] >= 0.95


def _initializers(graph):
    return {t.name: numpy_helper.to_array(t) for t in graph.initializer}


@pytest.mark.parametrize("variant", ["int8", "int8_fp16"])
def test_tensorrt_form_follows_the_placement_guidance(int8_export, variant):
    _, files = int8_export
    model = onnx.load(files[variant].path)
    graph = parse_model(model.SerializeToString())
    versions = versions_for_opset(graph.opset)
    assert all(check_graph(graph, version) == [] for version in versions), versions
    initializers, nodes = _initializers(model.graph), model.graph.node
    producer = {out: node for node in nodes for out in node.output}
    island = set(attention_islands(graph.nodes, graph.constants()))
    float_type = np.float16 if variant == "int8_fp16" else np.float32
    convs = [n for n in nodes if n.op_type == "Conv"]
    for conv in convs:
        dequantize = producer.get(conv.input[1])
        if conv.name in island:  # latlayer3: FP32 and not quantized, as the rest of the attention
            assert dequantize is None and producer.get(conv.input[0]).op_type == "Reshape"
            assert initializers[conv.input[2]].dtype == np.float32
            continue
        if len(conv.input) > 2:  # float bias initializer (the classifier has none)
            assert initializers[conv.input[2]].dtype == float_type
        quantize = producer[dequantize.input[0]]
        assert (dequantize.op_type, quantize.op_type) == ("DequantizeLinear", "QuantizeLinear")
        weights = initializers[quantize.input[0]]
        assert weights.dtype == float_type and quantize.attribute[0].i == 0  # axis 0
        assert initializers[quantize.input[1]].shape == (weights.shape[0],)
        assert producer[conv.input[0]].op_type == "DequantizeLinear"
    zero_points = [initializers[n.input[2]] for n in nodes if n.op_type == "QuantizeLinear"]
    assert all(z.dtype == np.int8 and not z.any() for z in zero_points)
    conv_outputs = {out for conv in convs for out in conv.output}
    activated = {n.input[0] for n in nodes if n.op_type in ("LeakyRelu", "Relu")}
    assert not any(
        n.op_type == "QuantizeLinear" and n.input[0] in conv_outputs & activated for n in nodes
    )
    assert producer[model.graph.output[0].name].op_type in ("Conv", "Cast")
    assert not any(
        producer[i].op_type == "DequantizeLinear"
        for n in nodes
        if n.op_type == "MatMul"
        for i in n.input
    )
    residual_adds = [
        n for n in nodes if n.op_type == "Add" and any(i in conv_outputs for i in n.input)
    ]
    assert len(residual_adds) == 8  # one per ResNet block
    assert all(
        any(producer[i].op_type == "DequantizeLinear" for i in n.input) for n in residual_adds
    )
    print(f"{variant}: {len(convs) - 4} quantized Conv, {len(residual_adds)} INT8 residual Adds")


def test_qdq_graph_is_symmetric_per_channel_int8(int8_export):
    _, files = int8_export
    graph = onnx.load(files["int8_onnxruntime"].path).graph
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    dequantize = [n for n in graph.node if n.op_type == "DequantizeLinear"]
    zero_points = [initializers[n.input[2]] for n in dequantize if len(n.input) > 2]
    assert zero_points and all((z == 0).all() for z in zero_points)
    quantize = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    assert quantize and all(initializers[n.input[2]].dtype == np.int8 for n in quantize)
    weight_scales = [
        initializers[n.input[1]]
        for n in dequantize
        if n.input[0] in initializers and initializers[n.input[0]].ndim == 4
    ]
    assert len(weight_scales) == sum(n.op_type == "Conv" for n in graph.node)
    assert all(s.ndim == 1 and s.size > 1 for s in weight_scales if s.size != 1)
    assert not any(
        n.op_type == "MatMul" and n.input[0].endswith("DequantizeLinear_Output") for n in graph.node
    )


def test_every_conv_reads_a_pair_of_its_own(int8_export):
    _, files = int8_export
    model = onnx.load(files["int8_onnxruntime"].path)
    onnx.checker.check_model(model)  # includes topological order, which parsers rely on
    nodes = model.graph.node
    producers = {output: node for node in nodes for output in node.output}
    readers = {name: sum(name in node.input for node in nodes) for name in producers}
    for conv in (node for node in nodes if node.op_type == "Conv"):
        dequantize = producers[conv.input[0]]
        assert dequantize.op_type == "DequantizeLinear" and readers[conv.input[0]] == 1
        assert readers[dequantize.input[0]] == 1, f"{conv.name} shares its Q/DQ pair"


def test_onnxruntime_runs_the_convolutions_as_integer_kernels(int8_export, tmp_path):
    _, files = int8_export
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnxruntime.InferenceSession(
        files["int8_onnxruntime"].path, options, providers=["CPUExecutionProvider"]
    )
    ops = [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]
    integer, total = ops.count("QLinearConv"), ops.count("QLinearConv") + ops.count("Conv")
    print(f"ONNX Runtime CPU runs {integer} of {total} convolutions as QLinearConv")
    assert integer >= 0.8 * total


def _shared_pair_graph():
    """x -> Q -> DQ feeding two Convs and a Relu: the pair three nodes share."""
    scale = numpy_helper.from_array(np.array(0.05, np.float32), "scale")
    zero = numpy_helper.from_array(np.array(0, np.int8), "zero")
    weights = np.random.default_rng(0).normal(size=(2, 4, 4, 1, 1)).astype(np.float32)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "scale", "zero"], ["xd"], name="dq"),
        helper.make_node("Conv", ["xd", "w0"], ["a"], name="conv0"),
        helper.make_node("Conv", ["xd", "w1"], ["b"], name="conv1"),
        helper.make_node("Relu", ["xd"], ["c"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "shared",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 4, 3, 3]) for name in "abc"],
        [scale, zero, *(numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(weights))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


def test_dedicated_pairs_compute_exactly_what_the_shared_pair_did():
    model = _shared_pair_graph()
    x = np.random.default_rng(1).normal(size=(1, 4, 3, 3)).astype(np.float32)
    before = ReferenceEvaluator(model).run(None, {"x": x})
    assert dedicate_quantized_inputs(model.graph) == 2
    onnx.checker.check_model(model)
    after = ReferenceEvaluator(model).run(None, {"x": x})
    for expected, actual in zip(before, after, strict=True):
        np.testing.assert_array_equal(actual, expected)
    readers = {name: [n.name for n in model.graph.node if name in n.input] for name in ("xd", "xq")}
    assert readers == {"xd": ["relu"], "xq": ["dq"]}
    assert len({n.input[1] for n in model.graph.node if n.op_type == "QuantizeLinear"}) == 3


def test_sidecar_records_calibration_and_agreement(int8_export):
    config, files = int8_export
    sidecar = json.loads(Path(files["int8"].path.replace(".onnx", ".json")).read_text())
    assert sidecar["precision"] == "int8" and sidecar["arch"] == "fanet18"
    assert sidecar["consumer"] == "tensorrt" and sidecar["float_parts"] == "float32"
    assert "8.4" in sidecar["tensorrt_checked"] and "11.1" in sidecar["tensorrt_checked"]
    assert len(sidecar["fp32_nodes"]) == 72
    for variant, consumer in (
        ("int8_fp16", "tensorrt (strongly typed)"),
        ("int8_onnxruntime", "onnxruntime"),
    ):
        other = json.loads(Path(files[variant].path.replace(".onnx", ".json")).read_text())
        assert other["consumer"] == consumer
    assert "tensorrt_checked" not in other
    assert sidecar["calibration"]["kind"] == "cityscapes"
    assert sidecar["calibration"]["count"] == 32 and sidecar["calibration"]["seed"] == 0
    assert sidecar["agreement"]["argmax_agreement"] > 0.9
    assert len(sidecar["onnx_sha256"]) == 64 and len(sidecar["checkpoint_sha256"]) == 64


def test_tensorrt_cache_holds_scales(int8_export):
    config, files = int8_export
    lines = Path(files["int8"].path.replace("_int8.onnx", "_int8.calib.cache")).read_text().split()
    assert lines[0].startswith("TRT-") and lines[0].endswith("EntropyCalibration2")
    cache = Path(files["int8"].path.replace(".onnx", ".calib.json"))
    ranges = json.loads(cache.read_text())["ranges"]
    name, hex_scale = lines[1].rstrip(":"), lines[2]
    assert struct.unpack(">f", bytes.fromhex(hex_scale))[0] == pytest.approx(
        max(abs(v) for v in ranges[name]) / 127, rel=1e-6
    )


def test_calibration_ranges_are_reused_only_for_the_same_data(int8_export, caplog, tmp_path):
    config, files = int8_export
    cache = Path(files["int8"].path.replace(".onnx", ".calib.json"))
    before = cache.read_text()
    with caplog.at_level("INFO"):
        run_export(config)
    assert "reusing calibration ranges" in caplog.text
    assert cache.read_text() == before
    caplog.clear()
    other = ExportConfig(
        **{**vars(config), "seed": 1, "output_dir": str(tmp_path), "calib_cache": str(cache)}
    )
    with caplog.at_level("INFO"):
        run_export(other)
    assert "recalibrating" in caplog.text


def test_third_party_scratch_files_stay_out_of_the_output_folder(
    exported_trained, tmp_path, monkeypatch
):
    """ONNX Runtime's -inferred.onnx and augmented.onnx go to a private temporary folder,
    removed also when calibration is interrupted."""
    import tempfile

    import onnx

    from fanet.export.int8 import calibrate_ranges, quantize_qdq

    out, scratch = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    scratch.mkdir()
    fp32 = out / "m.onnx"
    fp32.write_bytes(exported_trained.read_bytes())
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    batch = np.zeros((1, 3, 128, 256), np.float32)
    ranges = calibrate_ranges(str(fp32), [batch])["minmax"]
    assert quantize_qdq(str(fp32), ranges).graph.node
    assert sorted(p.name for p in out.iterdir()) == ["m.onnx"] and not list(scratch.iterdir())

    real_load = onnx.load

    def interrupted_after_shape_inference(path, *args, **kwargs):
        if str(path).endswith("-inferred.onnx"):  # written, not yet removed by ONNX Runtime
            raise KeyboardInterrupt
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(onnx, "load", interrupted_after_shape_inference)
    for step in (
        lambda: calibrate_ranges(str(fp32), [batch]),
        lambda: quantize_qdq(str(fp32), ranges),
    ):
        with pytest.raises(KeyboardInterrupt):
            step()
        assert sorted(p.name for p in out.iterdir()) == ["m.onnx"]
        assert not list(scratch.iterdir())


TINY_GAMMAS = (0.0, 1e-8, 2.5e-6)  # dead, pruned and L1-slimmed channels


@pytest.fixture(scope="module")
def tiny_range_checkpoint(trained_checkpoint, tmp_path_factory):
    """The trained model with BatchNorm gammas of 0, 1e-8 and 2.5e-6 in three channels of
    every BatchNorm, one residual branch's BatchNorm at 2.5e-6 throughout, and one Conv
    output channel all zero: ranges that are zero or tiny, per channel and per tensor."""
    import torch

    from fanet.model.checkpoint import read_state_dict

    state = read_state_dict(str(trained_checkpoint))
    gammas = [key for key in state if key.endswith(".weight") and key[:-6] + "running_var" in state]
    for key in gammas:
        state[key][: len(TINY_GAMMAS)] = torch.tensor(TINY_GAMMAS)
    state["resnet.layer2.1.bn2.weight"][:] = TINY_GAMMAS[-1]
    state["resnet.layer3.0.conv1.weight"][5] = 0.0
    path = tmp_path_factory.mktemp("tiny") / "tiny_ranges.pth"
    torch.save(state, path)
    return path


def _dequantized_weights(model, conv_name):
    """A Conv's weights as its Q/DQ pair (TensorRT's forms: fake quantization) or its
    DequantizeLinear of INT8 weights (ONNX Runtime's form) gives them to the Conv."""
    initializers = _initializers(model.graph)
    producer = {out: node for node in model.graph.node for out in node.output}
    conv = next(node for node in model.graph.node if node.name == conv_name)
    dequantize = producer[conv.input[1]]
    scale = initializers[dequantize.input[1]].astype(np.float32).reshape(-1, 1, 1, 1)
    if dequantize.input[0] in initializers:
        return initializers[dequantize.input[0]].astype(np.float32) * scale
    weights = initializers[producer[dequantize.input[0]].input[0]].astype(np.float32)
    return np.clip(np.round(weights / scale), -128, 127) * scale


@pytest.mark.parametrize("opset", [13, 17])
def test_zero_and_tiny_ranges_export_in_every_int8_form(
    tiny_range_checkpoint, synthetic_cityscapes, tmp_path, opset
):
    files = run_export(
        ExportConfig(
            weights=str(tiny_range_checkpoint),
            size=SIZE,
            opset=opset,
            int8=True,
            calib_data=str(synthetic_cityscapes),
            calib_count=16,
            output_dir=str(tmp_path),
        )
    )
    graphs = {f.variant: f.path for f in files}
    assert set(graphs) == {"fp32", "int8", "int8_fp16", "int8_onnxruntime"}
    held_out = sorted((synthetic_cityscapes / "leftImg8bit" / "val").rglob("*.png"))
    batches = [preprocess(cv2.imread(str(path))) for path in held_out]
    reference = np.stack([_labels(graphs["fp32"], batch) for batch in batches])
    for variant, path in graphs.items():
        model = onnx.load(path)
        checked = json.loads(Path(path).with_suffix(".json").read_text()).get("tensorrt_checked")
        if variant in ("int8", "int8_fp16"):
            graph = parse_model(model.SerializeToString())
            assert checked and all(check_graph(graph, v) == [] for v in map(_version, checked))
        if variant != "fp32":
            zero = _dequantized_weights(model, "/net/resnet/layer3/layer3.0/conv1/Conv")
            assert (zero[5] == 0).all()  # the all-zero channel stays exactly zero
        scales = [
            numpy_helper.to_array(t)
            for t in model.graph.initializer
            if t.name.endswith("_scale") or "_scale_for_" in t.name
        ]
        for scale in scales:
            assert np.isfinite(scale).all() and (scale > 0).all(), variant
            if scale.dtype == np.float16:
                assert (scale >= np.finfo(np.float16).tiny).all(), variant
        if variant == "fp32":
            continue
        candidate = np.stack([_labels(path, batch) for batch in batches])
        agreement = labels_agreement(reference, candidate, 19)
        print(f"opset {opset}, {variant} vs FP32 on {len(batches)} held-out images: {agreement}")
        assert agreement["argmax_agreement"] >= 0.99 and agreement["miou"] >= 0.95


def _version(text):
    major, minor = text.split(".")
    return int(major), int(minor)


def test_a_calibration_cache_missing_ranges_is_named(tmp_path):
    """A cache whose fingerprint matches but that lacks some ranges (edited, or written by
    an older fanet) is refused by name, not met later as an unnamed tensor."""
    from fanet.calibration.errors import CalibrationError

    from support.artefacts import host_artefact
    from support.host_artefacts import OPSET, SMALL

    exported = host_artefact("export_set")
    (cached,) = exported.glob("*_int8.calib.json")
    record = json.loads(cached.read_text())
    del record["ranges"]["input"]  # the first Conv's input: quantized in every INT8 form
    edited = tmp_path / "edited.calib.json"
    edited.write_text(json.dumps(record))
    config = ExportConfig(
        random_weights=True,
        size=SMALL,
        opset=OPSET,
        int8=True,
        calib_data=str(host_artefact("cityscapes")),
        calib_count=4,
        calib_cache=str(edited),
        output_dir=str(tmp_path / "out"),
    )
    wanted = f"calibration cache {edited} has no range for 1 tensors \\(input\\)"
    with pytest.raises(CalibrationError, match=wanted):
        run_export(config)


def test_a_graph_that_strays_from_fp32_is_written_with_a_warning(
    trained_checkpoint, synthetic_cityscapes, tmp_path, monkeypatch, caplog
):
    """Where the INT8 labels agree with FP32 on fewer than 97 % of pixels, the export says
    so (it measured 91.9 % on a user's folder and was silent)."""
    from fanet.export import run as export_run

    measured = export_run.agreement_with

    def straying(reference, candidate, batches, common):
        agreement = measured(reference, candidate, batches, common)
        return dict(agreement, argmax_agreement=0.919) if "_int8" in candidate else agreement

    monkeypatch.setattr(export_run, "agreement_with", straying)
    config = ExportConfig(
        weights=str(trained_checkpoint),
        size=(64, 128),
        int8=True,
        calib_data=str(synthetic_cityscapes),
        calib_count=2,
        output_dir=str(tmp_path),
        target_trt=((10, 3),),
    )
    with caplog.at_level("WARNING"):
        run_export(config)
    warned = [r.message for r in caplog.records if "agrees with the FP32 graph" in r.message]
    assert len(warned) == 2 and "on only 91.9 % of pixels (below 97 %)" in warned[0]
