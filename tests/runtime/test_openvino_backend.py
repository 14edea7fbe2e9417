"""The OpenVINO backend beside ONNX Runtime on the same graphs: the same labels at FP32,
INT8 from TensorRT's Q/DQ graph close to FP32, the temporal state carried, compiled
models cached, FP16 only where the device has it, and the auto rule (skips without
OpenVINO: the openvino extra)."""

import numpy as np
import pytest

from fanet.bench.device_info import cpu_isa, int8_gains_little
from fanet.core.errors import FanetError, MissingDependencyError
from fanet.core.synthetic import render_scene
from fanet.runtime.openvino_backend import OpenVinoBackend
from fanet.runtime.options import OpenVinoOptions
from fanet.runtime.registry import choose_backend, open_backend
from fanet.runtime.segmenter import Segmenter

from support.artefacts import fp32_graph, host_artefact

openvino = pytest.importorskip("openvino", reason="OpenVINO is not installed (fanet[openvino])")
onnx = pytest.importorskip("onnx", reason="building a test graph needs onnx (the host side)")


@pytest.fixture(scope="module")
def scenes():
    return [render_scene(seed, 128, 256)[0] for seed in range(200, 212)]


def _labels(model, scenes, **options):
    with Segmenter.from_file(model, **options) as segmenter:
        return np.stack([segmenter(image) for image in scenes])


def test_int8_from_tensorrt_s_graph_agrees_with_fp32_as_onnxruntime_s_int8_does(scenes):
    """FP32 as ONNX Runtime's; INT8 (TensorRT's Q/DQ graph) at least as close to the FP32
    labels as ONNX Runtime's INT8 where the CPU has integer dot products (measured: 99.77
    against 99.70 %). Without VNNI or AMX, oneDNN's integer kernels give less (98.75 % with
    it capped to AVX2 here), so there it is held to within 2 %."""
    graph = str(fp32_graph(host_artefact("exported_trained_int8")))
    fp32 = _labels(graph, scenes, backend="onnxruntime")
    agreement = {
        "openvino fp32": _labels(graph, scenes, backend="openvino"),
        "onnxruntime int8": _labels(graph, scenes, backend="onnxruntime", precision="int8"),
        "openvino int8": _labels(graph, scenes, backend="openvino", precision="int8"),
    }
    agreement = {name: float((labels == fp32).mean()) for name, labels in agreement.items()}
    print("agreement with ONNX Runtime FP32 (12 scenes, 128x256): {}".format(agreement))
    assert agreement["openvino fp32"] >= 0.999, agreement
    if int8_gains_little(cpu_isa()):
        assert agreement["openvino int8"] >= 0.98, agreement
    else:
        assert agreement["openvino int8"] >= agreement["onnxruntime int8"], agreement


def test_a_convolution_over_a_quantized_concat_is_computed_as_written(tmp_path):
    """OpenVINO's CPU plugin computes a Conv reading a quantized Concat differently from
    the Q/DQ graph, where the same Conv on one input is exact; the backend's rewrite makes
    it the Q/DQ graph's arithmetic."""
    path = str(tmp_path / "concat_conv.onnx")
    onnx.save(_concat_conv_graph(), path)
    rng = np.random.default_rng(0)
    inputs = {
        "a": np.abs(rng.normal(size=(1, 8, 16, 32))).astype(np.float32),
        "b": rng.normal(size=(1, 24, 16, 32)).astype(np.float32),
    }
    expected = _fake_quantized(path, inputs)
    with OpenVinoBackend(path, precision="int8") as backend:
        got = backend.infer(inputs)["y"]
    # As read, OpenVINO is 30 % off here (mean 3.8 against a mean |y| of 12.5); rewritten,
    # only inputs on a rounding tie land one step apart.
    assert np.abs(got - expected).mean() <= 1e-3 * np.abs(expected).mean()


def _concat_conv_graph():
    """Concat(a, b) -> Q/DQ (one scale) -> 3x3 Conv with per-channel Q/DQ weights."""
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    weights = np.random.default_rng(1).normal(size=(16, 32, 3, 3)).astype(np.float32)
    weight_scale = (np.abs(weights).max(axis=(1, 2, 3)) / 127).astype(np.float32)
    nodes = [
        helper.make_node("Concat", ["a", "b"], ["cat"], axis=1),
        helper.make_node("QuantizeLinear", ["cat", "s", "z"], ["cat_q"]),
        helper.make_node("DequantizeLinear", ["cat_q", "s", "z"], ["cat_dq"]),
        helper.make_node("QuantizeLinear", ["w", "ws", "wz"], ["w_q"], axis=0),
        helper.make_node("DequantizeLinear", ["w_q", "ws", "wz"], ["w_dq"], axis=0),
        helper.make_node("Conv", ["cat_dq", "w_dq"], ["y"], pads=[1, 1, 1, 1]),
    ]
    constants = [
        numpy_helper.from_array(np.array(0.03, np.float32), "s"),
        numpy_helper.from_array(np.array(0, np.int8), "z"),
        numpy_helper.from_array(weights, "w"),
        numpy_helper.from_array(weight_scale, "ws"),
        numpy_helper.from_array(np.zeros(16, np.int8), "wz"),
    ]
    float_input = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "concat_conv",
        [
            helper.make_tensor_value_info("a", float_input, [1, 8, 16, 32]),
            helper.make_tensor_value_info("b", float_input, [1, 24, 16, 32]),
        ],
        [helper.make_tensor_value_info("y", float_input, [1, 16, 16, 32])],
        constants,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _fake_quantized(path, inputs):
    """The graph's output with each Q/DQ pair computed as written (ONNX Runtime)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return session.run(["y"], inputs)[0]


def test_the_temporal_state_is_carried_as_on_onnxruntime(temporal_export, scenes):
    frames = [image[:64, :128].copy() for image in scenes[:4]]
    logits = {}
    for backend in ("onnxruntime", "openvino"):
        segmenter = Segmenter.from_file(temporal_export, backend=backend)
        with segmenter, segmenter.temporal_session() as session:
            logits[backend] = np.stack([session.run(frame)["logits"] for frame in frames])
    scale = np.abs(logits["onnxruntime"]).max()
    assert np.abs(logits["openvino"] - logits["onnxruntime"]).max() / scale <= 1e-4


def test_compiled_models_are_cached_on_disk(tmp_path):
    graph = fp32_graph(host_artefact("tiny_export"))
    options = OpenVinoOptions(cache_dir=str(tmp_path))
    with open_backend(graph, backend="openvino", typed_options=options):
        pass
    blobs = sorted(tmp_path.glob("*.blob"))
    assert len(blobs) == 1
    with open_backend(graph, backend="openvino", typed_options=options):
        pass
    assert sorted(tmp_path.glob("*.blob")) == blobs  # the same model: read, not compiled again


def test_fp16_and_absent_devices_are_one_line():
    graph = fp32_graph(host_artefact("tiny_export"))
    core = openvino.Core()
    if "FP16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        with pytest.raises(FanetError, match="the CPU here has no FP16 .*: run fp32 or int8"):
            open_backend(graph, backend="openvino", precision="fp16")
    if "NPU" not in core.available_devices:
        with pytest.raises(FanetError, match="OpenVINO here has no NPU"):
            open_backend(graph, backend="openvino", device="NPU")
    with pytest.raises(FanetError, match="unknown openvino device 'TPU'"):
        open_backend(graph, backend="openvino", device="tpu")


def test_a_missing_openvino_names_its_extra(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "openvino" else find_spec(name, *a),
    )
    graph = fp32_graph(host_artefact("tiny_export"))
    with pytest.raises(MissingDependencyError, match=r"pip install 'fanet\[openvino\]'"):
        open_backend(graph, backend="openvino")


def test_auto_picks_the_cpu_backend_measured_fastest_at_each_precision(monkeypatch):
    from fanet.runtime import registry

    monkeypatch.setattr(registry, "onnxruntime_has_cuda", lambda: False)
    monkeypatch.setattr(registry, "installed_tensorrt_version", lambda: None)
    assert choose_backend(".onnx", "auto", "int8").name == "openvino"
    assert choose_backend(".onnx", "auto", "fp32").name == "onnxruntime"
    assert choose_backend(".onnx", "auto").name == "onnxruntime"
