"""What a user sees when TensorRT cannot do what is asked: one line each, never a traceback
(on each version's stand-in, which fails where the real bindings fail)."""

import importlib
import json

import numpy as np
import pytest

from fanet.core.engine_record import EngineError
from fanet.runtime.backend import BackendError

from support.artefacts import fp32_graph, host_artefact
from support.cuda_standins import SimulatedCuda
from support.device_modules import device_modules
from support.tensorrt_simulated import GPU
from support.tensorrt_standin import VERSIONS, install_standin


@pytest.mark.parametrize("version", VERSIONS)
def test_every_device_module_imports_on_every_version(monkeypatch, version):
    install_standin(monkeypatch, version, SimulatedCuda())
    for name in device_modules():
        importlib.import_module(name)


@pytest.mark.parametrize("version", ["8.4.1", "10.13.3", "11.4.0"])
def test_no_usable_gpu_is_one_line_with_tensorrts_reason(monkeypatch, capsys, version):
    """TensorRT 8.4 without a GPU logs ``CUDA initialization failure with error: 35`` and
    its constructors return null: fanet-build and the benchmark say so in one line."""
    cuda = SimulatedCuda()
    install_standin(monkeypatch, version, cuda, gpu=False)
    from fanet.cli.device import bench, build
    from fanet.runtime.trt import engine_cache

    monkeypatch.setattr(
        importlib.import_module("fanet.runtime.trt.builder"), "load_cuda_api", lambda: cuda
    )
    monkeypatch.setattr(engine_cache, "load_cuda_api", lambda: cuda)
    onnx = str(fp32_graph(host_artefact("export_set")))
    for run in (
        lambda: build.main([onnx, "--fp16", "-o", "never.engine"]),
        lambda: bench.main(["--onnx", onnx, "--backend", "tensorrt", "--res", "64x128"]),
    ):
        assert run() == 1
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and "Traceback" not in error[0], error
        assert "no usable CUDA GPU was found" in error[0]
        assert "CUDA initialization failure with error: 35" in error[0]


def _engine(tmp_path, profile):
    """A stand-in engine whose own profile is ``profile`` and whose record has none."""
    path = tmp_path / "model.engine"
    path.write_bytes(json.dumps({"shape": [1, 3, -1, -1], "profile": profile}).encode())
    record = {"tensorrt_version": "10.3.0", "gpu_name": GPU[0], "compute_capability": GPU[1]}
    (tmp_path / "model.engine.json").write_text(json.dumps(dict(record, precision="fp32")))
    return str(path)


def test_a_shape_tensorrt_rejects_names_the_input(monkeypatch, tmp_path):
    cuda = SimulatedCuda()
    install_standin(monkeypatch, "10.3.0", cuda)
    from fanet.runtime.trt.backend import TensorRTBackend

    engine = _engine(tmp_path, {"min": [1, 3, 32, 32], "max": [1, 3, 64, 64]})
    with TensorRTBackend(engine, cuda=cuda) as backend:
        backend.infer({"input": np.zeros((1, 3, 64, 64), np.float32)})
        with pytest.raises(
            BackendError, match=r"rejected shape \(1, 3, 128, 128\) for input 'input'"
        ):
            backend.infer({"input": np.zeros((1, 3, 128, 128), np.float32)})


class _MisalignedCuda(SimulatedCuda):
    """Device buffers 4 bytes past a 256-byte boundary (TensorRT wants them aligned)."""

    def malloc(self, nbytes):
        handle = super().malloc(nbytes)
        self.memory[handle + 4] = self.memory.pop(handle)
        return handle + 4

    def free(self, handle):
        del self.memory[handle]


def test_an_address_tensorrt_rejects_names_the_tensor(monkeypatch, tmp_path):
    cuda = _MisalignedCuda()
    install_standin(monkeypatch, "10.3.0", cuda)
    from fanet.runtime.trt.backend import TensorRTBackend

    rejected = pytest.raises(EngineError, match="device address of tensor 'input'")
    with TensorRTBackend(_engine(tmp_path, None), cuda=cuda) as backend, rejected:
        backend.infer({"input": np.zeros((1, 3, 32, 32), np.float32)})


def test_a_tensorrt_the_code_cannot_load_is_one_line(monkeypatch, tmp_path):
    """A TensorRT whose API lacks what the backend needs (here: no ILogger) is a
    BackendError naming the backend and the cause, not a traceback."""
    from fanet.runtime.registry import open_backend

    trt = install_standin(monkeypatch, "10.3.0", SimulatedCuda())
    names = object.__getattribute__(trt, "_standin_names")
    object.__setattr__(trt, "_standin_names", names - {"ILogger"})
    with pytest.raises(
        BackendError, match="the tensorrt backend cannot be loaded: AttributeError: .*ILogger"
    ):
        open_backend(_engine(tmp_path, None), backend="tensorrt")


@pytest.mark.parametrize("record", ["not json", '{"workspace_mib": "256"}'])
def test_a_cached_engine_whose_record_is_unusable_is_built_again(monkeypatch, tmp_path, record):
    """The engine cache takes an engine only with a readable, well-formed record."""
    cuda = SimulatedCuda()
    install_standin(monkeypatch, "10.3.0", cuda)
    from fanet.core.engine_record import read_record, record_path
    from fanet.runtime.trt import engine_cache

    monkeypatch.setattr(
        importlib.import_module("fanet.runtime.trt.builder"), "load_cuda_api", lambda: cuda
    )
    onnx = str(fp32_graph(host_artefact("export_set")))
    engine = engine_cache.engine_for_onnx(onnx, "fp32", str(tmp_path), cuda=cuda)
    with open(record_path(engine), "w") as stream:
        stream.write(record)
    assert engine_cache.engine_for_onnx(onnx, "fp32", str(tmp_path), cuda=cuda) == engine
    assert read_record(engine).precision == "fp32"  # rebuilt, with a record again
