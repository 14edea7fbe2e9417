"""Engine records: mismatches name the field; the cache key follows every input."""

import pytest

from fanet.core.engine_record import (
    EngineMismatchError,
    cache_key,
    check_record,
    read_record,
    record_path,
    write_record,
)

MACHINE = {"tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7"}


def test_record_round_trip(tmp_path):
    engine = str(tmp_path / "fanet18_fp16.engine")
    write_record(engine, dict(MACHINE, precision="fp16"))
    assert record_path(engine).endswith("fanet18_fp16.engine.json")
    assert read_record(engine)["precision"] == "fp16"
    check_record(read_record(engine), MACHINE, engine)


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("tensorrt_version", "8.6.1", "tensorrt version '8.6.1', this machine has '10.3.0'"),
        ("gpu_name", "NVIDIA GeForce RTX 2080 Ti", "gpu name"),
        ("compute_capability", "7.5", "compute capability '7.5'"),
    ],
)
def test_mismatch_names_the_field(field, value, words):
    record = dict(MACHINE, **{field: value})
    with pytest.raises(EngineMismatchError, match=words):
        check_record(record, MACHINE, "x.engine")


def test_missing_record_is_refused(tmp_path):
    with pytest.raises(EngineMismatchError, match="no record"):
        check_record(read_record(str(tmp_path / "x.engine")), MACHINE, "x.engine")


def test_cache_key():
    key = cache_key("abc", "fp16", [512, 1024], MACHINE)
    assert key == cache_key("abc", "fp16", [512, 1024], dict(MACHINE))
    assert (
        len(
            {
                key,
                cache_key("abd", "fp16", [512, 1024], MACHINE),
                cache_key("abc", "int8", [512, 1024], MACHINE),
                cache_key("abc", "fp16", [1024, 2048], MACHINE),
                cache_key("abc", "fp16", [512, 1024], dict(MACHINE, gpu_name="x")),
            }
        )
        == 5
    )
