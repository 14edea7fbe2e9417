"""Device-side runtime: backends, Segmenter, benchmark (Python 3.6, no torch/onnx imports).

``from fanet.runtime import Segmenter`` is the entry point for robot code.
"""

from fanet.runtime.segmenter import Segmenter

__all__ = ["Segmenter"]
