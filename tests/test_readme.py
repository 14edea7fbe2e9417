"""The README runs as written: every fanet command in it is one its command accepts (the
parser takes its flags and values), and every Python snippet imports what it uses (ruff
finds no undefined name in it)."""

import importlib
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def _blocks(language):
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.MULTILINE | re.DOTALL)


def _inline_commands():
    """Inline code that is a whole command with arguments (not usage notation)."""
    for span in re.findall(r"`(fanet-[a-z0-9-]+ [^`]+)`", README):
        if not any(mark in span for mark in ("[", "…", "...")):
            yield span


def _shell_lines():
    """The README's shell command lines (``bash`` blocks, ``$`` lines of ``console``
    blocks, inline commands): continuations and quoted newlines joined, comments dropped."""
    for block in _blocks("console"):
        yield from (line[2:] for line in block.splitlines() if line.startswith("$ "))
    yield from _inline_commands()
    for block in _blocks("bash"):
        pending = ""
        for line in block.replace("\\\n", " ").splitlines():
            command = (pending + "\n" + line) if pending else line.split(" #", 1)[0].strip()
            if not command or command.startswith("#"):
                continue
            try:
                shlex.split(command)
            except ValueError:  # a quote that closes on a later line
                pending = command
                continue
            pending = ""
            yield command


def _command(words):
    """(module, argv) where ``words`` run a fanet command, else None."""
    for index, word in enumerate(words):
        name = word.rsplit("/", 1)[-1]  # .venv/bin/fanet-trt-bench
        if name in SCRIPTS:
            return SCRIPTS[name].split(":")[0], words[index + 1 :]
        if word == "-m" and index + 1 < len(words) and words[index + 1].startswith("fanet.cli."):
            return words[index + 1], words[index + 2 :]
    return None


def _commands():
    """(module, argv) of each fanet command in the README's shell blocks."""
    found = []
    for line in _shell_lines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token in ("&&", "|", "||", ";"):
                found += [command] if (command := _command(words)) else []
                words = []
            else:
                words.append(token)
    return found


COMMANDS = _commands()


def test_the_readme_holds_every_command():
    used = {module for module, _ in COMMANDS}
    assert used == {target.split(":")[0] for target in SCRIPTS.values()}, used


@pytest.mark.parametrize(
    "module,argv", COMMANDS, ids=[" ".join([m.rsplit(".", 1)[1], *a])[:60] for m, a in COMMANDS]
)
def test_each_command_is_one_its_parser_accepts(module, argv, capsys):
    """And for the ROS 2 node, each ``-p NAME:=VALUE`` names one of its parameters."""
    command = importlib.import_module(module)
    parser = command.build_parser()
    if hasattr(command, "split_ros_args"):
        from fanet.ros2.settings import PARAMETERS

        argv, ros_args = command.split_ros_args(argv)
        named = [ros_args[i + 1].split(":=")[0] for i, a in enumerate(ros_args) if a == "-p"]
        assert set(named) <= {name for name, _, _ in PARAMETERS}, named
    try:
        parser.parse_args(argv)
    except SystemExit as exit_info:
        assert exit_info.code == 0 and "--help" in argv, capsys.readouterr().err


@pytest.mark.parametrize("number", range(len(_blocks("python"))))
def test_each_python_snippet_defines_what_it_uses(number, tmp_path):
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    snippet = tmp_path / f"snippet{number}.py"
    snippet.write_text(_blocks("python")[number])
    result = subprocess.run(
        [ruff, "check", "--no-cache", "--isolated", "--select", "F821", str(snippet)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
