"""JSON that strict parsers read: numbers that are not finite become null."""

import json

from fanet.core import strict_json


def test_numbers_that_are_not_finite_become_null_at_any_depth():
    value = {"a": float("nan"), "b": [1.5, float("inf"), {"c": -float("inf")}], "d": (2, "x")}
    text = strict_json.dumps(value, sort_keys=True)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.5, None, {"c": None}], "d": [2, "x"]}
