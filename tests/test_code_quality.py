"""Static checks that belong to the test command: ruff, mypy, and Python 3.6 syntax
for the device side (Jetson Nano, JetPack 4.6)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Modules that run on the device (Jetson Nano: Python 3.6, no torch/onnx).
DEVICE_SIDE = [
    "fanet/__init__.py",
    "fanet/errors.py",
    "fanet/metrics.py",
    "fanet/runtime",
    "fanet/export/errors.py",
    "fanet/export/engine_builder.py",
    "fanet/cli/common.py",
    "fanet/cli/build.py",
]


def _tool(name):
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return path


def _run(*command):
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    return result.returncode, result.stdout + result.stderr


def test_ruff_is_clean():
    code, output = _run(_tool("ruff"), "check", "fanet", "tests")
    assert code == 0, output


def test_ruff_format_is_clean():
    code, output = _run(_tool("ruff"), "format", "--check", "fanet", "tests")
    assert code == 0, output


@pytest.fixture(scope="module")
def tensorrt_typings():
    """Repaired tensorrt-stubs in ./typings (mypy_path), so mypy checks the TensorRT code."""
    pytest.importorskip("tensorrt_stubs", reason="pip install --no-deps tensorrt-stubs")
    code, output = _run(sys.executable, "tools/trt_stubs.py", "typings")
    assert code == 0, output


def test_mypy_is_clean(tensorrt_typings):
    code, output = _run(_tool("mypy"))
    assert code == 0, output


def test_mypy_flags_tensorrt_8_only_calls(tensorrt_typings, tmp_path):
    """The stubs are live: 8.x-only API used without a marker is reported."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import tensorrt as trt\n"
        "def f(config: trt.IBuilderConfig, context: trt.IExecutionContext) -> None:\n"
        "    config.max_workspace_size = 1\n"
        "    context.execute_async_v2([], 0)\n"
    )
    code, output = _run(_tool("mypy"), str(probe))
    assert code == 1
    assert '"IBuilderConfig" has no attribute "max_workspace_size"' in output
    assert '"IExecutionContext" has no attribute "execute_async_v2"' in output


def test_device_side_runs_on_python_3_6():
    code, output = _run(
        _tool("vermin"),
        "--no-tips",
        "--violations",
        "-t=3.6-",
        "--eval-annotations",
        *DEVICE_SIDE,
    )
    assert code == 0, output
