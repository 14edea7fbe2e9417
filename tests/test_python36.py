"""The device side on a real CPython 3.6 with what a Jetson Nano (JetPack 4.6) has: pip
21.3.1 installing the project's wheel, numpy 1.19, ONNX Runtime 1.10, OpenCV, and real
TensorRT 8.4 (``python36_env``). The device tests run there, the device commands label as
they do on this Python, and the device side imports against real TensorRT and says, in
one line, that this machine has no usable GPU. Skipped, saying why, without a Python 3.6.
"""

import os
import re
import subprocess
import sys
import time

import cv2
import numpy as np
import onnxruntime
import pytest

from support.artefacts import HOST_PYTHON_VARIABLE, ROOT_VARIABLE, fp32_graph, host_artefact
from support.device_modules import DEVICE_TEST_FOLDERS
from support.python36_env import ROOT, find_python36, installed, python36_environment

pytestmark = pytest.mark.py36
DEVICE_TESTS = ["tests/" + folder for folder in DEVICE_TEST_FOLDERS]


@pytest.fixture(scope="session")
def python36(project_wheel):
    interpreter = find_python36()
    if interpreter is None:
        pytest.skip("no CPython 3.6 here: set FANET_PYTHON36 (pyenv install 3.6.15)")
    return python36_environment(interpreter, project_wheel)


def test_pip_21_installs_the_wheel_with_wheels_a_nano_also_gets(python36):
    versions = dict(line.split("==") for line in installed(python36))
    print(
        "Python 3.6 environment:",
        ", ".join("{}=={}".format(*kv) for kv in sorted(versions.items())),
    )
    assert versions["pip"] == "21.3.1" and "fanet" in versions
    assert versions["numpy"].startswith("1.19.") and versions["onnxruntime"] == "1.10.0"
    assert versions["opencv-python-headless"].startswith("4.6.")  # a wheel, not a build of 5.x


def test_the_device_tests_pass_on_python_3_6(python36):
    env = {ROOT_VARIABLE: os.environ[ROOT_VARIABLE], HOST_PYTHON_VARIABLE: sys.executable}
    started = time.monotonic()
    result = python36.run(
        ["-m", "pytest", *DEVICE_TESTS, "-m", "not slow", "-q", "-p", "no:cacheprovider"],
        cwd=str(ROOT),
        env=env,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    print("Python 3.6: {} ({:.0f} s)".format(summary, time.monotonic() - started))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert int(re.search(r"(\d+) passed", summary).group(1)) >= 250


def _segment(python, graph, images, out, env=None):
    command = ["-m", "fanet.cli.device.segment", str(images), "--onnx", str(graph)]
    command += ["--backend", "onnxruntime", "--labels", "-o", str(out), "-q"]
    if python is None:
        return subprocess.run(
            [sys.executable, *command], capture_output=True, text=True, check=False
        )
    return python.run(command)


def test_the_device_commands_label_as_on_this_python(python36, tmp_path):
    graph = fp32_graph(host_artefact("exported_trained"))
    images = host_artefact("cityscapes") / "leftImg8bit" / "val"
    for name, python in (("py36", python36), ("host", None)):
        done = _segment(python, graph, str(images / "*" / "*.png"), tmp_path / name)
        assert done.returncode == 0, done.stderr
    labels = sorted((tmp_path / "host").glob("*_trainIds.png"))
    assert len(labels) == 8
    differ = [
        int(np.sum(cv2.imread(str(path), 0) != cv2.imread(str(tmp_path / "py36" / path.name), 0)))
        for path in labels
    ]
    print(
        "pixels labelled differently on Python 3.6 (ONNX Runtime 1.10) and {} (ONNX Runtime "
        "{}), of {} per image: {}".format(
            sys.version.split()[0], onnxruntime.__version__, 128 * 256, differ
        )
    )
    assert max(differ) <= 0.001 * 128 * 256


def test_onnxruntime_1_10_asks_for_an_opset_it_reads(python36, tmp_path):
    """The default export (opset 17) is more than ONNX Runtime 1.10 reads: one line."""
    from fanet.export.pipeline import ExportConfig, run_export

    run_export(
        ExportConfig(random_weights=True, size=(64, 128), opset=17, output_dir=str(tmp_path))
    )
    image = host_artefact("cityscapes") / "leftImg8bit" / "val"
    done = _segment(
        python36, tmp_path / "fanet18_64x128.onnx", str(image / "*" / "*.png"), tmp_path / "out"
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert (
        "reads ONNX opsets up to 15" in done.stderr and "export it with --opset 13" in done.stderr
    )


def test_real_tensorrt_8_4_loads_the_device_side_and_says_there_is_no_gpu(python36, tmp_path):
    loaded = python36.run(["-m", "support.device_modules"], with_tensorrt=True)
    assert loaded.returncode == 0 and loaded.stdout.strip() == "8.4.1.5", loaded.stderr
    graph = str(fp32_graph(host_artefact("export_set")))
    for command in (
        ["-m", "fanet.cli.device.build", graph, "--fp16", "-o", str(tmp_path / "x.engine")],
        [
            "-m",
            "fanet.cli.device.bench",
            "--onnx",
            graph,
            "--backend",
            "tensorrt",
            "--res",
            "64x128",
        ],
    ):
        done = python36.run(command, with_tensorrt=True)
        lines = done.stderr.strip().splitlines()
        print(lines[-1])
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert lines[-1].endswith(
            "error: no usable CUDA GPU was found: TensorRT 8.4.1.5 cannot create its {} (CUDA "
            "initialization failure with error: 35); is the GPU visible here (Docker: --runtime "
            "nvidia / --gpus all) and does the driver match this TensorRT?".format(
                "builder" if "build" in command[1] else "runtime"
            )
        )
    assert not list(tmp_path.iterdir())
