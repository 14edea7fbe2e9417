"""What an engine was built for, and the check before deserialising it (Python 3.6).

A serialized TensorRT engine only runs with the TensorRT version and GPU model it was
built with. Each ``X.engine`` has an ``X.engine.json`` record holding the TensorRT
version, GPU name and compute capability, precision, input shapes and the ONNX hash.
"""

import hashlib
import json
import os
from typing import Any, Dict, Optional

from fanet.core import strict_json
from fanet.core.errors import FanetError
from fanet.core.files import atomic_write
from fanet.core.sidecar import read_json_or_none

# Fields that must equal this machine's before an engine is deserialised.
MACHINE_FIELDS = ("tensorrt_version", "gpu_name", "compute_capability")


class EngineError(FanetError):
    """An engine cannot be built, read or run."""


class EngineMismatchError(EngineError):
    """An engine was built for another TensorRT version or GPU."""


def record_path(engine_path: str) -> str:
    """``fanet18_fp16.engine`` -> ``fanet18_fp16.engine.json``."""
    return engine_path + ".json"


def write_record(engine_path: str, record: Dict[str, Any], to: Optional[str] = None) -> None:
    """Write ``engine_path``'s record (to ``to`` instead, for a staged write)."""
    with atomic_write(to or record_path(engine_path), "w") as stream:
        strict_json.dump(record, stream, indent=2, sort_keys=True)
        stream.write("\n")


def read_record(engine_path: str) -> Optional[Dict[str, Any]]:
    """The engine's record, or None when there is none."""
    return read_json_or_none(record_path(engine_path))


def check_record(record: Optional[Dict[str, Any]], machine: Dict[str, Any], path: str) -> None:
    """Raise ``EngineMismatchError`` naming the first field that differs from ``machine``."""
    if record is None:
        raise EngineMismatchError(
            "{} has no record {}: cannot tell which TensorRT and GPU built it; rebuild it "
            "with fanet-build".format(path, record_path(path))
        )
    for field in MACHINE_FIELDS:
        built, here = record.get(field), machine.get(field)
        if built != here:
            raise EngineMismatchError(
                "{} was built for {} {!r}, this machine has {!r}: rebuild with fanet-build "
                "(or rebuild=True / --rebuild)".format(path, field.replace("_", " "), built, here)
            )


def cache_key(onnx_sha256: str, precision: str, shapes: Any, machine: Dict[str, Any]) -> str:
    """A short stable key for the engine cache: ONNX, precision, shapes and machine."""
    fields = [onnx_sha256, precision, json.dumps(shapes, sort_keys=True)]
    fields += [str(machine.get(field)) for field in MACHINE_FIELDS]
    return hashlib.sha256("|".join(fields).encode()).hexdigest()[:16]


def default_cache_dir() -> str:
    """``$FANET_ENGINE_CACHE`` or ``~/.cache/fanet/engines``."""
    return os.environ.get(
        "FANET_ENGINE_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "fanet", "engines")
    )
