"""Serving exports to other software: Triton model repositories (device side, Python 3.6)."""
