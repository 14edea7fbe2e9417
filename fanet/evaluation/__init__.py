"""Datasets on disk (Cityscapes roots, image/label folders) and Cityscapes scoring (device
side, Python 3.6): calibration, fanet-eval, the benchmark and training read them here."""
