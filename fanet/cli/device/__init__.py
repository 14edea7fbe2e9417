"""Commands that run on the device (Python 3.6): fanet-build, fanet-trt-bench,
fanet-segment, fanet-eval, fanet-triton, fanet-ros2."""
