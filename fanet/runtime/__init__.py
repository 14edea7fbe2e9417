"""Device-side runtime: backends, Segmenter, benchmark (Python 3.6, no torch/onnx imports)."""
