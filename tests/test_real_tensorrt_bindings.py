"""NVIDIA's real TensorRT bindings of 8.6, 10.13, 11.0 and 11.4 (``support.tensorrt_bindings``):
the device side imports against each, and where TensorRT cannot create a builder or runtime
(no usable GPU: here its libraries are stand-ins whose factories return null) the commands
say so in one line."""

import sys

import pytest

from support.artefacts import fp32_graph, host_artefact
from support.tensorrt_bindings import WHEELS, run

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the binding wheels are built for Linux"
)


@pytest.mark.parametrize("version", sorted(WHEELS))
def test_the_device_side_imports_against_the_real_bindings(version, tmp_path):
    done = run(version, "support.device_modules", [], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == version


@pytest.mark.parametrize("version", sorted(WHEELS))
def test_tensorrt_that_cannot_start_is_one_line(version, tmp_path):
    graph = str(fp32_graph(host_artefact("export_set")))
    built = run(version, "fanet.cli.device.build", [graph, "--fp16", "-o", "x.engine"], tmp_path)
    assert built.returncode == 1 and built.stderr.count("\n") == 1, built.stderr[-3000:]
    assert built.stderr == (
        "fanet-build: error: no usable CUDA GPU was found: TensorRT {} cannot create its "
        "builder (it logged no reason); is the GPU visible here (Docker: --runtime nvidia / "
        "--gpus all) and does the driver match this TensorRT?\n".format(version)
    )
    bench = ["--onnx", graph, "--backend", "tensorrt", "--res", "64x128"]
    measured = run(version, "fanet.cli.device.bench", bench, tmp_path)
    assert measured.returncode == 1 and "Traceback" not in measured.stderr, measured.stderr
    assert "cannot create its runtime" in measured.stderr.splitlines()[-1]
    assert not list(tmp_path.iterdir())
