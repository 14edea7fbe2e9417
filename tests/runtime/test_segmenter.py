"""Segmenter inputs and outputs: conversions, errors, colours, and the device-side imports."""

import json
import sys
import textwrap

import numpy as np
import pytest

from fanet.core.errors import ConfigError
from fanet.core.preprocess import ImageError
from fanet.core.sidecar import MetadataError, Provenance, Sidecar, read_sidecar, write_sidecar
from fanet.core.synthetic import render_scene
from fanet.runtime.backend import BackendError
from fanet.runtime.segmenter import Segmenter

from support.artefacts import fp32_graph, host_artefact
from support.commands import captured


@pytest.fixture(scope="module")
def seg(exported_trained):
    with Segmenter.from_file(str(exported_trained), backend="onnxruntime") as segmenter:
        yield segmenter


def test_labels_at_the_image_size_for_any_size(seg):
    image, truth = render_scene(7, 200, 300)
    labels = seg(image)
    assert labels.shape == (200, 300) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= set(range(19))


def test_rgb_option_matches_bgr(exported_trained, seg):
    image, _ = render_scene(8, 128, 256)
    with Segmenter.from_file(str(exported_trained), backend="onnxruntime", rgb=True) as rgb_seg:
        assert (rgb_seg(image[:, :, ::-1].copy()) == seg(image)).all()


def test_documented_conversions(seg):
    image, _ = render_scene(9, 128, 256)
    gray = image.mean(axis=2).astype(np.uint8)
    assert seg(gray).shape == (128, 256)
    bgra = np.concatenate([image, np.full((128, 256, 1), 255, np.uint8)], axis=2)
    assert (seg(bgra) == seg(image)).all()
    strided = np.zeros((128, 512, 3), np.uint8)
    strided[:, ::2] = image
    view = strided[:, ::2]
    assert not view.flags.c_contiguous and (seg(view) == seg(image)).all()


@pytest.mark.parametrize(
    "image,message",
    [
        (np.zeros((0, 10, 3), np.uint8), "empty image"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10, 5), np.uint8), "H x W x 3"),
        ("image.png", "numpy array"),
    ],
)
def test_bad_images_are_clear_errors(seg, image, message):
    with pytest.raises(ImageError, match=message):
        seg(image)


def test_colorize_and_overlay(seg):
    labels = np.array([[0, 13], [10, 255]], np.uint8)
    colours = seg.colorize(labels)
    assert colours.shape == (2, 2, 3)
    assert colours[0, 0].tolist() == [128, 64, 128][::-1]  # road, BGR
    assert colours[0, 1].tolist() == [142, 0, 0]  # car (0, 0, 142) in BGR
    assert colours[1, 1].tolist() == [0, 0, 0]  # ignored
    image = np.full((2, 2, 3), 200, np.uint8)
    overlay = seg.overlay(image, labels, alpha=0.5)
    assert overlay[1, 1].tolist() == [100, 100, 100]


def test_lone_onnx_knows_its_essentials_from_metadata_props(exported_trained, tmp_path, caplog):
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(exported_trained.read_bytes())
    expected = read_sidecar(str(exported_trained))
    with caplog.at_level("INFO"):
        found = read_sidecar(str(lone))
    assert "using the metadata inside" in caplog.text
    essentials = ("arch", "num_classes", "input_size", "mean", "std", "precision", "input_name")
    for field in essentials + ("output_name", "opset", "fanet_version"):
        assert getattr(found, field) == getattr(expected, field), field
    assert found.input_size == (128, 256) and found.provenance == Provenance()
    image, _ = render_scene(3, 128, 256)
    with Segmenter.from_file(lone, backend="onnxruntime") as lone_seg:  # noqa: SIM117 (3.6)
        with Segmenter.from_file(exported_trained, backend="onnxruntime") as full_seg:
            assert (lone_seg(image) == full_seg(image)).all()


def test_onnx_without_sidecar_or_metadata_works_with_defaults(exported_trained, tmp_path, caplog):
    import onnx

    proto = onnx.load(str(exported_trained))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    image, _ = render_scene(3, 200, 300)
    with caplog.at_level("WARNING"), Segmenter.from_file(bare, backend="onnxruntime") as s:
        assert s.sidecar == Sidecar() and s.input_size == (128, 256)  # from the graph
        assert s(image).shape == (200, 300)  # resized to the graph's size and back
    assert "no sidecar" in caplog.text


def _stateful_graph(path):
    """input + state in, state out + logits out (declared in that order): logits are the
    input's first 4 channels at 1/8, the state is incremented."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Concat", ["pooled", "pooled"], ["twice"], axis=1),
        helper.make_node("Slice", ["twice", "starts", "ends", "axes"], ["logits"]),
        helper.make_node("Add", ["state_in", "one"], ["state_out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "stateful",
        [
            helper.make_tensor_value_info("state_in", TensorProto.FLOAT, [1, 32, 8]),
            helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64]),
        ],
        [
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [1, 32, 8]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4, 8, 8]),
        ],
        [
            helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
            helper.make_tensor("ends", TensorProto.INT64, [1], [4]),
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
            helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    write_sidecar(str(path), Sidecar(num_classes=4, input_size=(64, 64)))


def test_segmenter_picks_tensors_by_name_and_passes_state_through(tmp_path):
    path = tmp_path / "stateful.onnx"
    _stateful_graph(path)
    image = np.full((64, 64, 3), 128, np.uint8)
    image[:, 32:, 2] = 255  # red on the right half (BGR): channel 0 after RGB conversion
    with Segmenter.from_file(path, backend="onnxruntime") as seg:
        assert [s.name for s in seg.extra_inputs] == ["state_in"]
        state = np.zeros((1, 32, 8), np.float32)
        for step in range(1, 4):
            outputs = seg.run(image, {"state_in": state})
            state = outputs["state_out"]
            assert (state == step).all()
        assert outputs["logits"].shape == (1, 4, 8, 8)
        with pytest.raises(BackendError, match="also needs input.*state_in"):
            seg(image)


def test_sidecar_naming_a_tensor_the_model_lacks_is_a_clear_error(tmp_path):
    path = tmp_path / "stateful.onnx"
    _stateful_graph(path)
    write_sidecar(str(path), Sidecar(input_name="image", input_size=(64, 64)))
    with pytest.raises(
        BackendError, match="names input 'image', the model has 'state_in', 'input'"
    ):
        Segmenter.from_file(path, backend="onnxruntime")


BLOCKED = textwrap.dedent(
    """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("torch", "onnx", "onnxscript"):
                raise ImportError("blocked: " + name)

    sys.meta_path.insert(0, Block())
    import cv2
    import fanet.cli.device.build, fanet.cli.common, fanet.core.metrics
    import fanet.runtime.registry, fanet.runtime.trt.cuda, fanet.core.engine_record
    import fanet.runtime.trt.io_buffers, fanet.runtime.onnxruntime_backend, fanet.runtime.segmenter
    import fanet.runtime.trt.versions
    from fanet.runtime.segmenter import Segmenter

    seg = Segmenter.from_file(sys.argv[1], backend="onnxruntime")
    image = cv2.imread(sys.argv[2])
    loaded = sorted(m for m in sys.modules if m.startswith(("torch", "onnx.")))
    print("labels", seg(image).shape, loaded)
    """
)


def test_device_side_runs_without_torch_and_onnx(exported_trained, tmp_path):
    import cv2

    image_path = tmp_path / "scene.png"
    cv2.imwrite(str(image_path), render_scene(1, 128, 256)[0])
    result = captured(
        [sys.executable, "-c", BLOCKED, str(exported_trained), str(image_path)],
    )
    assert result.returncode == 0, result.stderr
    assert "labels (128, 256) []" in result.stdout


def _copy_with_sidecar(exported, folder, **changes):
    copy = folder / "copy.onnx"
    copy.write_bytes(exported.read_bytes())
    record = json.loads(exported.with_suffix(".json").read_text())
    record.update(changes)
    copy.with_suffix(".json").write_text(json.dumps(record))
    return copy


def test_a_sidecar_of_another_graph_is_refused(exported_trained, tmp_path):
    copy = _copy_with_sidecar(exported_trained, tmp_path, onnx_sha256="0" * 64)
    with pytest.raises(MetadataError, match="describes another graph than .*copy.onnx"):
        Segmenter.from_file(copy, backend="onnxruntime")


def test_a_sidecar_with_the_wrong_class_count_is_refused(exported_trained, tmp_path):
    copy = _copy_with_sidecar(exported_trained, tmp_path)
    record = json.loads(copy.with_suffix(".json").read_text())
    write_sidecar(str(copy), Sidecar.from_json(dict(record, num_classes=7)))
    with pytest.raises(BackendError, match="the sidecar says 7 classes, the model's 'logits'"):
        Segmenter.from_file(copy, backend="onnxruntime")


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"input_size": [256, 512]},
            "says input size 256x512, the model's 'input' input is 128x256",
        ),
        (
            {"output": "labels"},
            "says the output is labels, the model's 'logits' output holds logits",
        ),
    ],
)
def test_a_sidecar_describing_another_shape_or_output_is_refused(
    exported_trained, tmp_path, changes, message
):
    copy = _copy_with_sidecar(exported_trained, tmp_path, **changes)
    with pytest.raises(BackendError, match=message):
        Segmenter.from_file(copy, backend="onnxruntime")


def test_from_file_precision_picks_the_sibling_graph_as_the_cli_does():
    export = fp32_graph(host_artefact("export_set"))
    fp16 = export.with_name(export.stem + "_fp16.onnx")
    for given, precision, runs in [
        (export, "fp16", fp16),
        (fp16, "fp32", export),
        (export, "int8", export.with_name(export.stem + "_int8_onnxruntime.onnx")),
        (fp16, None, fp16),
    ]:
        with Segmenter.from_file(given, backend="onnxruntime", precision=precision) as seg:
            assert seg.backend.precision == (precision or "fp16")
            assert seg.sidecar.provenance == read_sidecar(str(runs)).provenance
    with pytest.raises(ConfigError, match="no fp16 graph beside .*: run fanet-export --fp16"):
        Segmenter.from_file(fp32_graph(host_artefact("temporal")), precision="fp16")


def test_logits_that_are_not_finite_give_no_labels(exported_trained):
    """NaN logits would argmax to class 0 (road) everywhere: refused, not labelled."""
    from fanet.runtime.segmenter import NonFiniteOutputError

    image, _ = render_scene(5, 128, 256)
    with Segmenter.from_file(str(exported_trained), backend="onnxruntime") as seg:
        outputs = seg.run(image)
        outputs["logits"][0, :, 3, 4] = np.nan
        with pytest.raises(NonFiniteOutputError, match=r"NaN or Inf \(19 of 9728 values\)"):
            seg.labels(outputs, image.shape[:2])
