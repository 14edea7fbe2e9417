"""TensorRT 8.2-11: versions, logger, this machine, CUDA owners, FP32 pins, timing caches,
the builder, the engine cache and the backend (device side, Python 3.6)."""
