"""Commands that run on the device: fanet-build, fanet-trt-bench (Python 3.6)."""
