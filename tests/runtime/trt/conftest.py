"""Fixtures for the TensorRT tests: the stand-in of a version (``support.tensorrt_standin``,
built from the manifests of NVIDIA's bindings), engine files for it, and CUDA stand-ins."""

import importlib
import json
import sys

import pytest

from fanet.core.engine_record import EngineRecord, write_record

from support.cuda_standins import CountingCuda, DeviceCopyCuda, SimulatedCuda
from support.tensorrt_standin import TRT_MODULES, install_standin


@pytest.fixture
def install_fake_tensorrt(monkeypatch):
    """``install(version, cuda)``: make ``import tensorrt`` give the stand-in built from
    that version's manifest; returns the TensorRT backend module imported against it
    (removed again after the test)."""

    def install(version, cuda, recorder=None, **knobs):
        install_standin(monkeypatch, version, cuda, recorder, **knobs)
        return importlib.import_module("fanet.runtime.trt.backend")

    yield install
    for name in TRT_MODULES[1:]:
        sys.modules.pop(name, None)  # nothing keeps a module imported against a stand-in


@pytest.fixture
def fake_engine(tmp_path):
    """``fake_engine(version, cuda)``: an engine file for the stand-in (dynamic H and W),
    with the record the backend's machine check expects."""

    def write(version, cuda, shape=(1, 3, -1, -1), state=()):
        path = tmp_path / "model.engine"
        description = {"shape": list(shape), "state": [list(entry) for entry in state]}
        path.write_bytes(json.dumps(description).encode())
        name, capability = cuda.device_properties()
        write_record(str(path), EngineRecord(version, name, capability, precision="fp16"))
        return str(path)

    return write


@pytest.fixture
def simulated_cuda():
    return CountingCuda(SimulatedCuda())


@pytest.fixture
def real_cuda():
    pytest.importorskip("cuda", reason="cuda-python is not installed")
    return CountingCuda(DeviceCopyCuda())
