"""Triton model repositories: config.pbtxt parses with Triton's own model-config protobuf and
matches the graph (static, dynamic sides, dynamic batch, temporal); folders that are not
repositories are refused without --force."""

import sys

import numpy as np
import onnxruntime
import pytest
from google.protobuf import text_format

from fanet.cli.device import triton as fanet_triton
from fanet.core.engine_record import EngineRecord, write_record
from fanet.core.sidecar import read_sidecar
from fanet.serving.triton import Placement, write_model

from support.artefacts import host_artefact
from support.commands import captured

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="Triton's model-config protobuf: tritonclient"
)

Config = model_config_pb2.ModelConfig
FP32 = model_config_pb2.DataType.Value("TYPE_FP32")


def _config(folder):
    return text_format.Parse((folder / "config.pbtxt").read_text(), Config())


def _output_shape(onnx_path):
    """The logits' shape ONNX Runtime computes for a fixed-size graph."""
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed = {"input": np.zeros(session.get_inputs()[0].shape, np.float32)}
    return session.run(["logits"], feed)[0].shape


def test_a_static_export_gets_its_shapes_and_no_batching(exported_trained, tmp_path):
    folder = write_model(
        str(tmp_path / "repo"), str(exported_trained), read_sidecar(str(exported_trained))
    )
    config = _config(tmp_path / "repo" / "fanet18_128x256")
    assert (config.name, config.platform, config.max_batch_size) == (
        "fanet18_128x256",
        "onnxruntime_onnx",
        0,
    )
    (image,), (logits,) = config.input, config.output
    assert (image.name, image.data_type, list(image.dims)) == ("input", FP32, [1, 3, 128, 256])
    assert logits.name == "logits" and list(logits.dims) == list(_output_shape(exported_trained))
    assert not config.HasField("dynamic_batching") and not config.HasField("sequence_batching")
    assert [(g.count, g.kind) for g in config.instance_group] == [
        (1, model_config_pb2.ModelInstanceGroup.KIND_GPU)
    ]
    assert (
        tmp_path / "repo" / "fanet18_128x256" / "1" / "model.onnx"
    ).read_bytes() == exported_trained.read_bytes()
    assert folder.endswith("fanet18_128x256")


@pytest.fixture(scope="module")
def batched():
    """A 2-frame temporal export with a dynamic batch axis up to 4, and one with dynamic sides
    and a batch up to 8."""
    folder = host_artefact("batched")
    return folder / "fanet18_64x128_t2.onnx", folder / "fanet18_dynamic.onnx"


def test_a_dynamic_batch_gets_dynamic_batching_and_dynamic_sides_minus_one(batched, tmp_path):
    _, dynamic = batched
    placement = Placement(instances=3, kind="cpu")
    write_model(str(tmp_path), str(dynamic), read_sidecar(str(dynamic)), placement)
    config = _config(tmp_path / "fanet18_dynamic")
    assert config.max_batch_size == 8 and config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [3, -1, -1] and list(config.output[0].dims) == [19, -1, -1]
    assert [(g.count, g.kind) for g in config.instance_group] == [
        (3, model_config_pb2.ModelInstanceGroup.KIND_CPU)
    ]
    session = onnxruntime.InferenceSession(str(dynamic), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"  # what max_batch_size needs
    assert session.run(None, {"input": np.zeros((3, 3, 64, 96), np.float32)})[0].shape == (
        3,
        19,
        8,
        12,
    )


def test_a_temporal_export_gets_a_sequence_batcher_with_implicit_state(batched, tmp_path):
    temporal, _ = batched
    sidecar = read_sidecar(str(temporal))
    write_model(str(tmp_path), str(temporal), sidecar)
    config = _config(tmp_path / "fanet18_64x128_t2")
    assert config.max_batch_size == 4 and not config.HasField("dynamic_batching")
    batching = config.sequence_batching
    assert batching.WhichOneof("strategy_choice") == "direct"
    states = [(s.input_name, s.output_name, list(s.dims)) for s in batching.state]
    assert states == [(t.input, t.output, list(t.shape[1:])) for t in sidecar.state]
    assert ("state_valid", "state_valid_out", [1]) in states
    for state in batching.state:
        (initial,) = state.initial_state
        assert initial.WhichOneof("state_data") == "zero_data" and list(initial.dims) == list(
            state.dims
        )
    assert [i.name for i in config.input] == ["input"]  # the state stays on the server
    assert list(config.output[0].dims) == [19, 8, 16]


def test_an_engine_is_a_tensorrt_plan_with_its_records_sidecar(exported_trained, tmp_path):
    engine = tmp_path / "fanet18_128x256_fp16.engine"
    engine.write_bytes(b"serialized by TensorRT")
    sidecar = read_sidecar(str(exported_trained))
    write_record(str(engine), EngineRecord(precision="fp16", sidecar=sidecar))
    assert fanet_triton.main(["--engine", str(engine), "-o", str(tmp_path / "repo"), "-q"]) == 0
    config = _config(tmp_path / "repo" / "fanet18_128x256_fp16")
    assert config.platform == "tensorrt_plan" and list(config.input[0].dims) == [1, 3, 128, 256]
    assert (
        tmp_path / "repo" / "fanet18_128x256_fp16" / "1" / "model.plan"
    ).read_bytes() == b"serialized by TensorRT"


def _run(module, *args):
    command = [sys.executable, "-m", module, *args]
    result = captured(command)
    return result.returncode, result.stderr


def test_a_folder_that_is_not_a_repository_is_refused_without_force(exported_trained, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "todo.txt").write_text("mine")
    code, stderr = _run(
        "fanet.cli.device.triton", "--onnx", str(exported_trained), "-o", str(folder)
    )
    assert code == 1 and "Traceback" not in stderr
    assert "is not empty and not a Triton model repository (todo.txt has no config.pbtxt)" in stderr
    assert list(folder.iterdir()) == [folder / "todo.txt"]
    repository = tmp_path / "models"
    for _ in range(2):  # a repository takes another model; the same name needs --force
        code, stderr = _run(
            "fanet.cli.device.triton", "--onnx", str(exported_trained), "-o", str(repository)
        )
    assert code == 1 and "holds a model 'fanet18_128x256' already: pass --force" in stderr
    forced = ["--onnx", str(exported_trained), "-o", str(repository), "--force"]
    assert _run("fanet.cli.device.triton", *forced)[0] == 0
    assert _config(repository / "fanet18_128x256").name == "fanet18_128x256"


def _client_example():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "triton_client.py"
    spec = importlib.util.spec_from_file_location("triton_client", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_client_example_sends_what_the_segmenter_feeds_and_reads_its_labels(
    exported_trained, tmp_path
):
    """Offline: a request built from the served config, answered by ONNX Runtime as Triton
    would answer, read back into the labels the Segmenter gives."""
    from google.protobuf import json_format
    from tritonclient.grpc import InferResult, service_pb2

    from fanet.core.synthetic import render_scene
    from fanet.runtime import Segmenter

    client = _client_example()
    write_model(str(tmp_path), str(exported_trained), read_sidecar(str(exported_trained)))
    served = json_format.MessageToDict(
        _config(tmp_path / "fanet18_128x256"), preserving_proto_field_name=True
    )
    model = client.ModelInfo(served)  # as get_model_config(as_json=True)["config"] gives it
    image, _ = render_scene(9, 160, 320)  # another size than the model's
    request = client.request_for(image, model)
    assert (request.name(), request.datatype(), request.shape()) == (
        "input",
        "FP32",
        [1, 3, 128, 256],
    )
    with Segmenter.from_file(str(exported_trained), backend="onnxruntime") as segmenter:
        sent = np.frombuffer(request._raw_content, np.float32).reshape(request.shape())
        assert np.array_equal(sent, segmenter.feed(image))
        logits = segmenter.infer({"input": sent})["logits"]
        expected = segmenter(image)
    answer = service_pb2.ModelInferResponse(model_name="fanet18_128x256")
    answer.outputs.add(name="logits", datatype="FP32", shape=list(logits.shape))
    answer.raw_output_contents.append(logits.astype(np.float32).tobytes())
    labels = client.labels_from(InferResult(answer), model, image.shape[:2])
    assert np.array_equal(labels, expected)
