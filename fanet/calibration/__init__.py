"""INT8 calibration data: Cityscapes crops and caches (host side)."""
