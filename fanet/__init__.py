"""fanet: deploy FANet (real-time semantic segmentation with fast attention).

Host side: ``fanet.model`` and ``fanet.export`` (PyTorch to ONNX).
Device side: ``fanet.runtime`` (TensorRT, ONNX Runtime or PyTorch backends).
This module stays importable on Python 3.6 with numpy alone.
"""

__version__ = "0.2.0"
