"""TensorRT's ONNX parser rules, 8.2 to 11, and the check of a graph against them; needs no
TensorRT, so the host export and the device builder read the same rules (Python 3.6)."""
