"""Static checks that belong to the test command: ruff, mypy, the architecture contracts
(import-linter) and Python 3.6 syntax on the device side (Jetson Nano, JetPack 4.6)."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from support.device_modules import DEVICE_TEST_FOLDERS

ROOT = Path(__file__).resolve().parents[1]


def _host_packages():
    """The fanet packages the device-side contract forbids: the host side."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["id"] == "device-side"]
    return [m for m in contract["forbidden_modules"] if m.startswith("fanet.")]


def device_side_files():
    """Every module of fanet outside the host packages: what runs on the device."""
    host = [ROOT.joinpath(*name.split(".")) for name in _host_packages()]
    return sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "fanet").rglob("*.py")
        if not any(path.is_relative_to(folder) for folder in host)
    )


def _tool(name):
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return path


def _run(*command):
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    return result.returncode, result.stdout + result.stderr


def test_ruff_is_clean():
    code, output = _run(_tool("ruff"), "check", "fanet", "tests", "examples")
    assert code == 0, output


def test_ruff_format_is_clean():
    code, output = _run(_tool("ruff"), "format", "--check", "fanet", "tests", "examples")
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


def test_import_contracts_hold():
    code, output = _run(_tool("lint-imports"), "--no-cache")
    assert code == 0, output
    assert "Contracts: 7 kept, 0 broken." in output


def test_device_side_covers_the_device_folders():
    files = device_side_files()
    assert "fanet/cli/device/bench.py" in files and "fanet/runtime/trt/builder.py" in files
    assert "fanet/core/sidecar.py" in files and "fanet/cli/common.py" in files
    assert not any(
        f.startswith(("fanet/model/", "fanet/export/", "fanet/cli/host/")) for f in files
    )


HOST_ONLY_SUPPORT = ("host_artefacts.py", "python36_env.py", "tensorrt_bindings.py")


def device_test_files():
    """The tests of the device side and what they share: they run on Python 3.6 too."""
    tests = ROOT / "tests"
    folders = [tests / name for name in DEVICE_TEST_FOLDERS] + [tests / "support"]
    found = [tests / "conftest.py"] + [path for folder in folders for path in folder.rglob("*.py")]
    return sorted(
        str(path.relative_to(ROOT)) for path in found if path.name not in HOST_ONLY_SUPPORT
    )


def test_device_tests_are_python_3_6_code():
    code, output = _run(
        _tool("vermin"), "--no-tips", "--violations", "-t=3.6-", *device_test_files()
    )
    assert code == 0, output


def test_device_side_runs_on_python_3_6():
    code, output = _run(
        _tool("vermin"),
        "--no-tips",
        "--violations",
        "-t=3.6-",
        "--eval-annotations",
        *device_side_files(),
    )
    assert code == 0, output


def _cycle(edges):
    """A list of modules that import each other in a ring, or None."""
    state, path = {}, []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for imported in sorted(edges[module]):
            if state.get(imported) == "open":
                return path[path.index(imported) :] + [imported]
            if imported not in state and (found := visit(imported)):
                return found
        state[module] = "done"
        path.pop()
        return None

    return next(
        (found for module in sorted(edges) if module not in state and (found := visit(module))),
        None,
    )


def test_no_module_imports_itself_through_others():
    grimp = pytest.importorskip(
        "grimp", reason="comes with import-linter (pip install -e '.[dev]')"
    )
    graph = grimp.build_graph("fanet")
    edges = {
        module: {
            m for m in graph.find_modules_directly_imported_by(module) if m.startswith("fanet")
        }
        for module in graph.modules
        if module.startswith("fanet")
    }
    assert len(edges) > 100 and _cycle(edges) is None, _cycle(edges)
