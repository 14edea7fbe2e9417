"""Words that stay true: every module path the package's docstrings and comments name
exists, each command package's docstring lists exactly its commands, and the README's
layout section names only files that exist."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fanet"
DOTTED = re.compile(r"\bfanet(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
LOGGER = re.compile(r'getLogger\("([^"]+)"\)')


FILE_SUFFIXES = ("py", "yaml")  # fanet.launch.py, fanet.yaml: files of examples/


def _resolves(dotted: str) -> bool:
    """Whether ``fanet.a.b`` is a module or package, or ``fanet.a.b`` names a top-level
    definition of the module ``fanet.a``; a file name (``fanet.yaml``) names a file of
    ``examples/``."""
    parts = dotted.split(".")
    if parts[-1] in FILE_SUFFIXES:
        return any((ROOT / "examples").rglob(dotted))
    path = ROOT.joinpath(*parts)
    if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
        return True
    module = ROOT.joinpath(*parts[:-1]).with_suffix(".py")
    if not module.is_file():
        module = ROOT.joinpath(*parts[:-1], "__init__.py")
    if not module.is_file():
        return False
    name = re.escape(parts[-1])
    defined = rf"^(?:def |class ){name}\b|^{name}\s*[:=]|^from \S+ import .*\b{name}\b"
    return re.search(defined, module.read_text(), re.MULTILINE) is not None


def test_every_module_path_named_in_the_package_exists():
    stale = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        loggers = set(LOGGER.findall(text))  # a logger's name is not a module's
        names = set(DOTTED.findall(text)) - loggers
        stale += [f"{path.relative_to(ROOT)}: {name}" for name in names if not _resolves(name)]
    assert not stale, "\n".join(stale)


def test_each_command_package_lists_its_commands():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for side in ("device", "host"):
        package = PACKAGE / "cli" / side
        doc = (package / "__init__.py").read_text()
        named = set(re.findall(r"\bfanet-[a-z0-9-]*[a-z0-9]", doc))
        owned = {cmd for cmd, target in scripts.items() if target.startswith(f"fanet.cli.{side}.")}
        assert named == owned, side
        modules = {path.stem for path in package.glob("*.py") if path.stem != "__init__"}
        assert {scripts[cmd].split(":")[0].rsplit(".", 1)[1] for cmd in owned} == modules


def _layout_block() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Layout\n", 1)[1]
    return section.split("```", 2)[1].splitlines()


def test_the_readme_layout_names_only_files_that_exist():
    missing = []
    folder = ROOT
    for line in _layout_block():
        entry = re.match(r"^(\S+)", line)
        if entry:
            folder = ROOT / entry.group(1)
            if not folder.exists():
                missing.append(entry.group(1))
            if folder.is_file():
                folder = folder.parent
        for name in re.findall(r"\b[a-z_0-9-]+\.(?:py|json|toml|png)\b", line[21:]):
            if not (folder / name).exists() and not list(ROOT.glob(f"**/{name}")):
                missing.append(name)
    assert not missing, missing


def test_the_readme_layout_names_every_package():
    named = {line.split()[0].rstrip("/") for line in _layout_block() if re.match(r"^\S", line)}
    packages = {
        str(path.parent.relative_to(ROOT))
        for path in PACKAGE.rglob("__init__.py")
        if path.parent != PACKAGE
    }
    assert packages <= named, packages - named


def test_no_room_holds_more_than_30_percent_of_the_lines():
    lines = {path: len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    total = sum(lines.values())
    rooms = {
        folder.name: sum(n for path, n in lines.items() if path.is_relative_to(folder))
        for folder in PACKAGE.iterdir()
        if (folder / "__init__.py").is_file()
    }
    print({room: f"{100 * n / total:.0f} %" for room, n in sorted(rooms.items())})
    assert max(rooms.values()) <= 0.3 * total, rooms


def test_the_readme_layout_names_every_file_of_docs_examples_and_tools():
    layout = "\n".join(_layout_block())
    unnamed = [
        f"{folder}/{path.name}"
        for folder in ("docs", "examples", "tools")
        for path in sorted((ROOT / folder).iterdir())
        if path.is_file() and path.name not in layout
    ]
    assert not unnamed, unnamed
