"""Numpy-only pieces both sides share: errors, files, locks, sidecars, labels, preprocessing,
metrics, the ONNX reader (device side, Python 3.6; imports nothing else from fanet)."""
