"""Stateful temporal exports: the graph on ONNX Runtime follows the PyTorch temporal model
frame by frame, its state described by the sidecar and FP32 in FP16 and INT8 graphs, and
every graph conforms to each TensorRT version its opset serves."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from fanet.conformance.check import check_graph
from fanet.conformance.rules import versions_for_opset
from fanet.core.attention_islands import attention_islands
from fanet.core.onnx_graph import FLOAT16, infer_dtypes, read_model
from fanet.core.sidecar import read_sidecar
from fanet.core.synthetic import render_scene
from fanet.export.pipeline import ExportConfig, run_export
from fanet.runtime import Segmenter

SIZE = (128, 256)


@pytest.fixture(scope="module")
def trained_temporal(trained_checkpoint, synthetic_cityscapes, tmp_path_factory):
    """The trained fixture exported with 2-frame (sum) and 4-frame (mean) attention, FP16
    and INT8 graphs beside each."""
    exported = {}
    for window, reduce in ((2, "sum"), (4, "mean")):
        out = tmp_path_factory.mktemp(f"t{window}")
        config = ExportConfig(
            weights=str(trained_checkpoint),
            size=SIZE,
            temporal=window,
            temporal_reduce=reduce,
            fp16=True,
            int8=True,
            calib_data=str(synthetic_cityscapes),
            calib_count=8,
            output_dir=str(out),
        )
        exported[window] = (reduce, run_export(config))
    return exported


def _sequence(count=10):
    """A drive: the synthetic scene of each seed, shifted a little from frame to frame."""
    image, _ = render_scene(7, *SIZE)
    return [np.roll(image, 3 * index, axis=1) for index in range(count)]


@pytest.mark.parametrize("window", [2, 4])
def test_the_graph_follows_the_torch_temporal_model_frame_by_frame(
    trained_checkpoint, trained_temporal, window
):
    reduce, files = trained_temporal[window]
    fp32 = files[0].path
    assert fp32.endswith(f"fanet18_128x256_t{window}.onnx")
    torch_options = {"temporal": window, "temporal_reduce": reduce}
    frames = _sequence(10)
    with (
        Segmenter.from_file(str(trained_checkpoint), backend="torch", **torch_options) as torch_seg,
        Segmenter.from_file(fp32, backend="onnxruntime") as onnx_seg,
    ):
        with torch_seg.temporal_session(window) as expected, onnx_seg.temporal_session() as actual:
            errors, streamed = [], []
            for frame in frames:
                reference = expected.run(frame)["logits"]
                streamed.append(actual.run(frame)["logits"])
                errors.append(np.abs(streamed[-1] - reference).max() / np.abs(reference).max())
        with onnx_seg.temporal_session() as alone:  # the last frame without its past
            last_alone = alone.run(frames[-1])["logits"]
    print(f"t={window} ({reduce}): relative error per frame", ", ".join(f"{e:.1e}" for e in errors))
    assert len(errors) == 10 and max(errors) <= 1e-4
    assert np.abs(streamed[-1] - last_alone).max() > 1e-3  # the earlier frames count


@pytest.mark.parametrize("window", [2, 4])
def test_the_sidecar_describes_the_state(trained_temporal, window):
    reduce, files = trained_temporal[window]
    sidecar = read_sidecar(files[0].path)
    assert (sidecar.temporal, sidecar.temporal_reduce) == (window, reduce)
    names = [(t.input, t.output) for t in sidecar.state]
    assert names[0] == ("state_fam_32", "state_fam_32_out")
    assert [t.shape for t in sidecar.state][:4] == [
        (1, window - 1, 32, 512),
        (1, window - 1, 32, 256),
        (1, window - 1, 32, 128),
        (1, window - 1, 32, 64),
    ]
    assert ("state_valid", "state_valid_out") in names if reduce == "mean" else len(names) == 4
    assert all(t.initial == 0.0 and t.dtype == "float32" for t in sidecar.state)
    graph = onnx.load(files[0].path).graph
    assert [i.name for i in graph.input] == ["input"] + [t.input for t in sidecar.state]
    assert [o.name for o in graph.output] == ["logits"] + [t.output for t in sidecar.state]
    props = {p.key: p.value for p in onnx.load(files[0].path).metadata_props}
    assert json.loads(props["fanet.temporal"]) == window  # a graph without its sidecar knows


@pytest.mark.parametrize("window", [2, 4])
def test_state_stays_fp32_and_every_graph_conforms(trained_temporal, window):
    _, files = trained_temporal[window]
    assert [f.variant for f in files] == ["fp32", "fp16", "int8", "int8_fp16", "int8_onnxruntime"]
    for exported in files:
        graph = read_model(exported.path)
        state = {t.input for t in read_sidecar(exported.path).state}
        state |= {t.output for t in read_sidecar(exported.path).state}
        types = infer_dtypes(graph)
        assert all(types[name] != FLOAT16 for name in state), exported.path
        island = set(attention_islands(graph.nodes, graph.constants()))
        readers = [node for node in graph.nodes if set(node.input) & state]
        assert readers and all(node.name in island for node in readers)  # the sums: FP32
        for node in graph.nodes:  # inside the islands (past the Casts into them) all FP32
            if node.name in island and node.op_type != "Cast":
                assert all(types.get(name) != FLOAT16 for name in node.input), node.name
        if exported.variant == "int8_onnxruntime":
            continue  # ONNX Runtime's CPU form: no TensorRT reads it
        sidecar = json.loads(Path(exported.path).with_suffix(".json").read_text())
        for version in versions_for_opset(graph.opset):
            assert check_graph(graph, version) == [], (exported.path, version)
        served = [f"{v[0]}.{v[1]}" for v in versions_for_opset(graph.opset)]
        assert sidecar["tensorrt_checked"] == served
    for exported in files[1:]:  # FP16 and INT8 graphs follow the FP32 graph's labels
        assert exported.agreement["argmax_agreement"] > 0.95, exported


def test_opset_13_temporal_graphs_conform_to_tensorrt_8_2(tmp_path):
    files = run_export(
        ExportConfig(
            random_weights=True,
            size=(64, 128),
            opset=13,
            temporal=3,
            fp16=True,
            output_dir=str(tmp_path),
        )
    )
    for exported in files:
        graph = read_model(exported.path)
        assert (8, 2) in versions_for_opset(graph.opset)
        for version in versions_for_opset(graph.opset):
            assert check_graph(graph, version) == [], (exported.path, version)


def test_a_dynamic_temporal_graph_starts_again_when_the_size_changes(tmp_path):
    files = run_export(
        ExportConfig(
            random_weights=True,
            size=None,
            temporal=2,
            temporal_reduce="sum",
            output_dir=str(tmp_path),
        )
    )
    small, large = render_scene(3, 64, 128)[0], render_scene(3, 96, 160)[0]
    with Segmenter.from_file(files[0].path, backend="onnxruntime") as seg:
        with seg.temporal_session() as session:
            fresh_large = session(large)
        with seg.temporal_session() as session:
            session(small)
            session(small)
            assert session.resets == 0
            after_cut = session(large)  # another size: the small frames' state is dropped
            assert session.resets == 1
        assert np.array_equal(after_cut, fresh_large)
