"""Engine records: typed and validated on read; mismatches name the field; the cache key
follows every input."""

import json

import pytest

from fanet.core.engine_record import (
    EngineMismatchError,
    EngineRecord,
    Machine,
    cache_key,
    check_record,
    read_record,
    record_path,
    write_record,
)
from fanet.core.sidecar import MetadataError, Sidecar

MACHINE = Machine("10.3.0", "Orin", "8.7")


def test_record_round_trip(tmp_path):
    engine = str(tmp_path / "fanet18_fp16.engine")
    sidecar = Sidecar(
        arch="fanet18", input_size=(512, 1024), precision="fp16", output_name="logits"
    )
    write_record(engine, EngineRecord(*MACHINE, precision="fp16", sidecar=sidecar))
    assert record_path(engine).endswith("fanet18_fp16.engine.json")
    assert read_record(engine).precision == "fp16"
    assert read_record(engine).sidecar == sidecar
    assert check_record(read_record(engine), MACHINE, engine).machine == MACHINE


def test_a_field_of_the_wrong_type_is_named_on_read(tmp_path):
    engine = tmp_path / "x.engine"
    record_file = tmp_path / "x.engine.json"
    record_file.write_text(json.dumps({"precision": "fp16", "workspace_mib": "256"}))
    with pytest.raises(MetadataError, match="workspace_mib must be int, got '256'"):
        read_record(str(engine))


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("tensorrt_version", "8.6.1", "tensorrt version '8.6.1', this machine has '10.3.0'"),
        ("gpu_name", "NVIDIA GeForce RTX 2080 Ti", "gpu name"),
        ("compute_capability", "7.5", "compute capability '7.5'"),
    ],
)
def test_mismatch_names_the_field(field, value, words):
    record = EngineRecord(*MACHINE)._replace(**{field: value})
    with pytest.raises(EngineMismatchError, match=words):
        check_record(record, MACHINE, "x.engine")


def test_missing_record_is_refused(tmp_path):
    with pytest.raises(EngineMismatchError, match="no record"):
        check_record(read_record(str(tmp_path / "x.engine")), MACHINE, "x.engine")


def test_cache_key():
    key = cache_key("abc", "fp16", [512, 1024], MACHINE)
    assert key == cache_key("abc", "fp16", [512, 1024], Machine(*MACHINE))
    assert (
        len(
            {
                key,
                cache_key("abd", "fp16", [512, 1024], MACHINE),
                cache_key("abc", "int8", [512, 1024], MACHINE),
                cache_key("abc", "fp16", [1024, 2048], MACHINE),
                cache_key("abc", "fp16", [512, 1024], MACHINE._replace(gpu_name="x")),
            }
        )
        == 5
    )
