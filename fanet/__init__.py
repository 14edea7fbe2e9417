"""fanet: deploy FANet (real-time semantic segmentation with fast attention).

Device side (numpy, OpenCV, TensorRT; Python 3.6+): ``fanet.core``,
``fanet.conformance``, ``fanet.runtime`` (with ``fanet.runtime.trt``),
``fanet.evaluation``, ``fanet.media``, ``fanet.bench``, ``fanet.serving``,
``fanet.ros2`` and ``fanet.cli.device``. Host side (PyTorch, onnx): ``fanet.model``,
``fanet.export``, ``fanet.calibration``, ``fanet.train`` and ``fanet.cli.host``.
ARCHITECTURE.md draws them; the import-linter contracts in pyproject.toml keep them
apart.
"""

import os

__version__ = "0.3.0"

# ONNX Runtime 1.29 and newer send telemetry from Linux too (a DNS lookup of Microsoft's
# collector while a session runs, a device ID and a database under ~/.cache/Microsoft):
# not from a robot running fanet unless its user sets ORT_DISABLE_TELEMETRY=0 themselves.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
