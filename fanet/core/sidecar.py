"""The sidecar ``<model>.json`` written beside every exported ONNX (Python 3.6 compatible).

The runtime and the engine builder read it as a ``Sidecar`` record to learn the
architecture, classes, input size, normalisation, precision and I/O tensor names of a
graph. The ONNX carries the same essentials in its ``metadata_props`` (``fanet.*`` keys),
so a graph copied without its sidecar still knows them.
"""

import json
import logging
import math
import os
from typing import Any, Dict, NamedTuple, Optional, Tuple

from fanet.core import strict_json
from fanet.core.errors import FanetError
from fanet.core.files import atomic_write, once_per_version, sha256_file

logger = logging.getLogger(__name__)

SIDECAR_FORMAT = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_NAME = "input"
PROPS_PREFIX = "fanet."


class MetadataError(FanetError):
    """A sidecar file is unreadable or inconsistent."""


class StateTensor(NamedTuple):
    """A tensor a temporal graph carries from frame to frame: the graph reads it as
    ``input``, writes its next value as ``output``; it starts at ``initial`` everywhere."""

    input: str
    output: str
    shape: Tuple[int, ...]
    dtype: str = "float32"
    initial: float = 0.0

    def to_json(self) -> Dict[str, Any]:
        return dict(self._asdict(), shape=list(self.shape))


PROVENANCE_TYPES: Dict[str, type] = {
    "fp32_sha256": str,
    "onnx_sha256": str,
    "checkpoint_sha256": str,
    "random_weights": bool,
    "consumer": str,
    "reference": str,
    "agreement": dict,
    "tensorrt_checked": list,
    "io_dtype": str,
}


def typed_fields(record: Dict[str, Any], types: Dict[str, type], origin: str) -> Dict[str, Any]:
    """The fields of ``record`` that ``types`` names and that are not null, each checked to
    be of its type (a bool is no int); ``MetadataError`` names the first that is not."""
    fields: Dict[str, Any] = {}
    for name, kind in types.items():
        value = record.get(name)
        if value is None:
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise MetadataError(
                "{}: {} must be {}, got {!r}".format(origin, name, kind.__name__, value)
            )
        fields[name] = value
    return fields


class Provenance(NamedTuple):
    """Where a graph came from and how it was checked: the sidecar's other fields. What
    only a precision's recipe writes (quantizer, calibration, float islands) is ``recipe``,
    kept as written."""

    fp32_sha256: Optional[str] = None  # the FP32 graph this one was made from
    onnx_sha256: Optional[str] = None  # this graph
    checkpoint_sha256: Optional[str] = None
    random_weights: bool = False
    consumer: Optional[str] = None  # who reads it: "tensorrt", "onnxruntime", ...
    reference: Optional[str] = None  # what it was compared with: "pytorch", "fp32 onnx"
    agreement: Dict[str, float] = {}
    tensorrt_checked: Tuple[str, ...] = ()  # the TensorRT versions it conforms to
    io_dtype: str = "float32"  # its image input and output (float16: --fp16-io)
    recipe: Dict[str, Any] = {}

    def to_json(self) -> Dict[str, Any]:
        record = dict(self.recipe)
        for name in PROVENANCE_TYPES:
            value = getattr(self, name)
            if value not in (None, (), {}):
                record[name] = list(value) if isinstance(value, tuple) else value
        return record

    @classmethod
    def from_json(cls, record: Dict[str, Any], origin: str) -> "Provenance":
        fields = typed_fields(record, PROVENANCE_TYPES, origin)
        if "tensorrt_checked" in fields:
            fields["tensorrt_checked"] = tuple(fields["tensorrt_checked"])
        if fields.get("io_dtype", "float32") not in ("float32", "float16"):
            raise MetadataError(
                "{}: io_dtype must be float32 or float16, got {!r}".format(
                    origin, fields["io_dtype"]
                )
            )
        recipe = {k: v for k, v in record.items() if k not in PROVENANCE_TYPES}
        return cls(recipe=recipe, **fields)


class Sidecar(NamedTuple):
    """What a graph needs to be fed and read, and where it came from (``provenance``)."""

    arch: str = "unknown"
    num_classes: int = 19
    input_size: Optional[Tuple[int, int]] = None  # None: dynamic, or not known
    dynamic: bool = False
    mean: Tuple[float, ...] = IMAGENET_MEAN
    std: Tuple[float, ...] = IMAGENET_STD
    precision: str = "fp32"
    output: str = "logits"  # "logits" (classes x H/8 x W/8) or "labels"
    output_stride: int = 8
    input_name: str = INPUT_NAME
    output_name: str = ""  # "": the output kind's name ("logits" or "labels")
    opset: Optional[int] = None
    fanet_version: Optional[str] = None
    format: int = SIDECAR_FORMAT
    max_batch: int = 1  # > 1: the batch axis is dynamic, up to this (serving, Triton)
    temporal: int = 1  # frames the attention spans (paper Sec. III-D); 1: single-frame
    temporal_reduce: Optional[str] = None  # "mean" or "sum" over the window
    state: Tuple[StateTensor, ...] = ()  # what a temporal graph carries between frames
    provenance: Provenance = Provenance()

    @property
    def output_tensor(self) -> str:
        return self.output_name or self.output

    def to_json(self) -> Dict[str, Any]:
        """The flat JSON object written to disk."""
        record = self.provenance.to_json()
        for name in ESSENTIAL_FIELDS:
            value = getattr(self, name)
            if name == "state":
                value = [tensor.to_json() for tensor in value]
            record[name] = list(value) if isinstance(value, tuple) else value
        record["output_name"] = self.output_tensor
        return record

    @classmethod
    def from_json(cls, record: Dict[str, Any], origin: str = "sidecar") -> "Sidecar":
        """Validate a flat JSON object; ``MetadataError`` names the first bad field."""
        fields: Dict[str, Any] = {}
        for name in ESSENTIAL_FIELDS:
            if name in record and record[name] is not None:
                fields[name] = _checked(name, record[name], origin)
        others = {k: v for k, v in record.items() if k not in ESSENTIAL_FIELDS}
        if fields.get("temporal", 1) > 1 and not fields.get("state"):
            raise MetadataError(
                "{}: temporal is {} but no state tensors are listed".format(
                    origin, fields["temporal"]
                )
            )
        return cls(provenance=Provenance.from_json(others, origin), **fields)

    def props(self) -> Dict[str, str]:
        """The essentials as ONNX ``metadata_props`` (JSON-encoded values)."""
        record = self.to_json()
        return {PROPS_PREFIX + name: json.dumps(record[name]) for name in ESSENTIAL_FIELDS}

    @classmethod
    def from_props(cls, props: Dict[str, str], origin: str) -> "Sidecar":
        """The record stored in an ONNX's ``metadata_props`` by ``props``."""
        record = {}
        for key, text in props.items():
            if key.startswith(PROPS_PREFIX):
                try:
                    record[key[len(PROPS_PREFIX) :]] = json.loads(text)
                except ValueError:
                    raise MetadataError("{}: {} is not JSON".format(origin, key)) from None
        return cls.from_json(record, origin)


ESSENTIAL_FIELDS = tuple(name for name in Sidecar._fields if name != "provenance")
_TYPES = {
    "arch": str,
    "num_classes": int,
    "dynamic": bool,
    "precision": str,
    "output": str,
    "output_stride": int,
    "input_name": str,
    "output_name": str,
    "opset": int,
    "fanet_version": str,
    "format": int,
    "temporal": int,
    "temporal_reduce": str,
    "max_batch": int,
}
STATE_DTYPES = ("float32",)


def _checked(name: str, value: Any, origin: str) -> Any:
    """``value`` of field ``name`` in its record type, or ``MetadataError``."""
    if name == "state":
        if not isinstance(value, list):
            raise MetadataError("{}: state must be a list, got {!r}".format(origin, value))
        return tuple(_state_tensor(entry, origin) for entry in value)
    if name in ("mean", "std"):
        if not (
            isinstance(value, list)
            and len(value) == 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise MetadataError("{}: {} must be 3 numbers, got {!r}".format(origin, name, value))
        values = tuple(float(v) for v in value)
        if not all(math.isfinite(v) for v in values) or (name == "std" and min(values) <= 0):
            raise MetadataError(
                "{}: {} must be finite{}, got {!r}".format(
                    origin, name, " and > 0" if name == "std" else "", value
                )
            )
        return values
    if name == "input_size":
        if not (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
        ):
            raise MetadataError(
                "{}: input_size must be [height, width], got {!r}".format(origin, value)
            )
        return (value[0], value[1])
    kind = _TYPES[name]
    well_typed = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not well_typed:
        raise MetadataError(
            "{}: {} must be {}, got {!r}".format(origin, name, kind.__name__, value)
        )
    if name in ("num_classes", "temporal", "max_batch") and value < 1:
        raise MetadataError("{}: {} must be at least 1, got {}".format(origin, name, value))
    if name == "temporal_reduce" and value not in ("mean", "sum"):
        raise MetadataError(
            "{}: temporal_reduce must be mean or sum, got {!r}".format(origin, value)
        )
    return value


def _state_tensor(entry: Any, origin: str) -> StateTensor:
    """One ``state`` entry, validated: names, a shape of positive sizes, float32, finite."""
    bad = "{}: a state entry must have input, output, shape, dtype, initial; got {!r}"
    if not isinstance(entry, dict) or not {"input", "output", "shape"} <= set(entry):
        raise MetadataError(bad.format(origin, entry))
    shape, initial = entry["shape"], entry.get("initial", 0.0)
    well_formed = (
        isinstance(entry["input"], str)
        and isinstance(entry["output"], str)
        and isinstance(shape, list)
        and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        and entry.get("dtype", "float32") in STATE_DTYPES
        and isinstance(initial, (int, float))
        and not isinstance(initial, bool)
        and math.isfinite(initial)
    )
    if not well_formed:
        raise MetadataError(bad.format(origin, entry))
    return StateTensor(
        entry["input"], entry["output"], tuple(shape), entry.get("dtype", "float32"), initial
    )


def sidecar_path(model_path: str) -> str:
    """``fanet18.onnx`` -> ``fanet18.json``."""
    return os.path.splitext(model_path)[0] + ".json"


def write_sidecar(model_path: str, sidecar: Sidecar, to: Optional[str] = None) -> str:
    """Atomically write ``sidecar`` beside ``model_path`` (or to ``to``); returns its path."""
    path = to or sidecar_path(model_path)
    with atomic_write(path, "w") as stream:
        strict_json.dump(sidecar.to_json(), stream, indent=2, sort_keys=True)
        stream.write("\n")
    return path


def read_sidecar(model_path: str, required: bool = False) -> Sidecar:
    """The sidecar of ``model_path`` (read and validated once per version of the file);
    else the ``fanet.*`` metadata of an ONNX; else the defaults with a warning
    (``MetadataError`` instead when ``required``)."""
    path = sidecar_path(model_path)
    if not os.path.isfile(path):
        return _sidecar_from_onnx(model_path, path, required)
    return _read_file(path)


@once_per_version
def _read_file(path: str) -> Sidecar:
    try:
        with open(path) as stream:
            loaded = json.load(stream)
    except (OSError, ValueError) as exc:
        raise MetadataError("cannot read sidecar {}: {}".format(path, exc)) from None
    if not isinstance(loaded, dict):
        raise MetadataError("sidecar {} does not hold a JSON object".format(path))
    return Sidecar.from_json(loaded, path)


def verify_sidecar(model_path: str, sidecar: Sidecar, model_sha256: Optional[str] = None) -> None:
    """Raise ``MetadataError`` when the sidecar records another graph's hash."""
    recorded = sidecar.provenance.onnx_sha256
    if not recorded:
        return
    actual = model_sha256 or sha256_file(model_path)
    if actual != recorded:
        raise MetadataError(
            "{} describes another graph than {} (sha256 {}..., the file has {}...): "
            "re-export, or remove the stale sidecar".format(
                sidecar_path(model_path), model_path, recorded[:12], actual[:12]
            )
        )


def _sidecar_from_onnx(model_path: str, path: str, required: bool) -> Sidecar:
    if model_path.lower().endswith(".onnx") and os.path.isfile(model_path):
        from fanet.core.onnx_graph import OnnxReadError, read_metadata_props

        try:
            props = read_metadata_props(model_path)
        except OnnxReadError as exc:
            raise MetadataError(str(exc)) from None
        if any(key.startswith(PROPS_PREFIX) for key in props):
            logger.info("no sidecar %s: using the metadata inside %s", path, model_path)
            return Sidecar.from_props(props, model_path)
    if required:
        raise MetadataError("no sidecar {} beside {}".format(path, model_path))
    logger.warning(
        "no sidecar %s: assuming ImageNet normalisation, 19 classes, logits at 1/8", path
    )
    return Sidecar()
