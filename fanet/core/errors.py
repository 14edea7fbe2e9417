"""Error types shared by every part of fanet (Python 3.6 compatible).

The library raises these; only the CLI turns them into a one-line message and an
exit code.
"""


class FanetError(Exception):
    """Base class of every error fanet raises on purpose."""


class ConfigError(FanetError, ValueError):
    """An argument or option has a bad value."""


class CheckpointError(FanetError):
    """A checkpoint cannot be read or does not fit the model."""


class MissingDependencyError(FanetError, ImportError):
    """An optional dependency is not installed."""


def require(module_name, extra):
    """Import ``module_name`` or raise naming the pip extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module_name)
    except ImportError:
        raise MissingDependencyError(
            "{} is not installed: pip install 'fanet[{}]'".format(module_name, extra)
        ) from None
