"""Errors of the export and engine-building steps (Python 3.6 compatible)."""

from fanet.core.errors import FanetError


class ExportError(FanetError):
    """A model cannot be exported, converted or verified."""
