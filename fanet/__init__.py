"""fanet: deploy FANet (real-time semantic segmentation with fast attention).

Device side (numpy, OpenCV, TensorRT; Python 3.6+): ``fanet.core``,
``fanet.conformance``, ``fanet.runtime`` (with ``fanet.runtime.trt``),
``fanet.evaluation``, ``fanet.media``, ``fanet.bench``, ``fanet.serving`` and
``fanet.cli.device``. Host side (PyTorch, onnx): ``fanet.model``, ``fanet.export``,
``fanet.calibration``, ``fanet.train`` and ``fanet.cli.host``. ARCHITECTURE.md draws
them; the import-linter contracts in pyproject.toml keep them apart.
"""

__version__ = "0.3.0"
