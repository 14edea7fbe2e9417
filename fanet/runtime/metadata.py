"""The sidecar ``<model>.json`` written beside every exported ONNX (Python 3.6 compatible).

The runtime and the engine builder read it to learn the architecture, classes, input
size, normalisation and precision of a graph.
"""

import json
import logging
import os
from typing import Any, Dict, Optional

from fanet.errors import FanetError
from fanet.runtime.files import atomic_write

logger = logging.getLogger(__name__)

SIDECAR_FORMAT = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_NAME = "input"
DEFAULTS = {
    "format": SIDECAR_FORMAT,
    "arch": "unknown",
    "num_classes": 19,
    "mean": list(IMAGENET_MEAN),
    "std": list(IMAGENET_STD),
    "precision": "fp32",
    "output": "logits",
    "output_stride": 8,
    "input_name": INPUT_NAME,
}


# The graphs one export writes, by variant. Each sidecar's ``consumer`` says who reads it:
# ``_int8`` is TensorRT's Q/DQ form (FP32 float parts: weakly typed builds on 8.x-10.x),
# ``_int8_fp16`` the same with FP16 float parts (strongly typed builds, opset >= 19),
# ``_int8_onnxruntime`` the form ONNX Runtime's CPU provider runs as integer kernels.
VARIANT_SUFFIXES = {
    "fp32": "",
    "fp16": "_fp16",
    "int8": "_int8",
    "int8_fp16": "_int8_fp16",
    "int8_onnxruntime": "_int8_onnxruntime",
}
CONSUMERS = {
    "fp32": "tensorrt, onnxruntime",
    "fp16": "tensorrt (strongly typed), onnxruntime",
    "int8": "tensorrt",
    "int8_fp16": "tensorrt (strongly typed)",
    "int8_onnxruntime": "onnxruntime",
}


def variant_for(backend: str, precision: str) -> str:
    """The exported graph a ``backend`` runs for ``precision``."""
    return "int8_onnxruntime" if backend == "onnxruntime" and precision == "int8" else precision


class MetadataError(FanetError):
    """A sidecar file is unreadable or inconsistent."""


def sidecar_path(model_path: str) -> str:
    """``fanet18.onnx`` -> ``fanet18.json``."""
    return os.path.splitext(model_path)[0] + ".json"


def write_sidecar(model_path: str, metadata: Dict[str, Any]) -> str:
    """Atomically write ``metadata`` (merged over the defaults) beside ``model_path``."""
    path = sidecar_path(model_path)
    record = dict(DEFAULTS)
    record.update(metadata)
    with atomic_write(path, "w") as stream:
        json.dump(record, stream, indent=2, sort_keys=True)
        stream.write("\n")
    return path


def read_sidecar(model_path: str, required: bool = False) -> Dict[str, Any]:
    """The sidecar of ``model_path`` over the defaults; defaults with a warning if absent."""
    path = sidecar_path(model_path)
    record = dict(DEFAULTS)
    if not os.path.isfile(path):
        if required:
            raise MetadataError("no sidecar {} beside {}".format(path, model_path))
        logger.warning(
            "no sidecar %s: assuming ImageNet normalisation, 19 classes, logits at 1/8", path
        )
        return record
    try:
        with open(path) as stream:
            loaded = json.load(stream)
    except (OSError, ValueError) as exc:
        raise MetadataError("cannot read sidecar {}: {}".format(path, exc)) from None
    if not isinstance(loaded, dict):
        raise MetadataError("sidecar {} does not hold a JSON object".format(path))
    record.update(loaded)
    return record


def read_json_or_none(path: str) -> Optional[Dict[str, Any]]:
    """A JSON object from ``path``, or None when the file is missing or unreadable."""
    try:
        with open(path) as stream:
            loaded = json.load(stream)
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def variant_of(onnx_path: str) -> str:
    """``out/fanet18_512x1024_int8_fp16.onnx`` -> ``"int8_fp16"`` (``"fp32"`` for none)."""
    stem = os.path.splitext(onnx_path)[0]
    by_length = sorted(VARIANT_SUFFIXES.items(), key=lambda item: len(item[1]), reverse=True)
    return next(variant for variant, suffix in by_length if stem.endswith(suffix))


def export_stem(onnx_path: str) -> str:
    """``out/fanet18_512x1024_fp16.onnx`` -> ``out/fanet18_512x1024``."""
    stem = os.path.splitext(onnx_path)[0]
    suffix = VARIANT_SUFFIXES[variant_of(onnx_path)]
    return stem[: len(stem) - len(suffix)]


def onnx_variants(onnx_path: str) -> Dict[str, str]:
    """The exported precisions beside ``onnx_path``: {"fp32": ..., "fp16": ..., "int8": ...}."""
    stem = export_stem(onnx_path)
    found = {}
    for variant, suffix in VARIANT_SUFFIXES.items():
        candidate = stem + suffix + ".onnx"
        if os.path.isfile(candidate):
            found[variant] = candidate
    return found
