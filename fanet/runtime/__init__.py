"""Device-side runtime: the backend protocol, registry and options, the ONNX Runtime
backend, the Segmenter, streaming and temporal sessions (Python 3.6, no torch/onnx
imports; TensorRT in ``fanet.runtime.trt``).

``from fanet.runtime import Segmenter`` is the entry point for robot code.
"""

from fanet.runtime.segmenter import Segmenter

__all__ = ["Segmenter"]
