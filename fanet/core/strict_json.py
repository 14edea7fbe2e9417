"""JSON as strict parsers read it: no ``NaN`` or ``Infinity`` tokens, which Python's
``json`` writes by default and browsers, ``jq`` and most other languages reject; a number
that is not finite is written as ``null`` (Python 3.6 compatible)."""

import json
import math
from typing import IO, Any, Dict, Optional


def finite_or_null(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by None, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` that writes strict JSON (see the module docstring)."""
    return json.dumps(finite_or_null(value), allow_nan=False, **options)


def dump(value: Any, stream: IO[str], **options: Any) -> None:
    """``json.dump`` that writes strict JSON (see the module docstring)."""
    json.dump(finite_or_null(value), stream, allow_nan=False, **options)


def read_object(path: str) -> Optional[Dict[str, Any]]:
    """The JSON object in ``path``; None when the file is missing, unreadable or holds
    something else (each record's reader says what that means for its kind)."""
    try:
        with open(path) as stream:
            loaded = json.load(stream)
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None
