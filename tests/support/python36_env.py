"""A Jetson Nano's Python side on this machine: CPython 3.6 with pip 21.3.1 installing the
project's wheel and its device extras (numpy 1.19, ONNX Runtime 1.10, OpenCV, matplotlib
3.3, cityscapesscripts), pytest 7.0.1 (the last for 3.6), and beside it real TensorRT 8.4
(``nvidia-tensorrt``, the last complete TensorRT wheel for 3.6) in a folder of its own,
added only where a test wants it.

Made once per cache key (the interpreter, the requirements and pyproject.toml) under
``$XDG_CACHE_HOME/fanet-tests`` (``~/.cache``), since TensorRT's wheel alone is 774 MB.
"""

import glob
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

ROOT = Path(__file__).resolve().parents[2]
PIP = "pip==21.3.1"  # the last pip for Python 3.6
EXTRAS = ("runtime", "bench", "eval")  # the device side's
# pytest 7.0.1 is the last for 3.6; onnx builds the small bad graphs the conformance tests
# read and jsonschema checks the benchmark's JSON (tests only: the device side needs neither).
TEST_REQUIREMENTS = ["pytest==7.0.1", "onnx==1.11.0", "jsonschema==3.2.0"]
TENSORRT = [  # with the CUDA libraries it loads (cuDNN: for its plugin library)
    "nvidia-tensorrt==8.4.1.5",
    "nvidia-cudnn-cu11==8.6.0.163",
    "nvidia-cuda-runtime-cu11==11.8.89",
    "nvidia-cublas-cu11==11.11.3.6",
]


class Python36(NamedTuple):
    python: Path  # the venv's interpreter
    tensorrt: Path  # a folder holding real TensorRT 8.4 and the CUDA libraries it loads

    def env(self, with_tensorrt: bool = False, **extra: str) -> Dict[str, str]:
        """The environment to run the checkout's code on Python 3.6 (with TensorRT 8.4)."""
        paths = [str(ROOT), str(ROOT / "tests")] + ([str(self.tensorrt)] if with_tensorrt else [])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), **extra)
        env.pop("PYTHONHOME", None)
        if with_tensorrt:
            libraries = glob.glob(str(self.tensorrt / "nvidia" / "*" / "lib"))
            libraries.append(str(self.tensorrt / "tensorrt"))
            env["LD_LIBRARY_PATH"] = os.pathsep.join(libraries)
        return env

    def run(
        self, args: List[str], with_tensorrt: bool = False, **kwargs
    ) -> subprocess.CompletedProcess:
        env = self.env(with_tensorrt, **kwargs.pop("env", {}))
        return subprocess.run(
            [str(self.python), *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            **kwargs,
        )


def find_python36() -> Optional[str]:
    """``$FANET_PYTHON36``, else pyenv's 3.6, else ``python3.6`` on the PATH."""
    if os.environ.get("FANET_PYTHON36"):
        return os.environ["FANET_PYTHON36"]
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.6.*", "bin", "python3.6")))
    return found[-1] if found else shutil.which("python3.6")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "fanet-tests"


def _pip(python: Path, *args: str, cwd: Optional[Path] = None) -> None:
    command = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError("{} failed:\n{}".format(" ".join(args), done.stderr[-3000:]))


def python36_environment(interpreter: str, wheel: Path) -> Python36:
    """The cached environment for ``interpreter``, made with ``wheel`` where missing."""
    key = hashlib.sha256(
        json.dumps(
            [interpreter, PIP, TEST_REQUIREMENTS, TENSORRT, (ROOT / "pyproject.toml").read_text()]
        ).encode()
    ).hexdigest()[:16]
    folder = cache_dir() / "python36-{}".format(key)
    made = Python36(folder / "venv" / "bin" / "python", folder / "tensorrt")
    if (folder / "complete").is_file():
        return made
    shutil.rmtree(str(folder), ignore_errors=True)
    folder.mkdir(parents=True)
    subprocess.run([interpreter, "-m", "venv", str(folder / "venv")], check=True)
    _pip(made.python, PIP)
    # pip 21.3.1 resolves the wheel's requirements for Python 3.6 from PyPI, as on a Nano.
    _pip(made.python, "{}[{}]".format(wheel, ",".join(EXTRAS)), *TEST_REQUIREMENTS, cwd=folder)
    _pip(made.python, "--target", str(made.tensorrt), *TENSORRT)
    (folder / "complete").write_text("\n".join(installed(made)))
    return made


def installed(made: Python36) -> List[str]:
    """``name==version`` of every distribution in the venv (pip and the project too)."""
    listed = subprocess.run(
        [str(made.python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted("{}=={}".format(d["name"], d["version"]) for d in json.loads(listed.stdout))
