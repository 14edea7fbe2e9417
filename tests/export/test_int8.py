"""INT8 Q/DQ export of a trained model, calibrated on a Cityscapes-layout folder."""

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import numpy_helper

from fanet.export.pipeline import ExportConfig, run_export
from fanet.metrics import labels_agreement
from fanet.runtime.preprocess import preprocess

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
    return config, {f.precision: f for f in files}


def _labels(path, batch):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": batch})[0].argmax(1)


def test_int8_agrees_with_fp32_on_held_out_images(int8_export, synthetic_cityscapes):
    _, files = int8_export
    held_out = sorted((synthetic_cityscapes / "leftImg8bit" / "val").rglob("*.png"))
    reference, candidate = [], []
    for path in held_out:
        batch = preprocess(cv2.imread(str(path)))
        reference.append(_labels(files["fp32"].path, batch))
        candidate.append(_labels(files["int8"].path, batch))
    agreement = labels_agreement(np.stack(reference), np.stack(candidate), 19)
    print(f"INT8 vs FP32 on {len(held_out)} held-out images: {agreement}")
    assert agreement["argmax_agreement"] >= 0.98
    assert agreement["miou"] >= 0.95


def test_qdq_graph_is_symmetric_per_channel_int8(int8_export):
    _, files = int8_export
    graph = onnx.load(files["int8"].path).graph
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


def test_sidecar_records_calibration_and_agreement(int8_export):
    config, files = int8_export
    sidecar = json.loads(Path(files["int8"].path.replace(".onnx", ".json")).read_text())
    assert sidecar["precision"] == "int8" and sidecar["arch"] == "fanet18"
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
