"""Export: torch -> ONNX (host side) and ONNX -> TensorRT engine (device side)."""
