"""Export (host side): torch -> ONNX, FP16 typing, INT8 Q/DQ for TensorRT and ONNX Runtime,
their verification, one export run in parts, and the benchmark's on-the-fly exports."""
