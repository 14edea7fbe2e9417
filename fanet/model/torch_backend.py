"""PyTorch backend (CPU or CUDA, FP32 or FP16, channels-last, CUDA graphs), host side.

It runs checkpoints and modules with the model code beside it, and is the eager baseline
the paper's authors timed. The runtime reaches it through the registry, by name. With
``temporal`` > 1 it runs ``TemporalFANet`` with the same state tensors an exported
temporal graph has; a bound state stays on the model's device.
"""

import logging
from typing import Any, Dict, Optional

import numpy as np
import torch

from fanet.core.sidecar import INPUT_NAME, Sidecar, StateTensor
from fanet.model.checkpoint import model_from_checkpoint
from fanet.model.fuse import fuse_bn
from fanet.model.temporal import TemporalFANet
from fanet.runtime.backend import Backend, BackendError, TensorSpec
from fanet.runtime.options import TorchOptions

logger = logging.getLogger(__name__)
OUTPUT_NAME = "logits"


class TorchBackend(Backend):
    """Runs a FANet module or checkpoint with PyTorch."""

    name = "torch"

    def __init__(
        self,
        model: Any,
        device: str = "cpu",
        precision: str = "fp32",
        options: TorchOptions = TorchOptions(),
    ) -> None:
        super().__init__()
        cuda_graph, temporal = options.cuda_graph, options.temporal
        self._torch = torch
        if precision not in ("fp32", "fp16"):
            raise BackendError("the torch backend runs fp32 or fp16, not {}".format(precision))
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError("the torch backend was asked for CUDA, but no GPU is visible")
        if precision == "fp16" and not device.startswith("cuda"):
            raise BackendError("fp16 with the torch backend needs --device cuda")
        if cuda_graph and not device.startswith("cuda"):
            raise BackendError("CUDA graphs need --device cuda")
        if cuda_graph and temporal > 1:
            raise BackendError("the torch backend runs temporal models without CUDA graphs")
        if isinstance(model, str):
            model = model_from_checkpoint(model)
            if options.fuse:
                model = fuse_bn(model)
        self.num_classes = getattr(model, "num_classes", None)
        self._temporal = TemporalFANet(model, temporal, options.temporal_reduce)
        self.sidecar = Sidecar(
            num_classes=self.num_classes or 19,
            temporal=temporal,
            temporal_reduce=options.temporal_reduce if temporal > 1 else None,
            state=self._temporal.state_tensors(),
        )
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        channels_last = options.channels_last
        self._memory_format = torch.channels_last if channels_last else torch.contiguous_format
        on_device: Any = self._temporal.eval().to(device)  # Module.to's stubs lack memory_format
        self._model = on_device.to(dtype=self._dtype, memory_format=self._memory_format)
        self._cuda_graph = cuda_graph
        self._graph: Any = None
        self._static_in: Any = None
        self._static_out: Any = None
        self.device = device
        self.precision = precision
        float32 = np.dtype(np.float32)
        state = self.sidecar.state
        self.input_specs = [TensorSpec(INPUT_NAME, (1, 3, None, None), float32)]
        self.input_specs += [TensorSpec(t.input, t.shape, float32) for t in state]
        self.output_specs = [TensorSpec(OUTPUT_NAME, (1, None, None, None), float32)]
        self.output_specs += [TensorSpec(t.output, t.shape, float32) for t in state]

    def _to_device(self, array: np.ndarray) -> Any:
        tensor = self._torch.from_numpy(np.ascontiguousarray(array))
        return tensor.to(self.device, dtype=self._dtype, memory_format=self._memory_format)

    def _run_graph(self, x: Any) -> Any:
        torch = self._torch
        if self._graph is None or self._static_in.shape != x.shape:
            self._static_in = x.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):  # warm up on a side stream before capture
                    self._model(self._static_in)
            torch.cuda.current_stream().wait_stream(stream)
            self._graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self._graph):
                self._static_out = self._model(self._static_in)
        self._static_in.copy_(x)
        self._graph.replay()
        return self._static_out

    def infer(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        self.check_inputs(inputs)
        with self._torch.inference_mode():
            x = self._to_device(inputs[INPUT_NAME])
            if self._cuda_graph:
                return {OUTPUT_NAME: self._run_graph(x)[0].float().cpu().numpy()}
            logits, *following = self._model(x, *self._state_inputs(inputs))
            outputs = dict(zip((t.output for t in self.sidecar.state), following))
            outputs = self._carry_state(dict(outputs, **{OUTPUT_NAME: logits}))
            return {name: value.float().cpu().numpy() for name, value in outputs.items()}

    def _state_inputs(self, inputs: Dict[str, np.ndarray]) -> list:
        """The state tensors on the model's device: bound ones are there already."""
        given = self._with_state(inputs)
        values = [given[tensor.input] for tensor in self.sidecar.state]
        return [
            value
            if isinstance(value, self._torch.Tensor)
            else self._torch.from_numpy(np.ascontiguousarray(value)).to(self.device, self._dtype)
            for value in values
        ]

    def _initial_state(self, tensor: StateTensor) -> Any:
        shape, dtype = tensor.shape, self._dtype
        return self._torch.full(shape, tensor.initial, dtype=dtype, device=self.device)

    def compute_ms(self, inputs: Dict[str, np.ndarray]) -> Optional[float]:
        """Forward pass alone on a device-resident input, timed with CUDA events."""
        self.require_open()
        if not self.device.startswith("cuda"):
            return None
        torch = self._torch
        with torch.inference_mode():
            x = self._to_device(inputs[INPUT_NAME])
            state = self._state_inputs(inputs)
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            if self._cuda_graph:
                self._run_graph(x)
            else:
                self._model(x, *state)
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            self._torch.cuda.synchronize()

    def _release(self) -> None:
        self._graph = self._static_in = self._static_out = None
        self._model = None


def open_torch(
    model: Any, device: Optional[str], precision: Optional[str], options: TorchOptions
) -> TorchBackend:
    """The registry's opener: CUDA where PyTorch sees a GPU unless ``device`` says otherwise."""
    return TorchBackend(
        model,
        device=device or ("cuda" if torch.cuda.is_available() else "cpu"),
        precision=precision or "fp32",
        options=options,
    )
