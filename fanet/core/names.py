"""Names users give to files and models (``--name`` of fanet-export, Triton model names),
checked in one place (Python 3.6 compatible).

A name becomes a file stem or a folder, and Triton writes a model's name into its
config.pbtxt: letters, digits, ``.``, ``_``, ``-`` and ``+`` only, not starting with a dot
or a dash (hidden files, options), no folders, at most 200 characters (room for the
suffixes fanet adds within the file systems' 255).
"""

import re

from fanet.core.errors import ConfigError

MAX_LENGTH = 200
_NAME = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._+-]*$")


def check_name(name: str, option: str) -> str:
    """``name`` if it is a valid name (see the module docstring), else ``ConfigError``
    naming ``option`` and what is wrong."""
    if not _NAME.match(name):
        raise ConfigError(
            "{} must be a plain name (letters, digits, '.', '_', '-', '+'; no folders, not "
            "starting with '.' or '-'), got {!r}".format(option, name)
        )
    if len(name) > MAX_LENGTH:
        raise ConfigError(
            "{} is {} characters long; at most {}".format(option, len(name), MAX_LENGTH)
        )
    return name
