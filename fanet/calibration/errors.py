"""Errors of calibration data handling."""

from fanet.core.errors import FanetError


class CalibrationError(FanetError):
    """Calibration data is missing, unreadable or unsuitable."""
