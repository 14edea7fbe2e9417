"""What an engine was built for, and the check before deserialising it (Python 3.6).

A serialized TensorRT engine only runs with the TensorRT version and GPU model it was
built with. Each ``X.engine`` has an ``X.engine.json`` record holding the TensorRT
version, GPU name and compute capability, precision, input shapes and the ONNX hash.
"""

import hashlib
import json
import os
from typing import Any, Dict, List, NamedTuple, Optional

from fanet.core import strict_json
from fanet.core.errors import FanetError
from fanet.core.files import atomic_write, once_per_version
from fanet.core.sidecar import MetadataError, Sidecar, typed_fields


class EngineError(FanetError):
    """An engine cannot be built, read or run."""


class EngineMismatchError(EngineError):
    """An engine was built for another TensorRT version or GPU."""


class Machine(NamedTuple):
    """What an engine is bound to: it runs only where all three are the same."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str


_TYPES: Dict[str, type] = {
    "tensorrt_version": str,
    "gpu_name": str,
    "compute_capability": str,
    "precision": str,
    "onnx_path": str,
    "onnx_sha256": str,
    "input_shape": list,
    "profile": dict,
    "profiles": dict,
    "builder_flags": list,
    "strongly_typed": bool,
    "implicit_int8": bool,
    "workspace_mib": int,
    "dla_core": int,
    "fanet_version": str,
}


class EngineRecord(NamedTuple):
    """``X.engine.json``: the machine an engine was built on, what it was built from and
    how, and the sidecar of the graph it runs."""

    tensorrt_version: Optional[str] = None
    gpu_name: Optional[str] = None
    compute_capability: Optional[str] = None
    precision: Optional[str] = None
    onnx_path: Optional[str] = None
    onnx_sha256: Optional[str] = None
    input_shape: Optional[List[int]] = None  # [1, 3, H, W]; None: dynamic
    profile: Optional[Dict[str, List[int]]] = None  # the image input's min/opt/max
    profiles: Optional[Dict[str, Dict[str, List[int]]]] = None  # every input's
    builder_flags: Optional[List[str]] = None
    strongly_typed: Optional[bool] = None
    implicit_int8: Optional[bool] = None
    workspace_mib: Optional[int] = None
    dla_core: Optional[int] = None
    fanet_version: Optional[str] = None
    sidecar: Optional[Sidecar] = None

    @property
    def machine(self) -> Machine:
        return Machine(
            self.tensorrt_version or "", self.gpu_name or "", self.compute_capability or ""
        )

    def to_json(self) -> Dict[str, Any]:
        record = {name: getattr(self, name) for name in _TYPES}
        record["sidecar"] = self.sidecar.to_json() if self.sidecar is not None else None
        return record

    @classmethod
    def from_json(cls, record: Dict[str, Any], origin: str) -> "EngineRecord":
        """Validate a record; ``MetadataError`` names the first field of the wrong type."""
        fields = typed_fields(record, _TYPES, origin)
        if record.get("sidecar") is not None:
            if not isinstance(record["sidecar"], dict):
                raise MetadataError("{}: sidecar must be an object".format(origin))
            fields["sidecar"] = Sidecar.from_json(record["sidecar"], origin)
        return cls(**fields)


def record_path(engine_path: str) -> str:
    """``fanet18_fp16.engine`` -> ``fanet18_fp16.engine.json``."""
    return engine_path + ".json"


def write_record(engine_path: str, record: EngineRecord, to: Optional[str] = None) -> None:
    """Write ``engine_path``'s record (to ``to`` instead, for a staged write)."""
    with atomic_write(to or record_path(engine_path), "w") as stream:
        strict_json.dump(record.to_json(), stream, indent=2, sort_keys=True)
        stream.write("\n")


def read_record(engine_path: str) -> Optional[EngineRecord]:
    """The engine's record, validated (read once per version of the file); None where
    there is none or it is not a JSON object."""
    path = record_path(engine_path)
    return _read_file(path) if os.path.isfile(path) else None


@once_per_version
def _read_file(path: str) -> Optional[EngineRecord]:
    loaded = strict_json.read_object(path)
    return None if loaded is None else EngineRecord.from_json(loaded, path)


def check_record(record: Optional[EngineRecord], machine: Machine, path: str) -> EngineRecord:
    """``record``, or ``EngineMismatchError`` naming the first field that differs from
    ``machine`` (or saying there is no record)."""
    if record is None:
        raise EngineMismatchError(
            "{} has no record {}: cannot tell which TensorRT and GPU built it; rebuild it "
            "with fanet-build".format(path, record_path(path))
        )
    for field, built, here in zip(Machine._fields, record.machine, machine):
        if built != here:
            raise EngineMismatchError(
                "{} was built for {} {!r}, this machine has {!r}: rebuild with fanet-build "
                "(or rebuild=True / --rebuild)".format(
                    path, field.replace("_", " "), built or None, here
                )
            )
    return record


def cache_key(onnx_sha256: str, precision: str, shapes: Any, machine: Machine) -> str:
    """A short stable key for the engine cache: ONNX, precision, shapes and machine."""
    fields = [onnx_sha256, precision, json.dumps(shapes, sort_keys=True)] + list(machine)
    return hashlib.sha256("|".join(fields).encode()).hexdigest()[:16]


def default_cache_dir() -> str:
    """``$FANET_ENGINE_CACHE`` or ``~/.cache/fanet/engines``."""
    return os.environ.get(
        "FANET_ENGINE_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "fanet", "engines")
    )
