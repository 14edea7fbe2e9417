"""The host side (PyTorch, onnx; Python >= 3.10) as the device side reaches it: by module
name, with one clear error where it cannot be there (Python 3.6 compatible).

On an older Python the host modules do not even parse (they use syntax newer than 3.6),
so the version is checked before anything is imported.
"""

import importlib
import importlib.util
import sys
from types import ModuleType

from fanet.core.errors import MissingDependencyError

HOST_PYTHON = (3, 10)
INSTALL_HOST = "pip install torch 'fanet[host]'"


def host_available() -> bool:
    """Whether host modules can be imported here (a cheap check: nothing is imported)."""
    return sys.version_info >= HOST_PYTHON and importlib.util.find_spec("torch") is not None


def import_host(module_name: str, needed_for: str) -> ModuleType:
    """Import the host module ``module_name``; ``MissingDependencyError`` saying that
    ``needed_for`` (e.g. "exporting on the fly") needs the host side, and why it is not here."""
    if sys.version_info < HOST_PYTHON:
        raise MissingDependencyError(
            "{} needs the host side (PyTorch and onnx, Python >= {}.{}); this is Python "
            "{}.{}".format(needed_for, HOST_PYTHON[0], HOST_PYTHON[1], *sys.version_info[:2])
        )
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            "{} needs the host side: {} ({})".format(needed_for, INSTALL_HOST, exc)
        ) from None
