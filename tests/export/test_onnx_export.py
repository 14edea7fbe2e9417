"""torch -> ONNX against PyTorch on the golden weights; outputs; what the graph holds."""

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from fanet.export.onnx_export import DeployableFANet, GraphForm, export_onnx
from fanet.model import create_model, model_from_checkpoint


def _run(path, x):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


@pytest.fixture(scope="module")
def golden_model(golden_fanet18):
    state, golden = golden_fanet18
    return model_from_checkpoint(state), golden["input"]


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("dynamic", [False, True])
def test_fp32_graph_matches_pytorch(golden_model, tmp_path, opset, dynamic):
    model, x = golden_model
    path = tmp_path / "fanet18.onnx"
    export_onnx(model, str(path), GraphForm(None if dynamic else tuple(x.shape[2:]), opset))
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    result = _run(path, x)
    assert np.abs(result - reference).max() / np.abs(reference).max() <= 1e-4
    if dynamic:  # another size through the same graph
        other = np.random.default_rng(0).standard_normal((1, 3, 136, 248)).astype(np.float32)
        with torch.no_grad():
            reference = model(torch.from_numpy(other)).numpy()
        result = _run(path, other)
        assert result.shape == (1, 19, 17, 31)
        assert np.abs(result - reference).max() / np.abs(reference).max() <= 1e-4


def test_graph_is_folded_and_has_no_discarded_branches(golden_model, tmp_path):
    model, x = golden_model
    path = tmp_path / "fanet18.onnx"
    export_onnx(model, str(path), GraphForm(tuple(x.shape[2:]), 17))
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == [
        "logits"
    ]
    assert not any(n.op_type == "BatchNormalization" for n in graph.node)
    weights = " ".join(t.name for t in graph.initializer)
    assert "fam_32.smooth" not in weights and "fam_8.smooth" not in weights
    assert "fam_4.up" not in weights and "fam_16.smooth" in weights
    assert sum(n.op_type == "MatMul" for n in graph.node) == 8  # two per attention module


@pytest.mark.parametrize("full_res", [False, True])
def test_labels_output_is_int32_argmax(tmp_path, full_res):
    torch.manual_seed(0)
    model = create_model("fanet18", num_classes=7)
    path = tmp_path / "labels.onnx"
    export_onnx(model, str(path), GraphForm((96, 160), 17, "labels", full_res))
    x = np.random.default_rng(1).standard_normal((1, 3, 96, 160)).astype(np.float32)
    labels = _run(path, x)
    with torch.no_grad():
        expected = DeployableFANet(model, "labels", full_res)(torch.from_numpy(x)).numpy()
    assert labels.dtype == np.int32
    assert labels.shape == ((1, 96, 160) if full_res else (1, 12, 20))
    assert (labels == expected).mean() >= 0.999
