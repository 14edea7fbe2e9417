"""The sidecar as a typed record: round trips through JSON and ONNX metadata, validation."""

import json

import pytest

from fanet.core.sidecar import MetadataError, Provenance, Sidecar, read_sidecar, write_sidecar

WRITTEN = {
    "arch": "fanet34",
    "num_classes": 7,
    "input_size": [256, 512],
    "dynamic": False,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
    "precision": "int8",
    "output": "labels",
    "output_stride": 1,
    "opset": 17,
    "fanet_version": "0.2.0",
    "agreement": {"argmax_agreement": 0.998},
    "tensorrt_checked": ["8.6", "10.3"],
}


def test_json_round_trip_keeps_every_field(tmp_path):
    model = tmp_path / "m.onnx"
    write_sidecar(str(model), Sidecar.from_json(WRITTEN))
    on_disk = json.loads((tmp_path / "m.json").read_text())
    assert {k: on_disk[k] for k in WRITTEN} == WRITTEN
    assert on_disk["output_name"] == "labels" and on_disk["input_name"] == "input"
    sidecar = read_sidecar(str(model))
    assert sidecar.input_size == (256, 512) and sidecar.mean == (0.5, 0.5, 0.5)
    assert sidecar.provenance.tensorrt_checked == ("8.6", "10.3")
    assert sidecar.provenance.agreement == {"argmax_agreement": 0.998}


def test_provenance_is_typed_and_keeps_what_a_recipe_adds(tmp_path):
    recipe = {"quantizer": "q", "calibration": {"count": 4}}
    sidecar = Sidecar.from_json(dict(WRITTEN, fp32_sha256="ab", io_dtype="float16", **recipe))
    assert sidecar.provenance.fp32_sha256 == "ab" and sidecar.provenance.io_dtype == "float16"
    assert sidecar.provenance.recipe == recipe
    with pytest.raises(MetadataError, match="io_dtype must be float32 or float16"):
        Sidecar.from_json(dict(WRITTEN, io_dtype="int8"))
    with pytest.raises(MetadataError, match="fp32_sha256 must be str"):
        Sidecar.from_json(dict(WRITTEN, fp32_sha256=12))


def test_metadata_props_carry_the_essentials_only():
    sidecar = Sidecar.from_json(WRITTEN)
    props = sidecar.props()
    assert all(key.startswith("fanet.") for key in props) and "fanet.agreement" not in props
    back = Sidecar.from_props(props, "m.onnx")
    empty = Provenance()
    assert back._replace(provenance=empty) == sidecar._replace(
        provenance=empty, output_name="labels"
    )


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("num_classes", "19", "num_classes must be int"),
        ("num_classes", 0, "num_classes must be at least 1"),
        ("input_size", [512], r"input_size must be \[height, width\]"),
        ("mean", [0.4, "x", 0.4], "mean must be 3 numbers"),
        ("dynamic", "yes", "dynamic must be bool"),
        ("std", [0, 0, 0], "std must be finite and > 0"),
        ("mean", [0.5, 0.5, float("inf")], "mean must be finite"),
        ("opset", True, "opset must be int"),
    ],
)
def test_bad_fields_are_named(tmp_path, field, value, message):
    (tmp_path / "m.json").write_text(json.dumps(dict(WRITTEN, **{field: value})))
    with pytest.raises(MetadataError, match="m.json: " + message):
        read_sidecar(str(tmp_path / "m.onnx"))
