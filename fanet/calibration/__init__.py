"""INT8 calibration data (host side): image sources, crops and range caches."""
