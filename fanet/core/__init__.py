"""Numpy-only pieces both sides share: errors, atomic files and locks, the set writer and
the artefact set, sidecar and engine records, labels, image and video files, preprocessing,
metrics, progress bars, the ONNX reader (device side, Python 3.6; imports nothing else
from fanet)."""
