"""Test inputs only the host side can make (exports, a trained model), for tests that also
run on the device side's Python 3.6 (Python 3.6 compatible).

``host_artefact(name)`` is the folder of artefact ``name`` (``host_artefacts.MAKERS``),
made once under ``$FANET_TEST_ARTEFACTS`` and shared by every test of the session and by
the Python 3.6 run started from it. Where the host side is importable it is made in
process; elsewhere by ``$FANET_TEST_HOST_PYTHON tests/host_artefacts.py NAME FOLDER``, and
without such a Python the test skips, saying so.
"""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from fanet.core.host import host_available

ROOT_VARIABLE = "FANET_TEST_ARTEFACTS"
HOST_PYTHON_VARIABLE = "FANET_TEST_HOST_PYTHON"
TESTS = Path(__file__).resolve().parents[1]


def artefact_root() -> Path:
    """Where artefacts live: ``$FANET_TEST_ARTEFACTS``, set for the session by conftest."""
    root = os.environ.get(ROOT_VARIABLE)
    if not root:
        root = tempfile.mkdtemp(prefix="fanet-artefacts-")
        os.environ[ROOT_VARIABLE] = root
    return Path(root)


def host_artefact(name: str) -> Path:
    """The folder holding artefact ``name``, made on first use."""
    folder = artefact_root() / name
    if folder.is_dir():
        return folder
    partial = artefact_root() / "{}.{}.partial".format(name, os.getpid())
    shutil.rmtree(str(partial), ignore_errors=True)
    partial.mkdir(parents=True)
    if host_available():
        from support import host_artefacts

        host_artefacts.make(name, partial)
    else:
        _make_with_host_python(name, partial)
    os.rename(str(partial), str(folder))  # whole, or not at all
    return folder


def _make_with_host_python(name: str, folder: Path) -> None:
    python = os.environ.get(HOST_PYTHON_VARIABLE)
    if not python:
        pytest.skip(
            "{} is made by the host side (PyTorch): set {} to a host Python".format(
                name, HOST_PYTHON_VARIABLE
            )
        )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS.parent), str(TESTS)]))
    made = subprocess.run(
        [python, "-m", "support.host_artefacts", name, str(folder)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
        check=False,
    )
    if made.returncode != 0:
        raise RuntimeError("the host could not make {}:\n{}".format(name, made.stdout[-3000:]))


def fp32_graph(folder: Path) -> Path:
    """The FP32 graph of an export folder (the one graph whose sidecar says fp32)."""
    (found,) = [
        path
        for path in sorted(folder.glob("*.onnx"))
        if json.loads(path.with_suffix(".json").read_text()).get("precision") == "fp32"
    ]
    return found
