"""NVIDIA's real TensorRT Python bindings of 8.6, 10.x and 11.x, importable on a machine
without TensorRT's libraries (host side).

The binding wheels (``tensorrt-bindings``, ``tensorrt-cu12-bindings``) install from PyPI;
the libraries they link (``libnvinfer``, the ONNX parser, the plugins) download from
NVIDIA's own index, which these machines cannot reach. TensorRT's API is virtual classes
behind a few factory functions, so stand-in libraries that define those factories as
returning null let the real bindings load: every class, enum and method is NVIDIA's, and
creating a builder or runtime fails as it does where no GPU is usable (pybind11 raises on
the null result). This is how ``../shared/reference/tensorrt_api`` was read.

Wheels and stand-in libraries are kept under ``$XDG_CACHE_HOME/fanet-tests``.
"""

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Set

from support.python36_env import ROOT, cache_dir

WHEELS = {  # TensorRT version -> the distribution of its bindings on PyPI
    "8.6.1": "tensorrt-bindings==8.6.1",
    "10.13.3.9": "tensorrt-cu12-bindings==10.13.3.9",
    "11.0.0.114": "tensorrt-cu12-bindings==11.0.0.114",
    "11.4.0.106": "tensorrt-cu12-bindings==11.4.0.106",
}
_SYSTEM_LIBRARIES = ("libstdc++.so.6", "libc.so.6", "libm.so.6", "libgcc_s.so.1")
# Runs a module of the checkout with the bindings as ``tensorrt`` (as NVIDIA's own
# ``tensorrt`` package does: ``from tensorrt_bindings import *``).
_RUNNER = (
    "import runpy, sys; import tensorrt_bindings; sys.modules['tensorrt'] = tensorrt_bindings; "
    "sys.argv = sys.argv[1:]; runpy.run_module(sys.argv[0], run_name='__main__')"
)


def bindings(version: str) -> Path:
    """A folder holding the bindings of ``version`` and stand-ins for the libraries they
    link (``lib/``), made on first use."""
    folder = cache_dir() / "tensorrt-bindings-{}-py{}{}".format(version, *sys.version_info[:2])
    if (folder / "complete").is_file():
        return folder
    shutil.rmtree(str(folder), ignore_errors=True)
    (folder / "wheel").mkdir(parents=True)
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    subprocess.run(
        [*command, "-d", str(folder / "wheel"), WHEELS[version]], check=True, capture_output=True
    )
    (wheel,) = (folder / "wheel").glob("*.whl")
    with zipfile.ZipFile(str(wheel)) as archive:
        archive.extractall(str(folder / "site"))
    extension = next((folder / "site" / "tensorrt_bindings").glob("tensorrt*.so"))
    _stand_in_libraries(extension, folder / "lib")
    (folder / "complete").write_text(version)
    return folder


def _dynamic_symbols(path: str, defined: bool) -> Set[str]:
    kind = "--defined-only" if defined else "--undefined-only"
    listed = subprocess.run(["nm", "-D", kind, path], capture_output=True, text=True, check=True)
    return {line.split()[-1].split("@")[0] for line in listed.stdout.splitlines() if line.strip()}


def _system_library(name: str) -> str:
    found = subprocess.run(
        ["gcc", "-print-file-name=" + name], capture_output=True, text=True, check=True
    )
    return found.stdout.strip()


def _stand_in_libraries(extension: Path, folder: Path) -> None:
    """Libraries named as the extension links them, defining every symbol it needs that
    the system does not provide as a function returning null."""
    needed = re.findall(
        r"\(NEEDED\)\s+Shared library: \[(libnv[^\]]+)\]",
        subprocess.run(
            ["readelf", "-d", str(extension)], capture_output=True, text=True, check=True
        ).stdout,
    )
    provided = set()  # type: Set[str]
    for name in _SYSTEM_LIBRARIES:
        provided |= _dynamic_symbols(_system_library(name), defined=True)
    missing = sorted(
        symbol
        for symbol in _dynamic_symbols(str(extension), defined=False) - provided
        if not symbol.startswith(("Py", "_Py", "_ITM_", "__"))
    )
    folder.mkdir(parents=True)
    source = folder / "stand_in.c"
    source.write_text(
        "".join(
            'void *f{0}(void) __asm__("{1}");\nvoid *f{0}(void) {{ return 0; }}\n'.format(i, s)
            for i, s in enumerate(missing)
        )
    )
    for index, library in enumerate(needed):  # every symbol in the first, the rest empty
        content = str(source) if index == 0 else str(folder / "empty.c")
        (folder / "empty.c").write_text("")
        subprocess.run(
            ["gcc", "-shared", "-fPIC", "-o", str(folder / library), content], check=True
        )


def run(version: str, module: str, args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m module args`` of the checkout, with the real bindings of ``version``."""
    folder = bindings(version)
    env: Dict[str, str] = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder / "site"), str(ROOT), str(ROOT / "tests")])
    env["LD_LIBRARY_PATH"] = str(folder / "lib")
    return subprocess.run(
        [sys.executable, "-c", _RUNNER, module, *args],
        env=env,
        cwd=str(cwd),
        capture_output=True,
        text=True,
        check=False,
    )
