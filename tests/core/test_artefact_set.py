"""An export's files as one object: found in a folder, the graph each backend runs, the
made-from check, and what is missing named with the export that makes it."""

import logging
import os
import time

import pytest

from fanet.core.artefact_set import ArtefactSet, variant_of
from fanet.core.errors import ConfigError
from fanet.core.sidecar import Provenance, Sidecar, StateTensor, write_sidecar


def _export(folder, stem, variants, fp32_sha="aa", made_from="aa", **essentials):
    """Graph files (their bytes do not matter here) with sidecars saying what made them."""
    for variant, suffix in variants:
        graph = str(folder / (stem + suffix + ".onnx"))
        with open(graph, "wb") as stream:
            stream.write(b"graph")
        precision = "fp32" if variant == "fp32" else variant.split("_")[0]
        provenance = Provenance(
            onnx_sha256=fp32_sha if variant == "fp32" else "bb",
            fp32_sha256=fp32_sha if variant == "fp32" else made_from,
        )
        sidecar = Sidecar(precision=precision, provenance=provenance, **essentials)
        write_sidecar(graph, sidecar)
    return ArtefactSet(str(folder / stem))


FP32_INT8 = [("fp32", ""), ("int8", "_int8")]
FP32_ONLY = [("fp32", "")]


def test_each_backend_gets_its_graph_of_a_precision(tmp_path, caplog):
    found = _export(tmp_path, "m", FP32_INT8 + [("fp16", "_fp16")])
    assert found.graph_for("tensorrt", "int8") == str(tmp_path / "m.onnx")
    assert found.graph_for("onnxruntime", "fp16") == str(tmp_path / "m_fp16.onnx")
    with caplog.at_level(logging.WARNING):
        assert found.graph_for("onnxruntime", "int8") == str(tmp_path / "m_int8.onnx")
    assert "running TensorRT's INT8 form" in caplog.text


def test_a_missing_graph_names_the_export_that_makes_it(tmp_path):
    found = _export(tmp_path, "m", [("fp32", "")])
    with pytest.raises(
        ConfigError, match=r"no fp16 graph beside .*m\.onnx: run fanet-export --fp16"
    ):
        found.graph_for("onnxruntime", "fp16")


def test_a_graph_made_from_another_fp32_graph_is_refused(tmp_path):
    found = _export(tmp_path, "m", FP32_INT8, fp32_sha="aa", made_from="cc")
    assert found.made_from("int8") == "cc"
    with pytest.raises(ConfigError, match="made from another FP32 graph"):
        found.graph_for("onnxruntime", "int8")


def test_any_member_names_the_set_and_the_newest_export_is_found(tmp_path):
    older = _export(tmp_path, "a", FP32_INT8)
    past = time.time() - 60
    os.utime(older.graph("fp32"), (past, past))
    newer = _export(tmp_path, "b", [("fp32", "")])
    assert ArtefactSet.of(str(tmp_path / "a_int8.onnx")).stem == older.stem
    assert variant_of(str(tmp_path / "a_int8_fp16.onnx")) == "int8_fp16"
    assert ArtefactSet.find(str(tmp_path)).stem == newer.stem
    assert ArtefactSet.find(str(tmp_path / "nothing")) is None


def test_the_files_of_a_set_include_its_caches_and_engines(tmp_path):
    found = ArtefactSet(str(tmp_path / "m"))
    assert found.tensorrt_cache in found.files() and found.ranges_cache in found.files()
    assert str(tmp_path / "m_fp16.json") in found.files()
    assert found.engine("fp16") == str(tmp_path / "m_fp16.engine")


def _aged(found, seconds):
    when = time.time() - seconds
    os.utime(found.graph("fp32"), (when, when))
    return found


def test_the_plain_export_of_the_default_size_is_chosen_and_the_others_named(tmp_path, caplog):
    """The README's step 4 leaves a newer temporal export beside the plain one: a command
    given no model runs the plain one, and says which and what else is there."""
    plain = _aged(_export(tmp_path, "fanet18_512x1024", FP32_ONLY, input_size=(512, 1024)), 90)
    _aged(_export(tmp_path, "fanet18_256x512", FP32_ONLY, input_size=(256, 512)), 30)
    temporal = _export(
        tmp_path,
        "fanet18_512x1024_t2",
        FP32_ONLY,
        input_size=(512, 1024),
        temporal=2,
        state=(StateTensor("state_in", "state_out", (1, 4)),),
    )
    with caplog.at_level(logging.INFO):
        assert ArtefactSet.find(str(tmp_path)).stem == plain.stem
    line = [r.message for r in caplog.records if r.message.startswith("model:")][-1]
    assert "also there: fanet18_256x512.onnx, fanet18_512x1024_t2.onnx: pass --onnx" in line
    assert ArtefactSet.find(str(tmp_path), temporal=2).stem == temporal.stem
    assert ArtefactSet.find(str(tmp_path), temporal=4) is None


def test_a_special_export_is_chosen_when_it_is_the_only_one(tmp_path):
    labels = _export(tmp_path, "m_labels", FP32_ONLY, output="labels", input_size=(512, 1024))
    assert ArtefactSet.find(str(tmp_path)).stem == labels.stem
