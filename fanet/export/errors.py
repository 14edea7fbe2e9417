"""Errors of the export (host side)."""

from fanet.core.errors import FanetError


class ExportError(FanetError):
    """A model cannot be exported, converted or verified."""
