"""OpenVINO backend: Intel and AMD CPUs, Intel integrated GPUs and NPUs (Python 3.6 syntax;
OpenVINO itself needs a newer Python: the ``openvino`` extra).

One graph serves TensorRT and the CPU: INT8 runs the TensorRT Q/DQ graph as exported
(``_int8.onnx``), which OpenVINO turns into integer kernels itself, after one rewrite that
keeps them exact (``openvino_lowering``). FP32 runs the FP32
graph in FP32 (OpenVINO would otherwise pick BF16 on processors that have it); FP16 runs
it with FP16 inference precision on the devices that have FP16 (Intel GPUs, NPUs), and
is refused, saying so, on the others. Compiled models are cached on disk (OpenVINO's
model cache) under ``openvino/<version>/<device>`` of the engine cache's folder, so a
second start skips compilation. A stream asks for the latency hint, a batch for
throughput.
"""

import logging
import os
from typing import Any, Dict, Optional, Set

import numpy as np

from fanet.core.engine_record import default_cache_dir
from fanet.core.errors import require
from fanet.core.sidecar import read_sidecar
from fanet.runtime.backend import Backend, BackendError, TensorSpec
from fanet.runtime.openvino_lowering import split_concatenated_convolutions
from fanet.runtime.options import OpenVinoOptions

logger = logging.getLogger(__name__)

DEVICES = ("CPU", "GPU", "NPU", "AUTO")
HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT"}
_TYPES = {"f32": np.float32, "f16": np.float16, "i32": np.int32, "i64": np.int64}


class OpenVinoBackend(Backend):
    """Runs an ONNX file with OpenVINO on ``device`` (``DEVICES``)."""

    name = "openvino"

    def __init__(
        self,
        path: str,
        device: str = "CPU",
        precision: str = "fp32",
        options: Optional[OpenVinoOptions] = None,
    ) -> None:
        super().__init__()
        options = options or OpenVinoOptions()
        openvino = require("openvino", "openvino")
        core = openvino.Core()
        device = device.upper()
        if device not in DEVICES:
            raise BackendError(
                "unknown openvino device {!r}; choose {}".format(device, ", ".join(DEVICES))
            )
        if device != "AUTO" and not any(
            found.split(".")[0] == device for found in core.available_devices
        ):
            raise BackendError(
                "OpenVINO here has no {} (it has {})".format(
                    device, ", ".join(core.available_devices) or "no device"
                )
            )
        computes = _capabilities(core, device)
        if precision == "fp16" and "FP16" not in computes:
            raise BackendError(
                "the {} here has no FP16 (it computes {}): run fp32 or int8 on it".format(
                    device, ", ".join(c for c in ("FP32", "BF16", "INT8") if c in computes)
                )
            )
        config: Dict[str, Any] = {
            "PERFORMANCE_HINT": HINTS[options.hint],
            "INFERENCE_PRECISION_HINT": "f16" if precision == "fp16" else "f32",
            "CACHE_DIR": options.cache_dir or model_cache_dir(openvino.__version__, device),
        }
        if options.threads and device in ("CPU", "AUTO"):
            config["INFERENCE_NUM_THREADS"] = options.threads
        try:
            source = _compiled_form(core, path, precision)
            self._compiled = core.compile_model(source, device, config)
        except Exception as exc:  # OpenVINO raises RuntimeError with its own text
            raise BackendError(
                "OpenVINO {} cannot compile {} for {}: {}".format(
                    openvino.__version__, path, device, str(exc).strip().splitlines()[0]
                )
            ) from None
        self._request = self._compiled.create_infer_request()
        self.device = device
        self.precision = precision
        self.input_specs = [_spec(port) for port in self._compiled.inputs]
        self.output_specs = [_spec(port) for port in self._compiled.outputs]
        logger.debug("openvino: %s on %s", path, self._compiled.get_property("EXECUTION_DEVICES"))

    def infer(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        feed = self.host_feed(inputs)
        self._request.infer(self._with_state(feed))
        outputs = {
            spec.name: self._request.get_tensor(spec.name).data.copy() for spec in self.output_specs
        }
        return self._carry_state(outputs)

    def _release(self) -> None:
        self._request = None
        self._compiled = None


def _compiled_form(core: Any, path: str, precision: str) -> Any:
    """What to compile: for INT8 the read graph, rewritten so that OpenVINO computes it as
    written; else the path, so that a model-cache hit skips reading the ONNX."""
    if precision != "int8":
        return path
    from openvino import opset13

    model = core.read_model(path)
    split_concatenated_convolutions(model, opset13)
    return model


def _spec(port: Any) -> TensorSpec:
    shape = tuple(
        dimension.get_length() if dimension.is_static else None
        for dimension in port.get_partial_shape()
    )
    dtype = _TYPES.get(port.get_element_type().get_type_name(), np.float32)
    return TensorSpec(port.get_any_name(), shape, np.dtype(dtype))


def _capabilities(core: Any, device: str) -> Set[str]:
    """What ``device`` computes (FP32, FP16, BF16, INT8, ...); for AUTO, any device here."""
    devices = core.available_devices if device == "AUTO" else [device]
    return {
        found for name in devices for found in core.get_property(name, "OPTIMIZATION_CAPABILITIES")
    }


def model_cache_dir(version: str, device: str) -> str:
    """Where OpenVINO keeps compiled models: beside the engine cache, one folder per
    OpenVINO version and device (OpenVINO keys each blob by model, device and settings)."""
    release = version.split("-", maxsplit=1)[0]
    return os.path.join(default_cache_dir(), "openvino", release, device.lower())


def open_openvino(
    path: str, device: Optional[str], precision: Optional[str], options: OpenVinoOptions
) -> OpenVinoBackend:
    """The registry's opener: the CPU unless ``device`` names another, the precision from
    the sidecar unless given."""
    return OpenVinoBackend(
        path,
        device=device or "CPU",
        precision=precision or read_sidecar(path).precision,
        options=options,
    )
