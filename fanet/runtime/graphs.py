"""Which exported graph a backend runs for a precision (Python 3.6 compatible).

An export is a set of sibling graphs (``X.onnx``, ``X_fp16.onnx``, ``X_int8.onnx``,
``X_int8_fp16.onnx``, ``X_int8_onnxruntime.onnx``). Given any one of them, a backend and a
precision, :func:`graph_for` finds the one to run, or refuses in one line; the CLI's
``--precision`` and ``Segmenter.from_file(..., precision=...)`` both go through it.
"""

import logging
from typing import Optional

from fanet.core.errors import ConfigError
from fanet.core.sidecar import (
    onnx_variants,
    read_json_or_none,
    read_sidecar,
    sidecar_path,
    variant_for,
)

logger = logging.getLogger(__name__)

EXPORT_FLAGS = {"fp32": "", "fp16": " --fp16", "int8": " --int8 --calib-data DIR"}


def graph_for(onnx_path: str, backend: str, precision: Optional[str]) -> str:
    """The graph beside ``onnx_path`` that ``backend`` runs for ``precision`` (None: the
    file as given). TensorRT builds every precision from the set, so it gets the FP32
    graph; ONNX Runtime runs the precision's own graph (for INT8 its CPU form, else
    TensorRT's with a warning). A sibling made from another FP32 graph is refused."""
    if precision is None:
        return onnx_path
    variants = onnx_variants(onnx_path)
    wanted = "fp32" if backend == "tensorrt" else variant_for(backend, precision)
    if wanted == "int8_onnxruntime" and wanted not in variants and "int8" in variants:
        logger.warning("no %s graph: running TensorRT's INT8 form (slower on ONNX Runtime)", wanted)
        wanted = "int8"
    if wanted not in variants:
        raise ConfigError(
            "no {} graph beside {}: run fanet-export{}".format(
                wanted, onnx_path, EXPORT_FLAGS.get(precision, "")
            )
        )
    if wanted != "fp32" and "fp32" in variants:
        check_made_from(variants[wanted], variants["fp32"])
    return variants[wanted]


def check_made_from(graph: str, fp32: str) -> None:
    """Refuse a lower-precision graph made from another FP32 graph than the one beside."""
    made_from = read_sidecar(graph).details.get("fp32_sha256")
    beside = (read_json_or_none(sidecar_path(fp32)) or {}).get("onnx_sha256")
    if made_from and beside and made_from != beside:
        raise ConfigError(
            "{} was made from another FP32 graph than {}: export the set again".format(graph, fp32)
        )
