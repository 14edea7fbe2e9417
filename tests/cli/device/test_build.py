"""fanet-build where TensorRT is missing: one clear line, exit 1."""

import sys

import pytest

from fanet.runtime.trt.versions import installed_tensorrt_version

from support.commands import captured


@pytest.mark.skipif(installed_tensorrt_version() is not None, reason="TensorRT is installed")
def test_without_tensorrt(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"")
    result = captured(
        [sys.executable, "-m", "fanet.cli.device.build", str(tmp_path / "m.onnx")],
    )
    assert result.returncode == 1
    assert result.stderr.startswith("fanet-build: error: TensorRT is not installed")
    assert result.stderr.count("\n") == 1 and "--backend" not in result.stderr


def test_a_missing_onnx_is_named_before_tensorrt_is_looked_for(tmp_path):
    missing = str(tmp_path / "nothere.onnx")
    result = captured(
        [sys.executable, "-m", "fanet.cli.device.build", missing, "--fp16"],
    )
    assert result.returncode == 1
    assert result.stderr == "fanet-build: error: ONNX file not found: {}\n".format(missing)


def test_help_has_examples():
    result = captured(
        [sys.executable, "-m", "fanet.cli.device.build", "--help"],
    )
    assert result.returncode == 0 and "examples:" in result.stdout and "--fp16" in result.stdout
