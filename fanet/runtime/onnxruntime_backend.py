"""ONNX Runtime backend: TensorRT EP, CUDA EP or CPU (Python 3.6 compatible).

On a GPU the inputs are bound with I/O binding and a temporal graph's state stays there,
as OrtValues, from one call to the next.
"""

import logging
import re
from typing import Any, Dict, List, Optional

import numpy as np

from fanet.core.errors import require
from fanet.core.onnx_graph import read_model
from fanet.core.sidecar import StateTensor, read_sidecar
from fanet.runtime.backend import Backend, BackendError, TensorSpec
from fanet.runtime.options import OnnxRuntimeOptions

logger = logging.getLogger(__name__)

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}
_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def _spec(node) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in node.shape)
    return TensorSpec(node.name, shape, np.dtype(_ORT_TYPES.get(node.type, np.float32)))


class OnnxRuntimeBackend(Backend):
    """Runs an ONNX file; on a GPU, outputs stay bound on the device between copies."""

    name = "onnxruntime"

    def __init__(
        self,
        path: str,
        device: str = "cpu",
        precision: str = "fp32",
        threads: Optional[int] = None,
    ) -> None:
        super().__init__()
        ort = require("onnxruntime", "runtime")
        if device not in _PROVIDERS:
            raise BackendError(
                "unknown onnxruntime device {!r}; choose cpu, cuda or tensorrt".format(device)
            )
        available = ort.get_available_providers()
        if _PROVIDERS[device][0] not in available:
            raise BackendError(
                "onnxruntime here has no {} (available: {})".format(
                    _PROVIDERS[device][0], ", ".join(available)
                )
            )
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        if device == "cpu":  # idle threads sleep: no CPU burnt between frames, and no
            # slowing another model's session (measured: INT8 60 against 88 ms, alternating)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        providers = [p for p in _PROVIDERS[device] if p in available]
        try:
            self._session = ort.InferenceSession(path, options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(_load_error(ort.__version__, path, str(exc))) from None
        self.device = device
        self.precision = precision
        self.input_specs = [_spec(node) for node in self._session.get_inputs()]
        self.output_specs = [_spec(node) for node in self._session.get_outputs()]
        self._output_names: List[str] = [spec.name for spec in self.output_specs]
        logger.debug("onnxruntime providers: %s", self._session.get_providers())

    def infer(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        feed = self.host_feed(inputs)
        if self.device == "cpu":
            outputs = self._session.run(self._output_names, self._with_state(feed))
            return self._carry_state(dict(zip(self._output_names, outputs)))
        binding = self._session.io_binding()
        for name, array in feed.items():
            binding.bind_cpu_input(name, array)
        for name, value in self._state_values.items():  # OrtValues on the GPU
            binding.bind_ortvalue_input(name, value)
        for name in self._output_names:
            binding.bind_output(name, "cuda")
        self._session.run_with_iobinding(binding)
        on_device = self._carry_state(dict(zip(self._output_names, binding.get_outputs())))
        return {name: value.numpy() for name, value in on_device.items()}

    def _initial_state(self, tensor: StateTensor) -> Any:
        """Host arrays on the CPU; on the GPU, OrtValues that stay there between calls."""
        value = super()._initial_state(tensor)
        if self.device == "cpu":
            return value
        ort = require("onnxruntime", "runtime")
        return ort.OrtValue.ortvalue_from_numpy(value, "cuda", 0)

    def _release(self) -> None:
        self._session = None


def _load_error(version: str, path: str, message: str) -> str:
    """Why ONNX Runtime could not load ``path``; for an opset newer than it reads (1.10, the
    last for Python 3.6, reads up to 15), what to export instead."""
    newest = re.search(r"support for domain ai\.onnx is till opset (\d+)", message)
    if newest:
        return (
            "ONNX Runtime {} reads ONNX opsets up to {} and {} uses opset {}: export it with "
            "--opset 13 (read by ONNX Runtime 1.10+ and TensorRT 8.2+) or upgrade "
            "onnxruntime".format(version, newest.group(1), path, read_model(path).opset)
        )
    return "onnxruntime {} cannot load {}: {}".format(version, path, message)


def cuda_available() -> bool:
    """Whether this ONNX Runtime has the CUDA execution provider."""
    ort = require("onnxruntime", "runtime")
    return "CUDAExecutionProvider" in ort.get_available_providers()


def open_onnxruntime(
    path: str, device: Optional[str], precision: Optional[str], options: OnnxRuntimeOptions
) -> OnnxRuntimeBackend:
    """The registry's opener: CUDA where available unless ``device`` says otherwise, the
    precision from the sidecar unless given."""
    return OnnxRuntimeBackend(
        path,
        device=device or ("cuda" if cuda_available() else "cpu"),
        precision=precision or read_sidecar(path).precision,
        threads=options.threads,
    )
