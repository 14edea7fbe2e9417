"""An export's files as one object: found in a folder, the graph each backend runs, the
made-from check, and what is missing named with the export that makes it."""

import logging
import os
import time

import pytest

from fanet.core.artefact_set import ArtefactSet, variant_of
from fanet.core.errors import ConfigError
from fanet.core.sidecar import Provenance, Sidecar, write_sidecar


def _export(folder, stem, variants, fp32_sha="aa", made_from="aa"):
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
        write_sidecar(graph, Sidecar(precision=precision, provenance=provenance))
    return ArtefactSet(str(folder / stem))


FP32_INT8 = [("fp32", ""), ("int8", "_int8")]


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
