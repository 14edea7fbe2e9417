"""Packaging for devices: a pure-Python wheel that pip 21.3.1 (the last pip of Python 3.6,
JetPack 4.6) installs and runs, whose device-side requirements on a Jetson Nano are numpy
<= 1.19, ONNX Runtime, packaging and tqdm (OpenCV and TensorRT from JetPack, no onnx or
torch); Dockerfiles that hadolint passes, on pinned bases, copying only the project."""

import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
JETSON_NANO = {  # JetPack 4.6: Python 3.6.9 on aarch64
    "python_version": "3.6",
    "python_full_version": "3.6.9",
    "platform_machine": "aarch64",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def _metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode())


def _requirements_on(metadata, environment, extra):
    wanted = []
    for text in metadata.get_all("Requires-Dist"):
        requirement = Requirement(text)
        marker = requirement.marker or Marker("python_version >= '0'")
        if marker.evaluate(dict(environment, extra=extra)):
            wanted.append(requirement)
    return wanted


def test_the_wheel_is_pure_python_for_python_3_6_and_later(project_wheel):
    assert re.fullmatch(r"fanet-[0-9.]+-py3-none-any\.whl", project_wheel.name)
    metadata = _metadata(project_wheel)
    assert metadata["Requires-Python"] == ">=3.6"
    with zipfile.ZipFile(project_wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
    assert top == {
        "fanet",
        project_wheel.name.split("-py3")[0] + ".dist-info",
    }  # no tests, no tools


def test_a_jetson_nano_needs_numpy_119_onnxruntime_packaging_and_tqdm_only(project_wheel):
    requirements = _requirements_on(_metadata(project_wheel), JETSON_NANO, "runtime")
    names = sorted({r.name for r in requirements})
    assert names == ["numpy", "onnxruntime", "packaging", "tqdm"]
    numpy = [r for r in requirements if r.name == "numpy"]
    assert all(r.specifier.contains("1.19.5") for r in numpy)
    assert not any(r.specifier.contains("1.20.0") for r in numpy if r.marker)
    print("Jetson Nano (Python 3.6, aarch64) requirements:", ", ".join(map(str, requirements)))


def test_those_requirements_have_wheels_for_python_3_6_on_aarch64(project_wheel, tmp_path):
    """Asks PyPI: each requirement has a CPython 3.6 wheel for the Nano's aarch64."""
    wanted: dict[str, SpecifierSet] = {}
    for requirement in _requirements_on(_metadata(project_wheel), JETSON_NANO, "runtime"):
        wanted[requirement.name] = (
            wanted.get(requirement.name, SpecifierSet()) & requirement.specifier
        )
    requirements = [name + str(specifier) for name, specifier in wanted.items()]  # markers met
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q"]
    command += ["--python-version", "3.6", "--implementation", "cp", "--abi", "cp36m"]
    command += ["--platform", "manylinux2014_aarch64", "-d", str(tmp_path), *requirements]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    downloaded = sorted(p.name for p in tmp_path.iterdir())
    print("resolved for the Nano:", ", ".join(downloaded))
    assert len(downloaded) == 4 and any(name.startswith("numpy-1.19") for name in downloaded)


def test_pip_21_3_1_installs_the_wheel_and_the_commands_run(project_wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "pip==21.3.1"], check=True, capture_output=True)
    version = subprocess.run(
        [python, "-m", "pip", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("pip 21.3.1")
    installed = subprocess.run(
        [*pip, str(project_wheel)], capture_output=True, text=True, check=False
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    for command in (
        "fanet.cli.device.bench",
        "fanet.cli.device.segment",
        "fanet.cli.device.triton",
    ):
        shown = subprocess.run(
            [python, "-m", command, "--help"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=False,
        )
        assert shown.returncode == 0 and "examples:" in shown.stdout, shown.stderr[-2000:]


DOCKERFILES = sorted((ROOT / "docker").glob("Dockerfile*"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_passes_every_dockerfile(dockerfile):
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "warning", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_images_take_pinned_bases_and_copy_only_the_project(dockerfile):
    text = dockerfile.read_text()
    arguments = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
    for base in re.findall(r"^FROM (?:--platform=\S+ )?\$\{(\w+)\}", text, re.MULTILINE):
        image = arguments[base]
        assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), image
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE)
    assert {path for line in copied for path in line.split()} <= {
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "fanet",
    }
    assert "USER 1000" in text and "HEALTHCHECK" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ignored[ignored.index("*") + 1 :][:4] == [
        "!pyproject.toml",
        "!README.md",
        "!LICENSE",
        "!fanet/",
    ]
