"""Install repaired ``tensorrt-stubs`` (10.x API) into a folder for mypy.

The published stubs do not parse (a parameter named ``in``; parameters without
defaults after defaulted ones), lack ``py.typed`` and import ``tensorrt_libs``. This
copies ``tensorrt`` and ``tensorrt_bindings`` from the installed ``tensorrt-stubs`` into
DEST and repairs those lines mechanically, until every stub parses.

usage: python tools/trt_stubs.py typings
"""

import ast
import importlib.util
import re
import shutil
import sys
from pathlib import Path

PACKAGES = ("tensorrt", "tensorrt_bindings")


def _stub_root() -> Path:
    spec = importlib.util.find_spec("tensorrt_stubs")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("tensorrt-stubs is not installed: pip install --no-deps tensorrt-stubs")
    return Path(next(iter(spec.submodule_search_locations))).parent


def _default_trailing_parameters(line: str) -> str:
    """Give ``= ...`` to every parameter that follows a defaulted one on a def line."""
    head, _, rest = line.partition("(")
    params, close, tail = rest.rpartition(")")
    parts, depth, current = [], 0, ""
    for char in params:
        depth += char in "[(" and 1 or (char in "])" and -1 or 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    seen_default = False
    for index, part in enumerate(parts):
        if "=" in part:
            seen_default = True
        elif seen_default and part.strip() and not part.strip().startswith("*"):
            parts[index] = part + " = ..."
    return head + "(" + ",".join(parts) + close + tail


def repair(text: str) -> str:
    text = re.sub(r"\bin: ", "in_: ", text)
    text = re.sub(r"^import tensorrt_libs.*$", "", text, flags=re.MULTILINE)
    lines = text.splitlines()
    for _ in range(len(lines)):
        try:
            ast.parse("\n".join(lines))
            break
        except SyntaxError as error:
            number = (error.lineno or 1) - 1
            repaired = _default_trailing_parameters(lines[number])
            if repaired == lines[number]:
                raise
            lines[number] = repaired
    return "\n".join(lines) + "\n"


def main(destination: str) -> None:
    root = _stub_root()
    for package in PACKAGES:
        target = Path(destination) / package
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for stub in (root / package).glob("*.pyi"):
            (target / stub.name).write_text(repair(stub.read_text()))
        (target / "py.typed").write_text("partial\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "typings")
