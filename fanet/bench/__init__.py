"""fanet-trt-bench's parts: the plan (rows and the model of each), the measurement, the
machine's description and the report (device side, Python 3.6)."""
