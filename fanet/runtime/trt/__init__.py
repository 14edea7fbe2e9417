"""TensorRT 8.2-11: versions, parser rules, CUDA owners, engine records, builder, backend
(device side, Python 3.6)."""
