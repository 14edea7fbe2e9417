"""Shared fixtures: the reference files in ../shared/reference, golden weights, and what
only the host side makes (``artefacts.py``). Python 3.6 compatible: the device tests run
there too."""

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Dict

import numpy as np
import pytest

from support import reference
from support.artefacts import ROOT_VARIABLE, fp32_graph, host_artefact

REFERENCE_DIR = Path(reference.REFERENCE_DIR)
GOLDEN_WEIGHT_SEED = 7


def _require_reference(name: str) -> Path:
    path = REFERENCE_DIR / name
    if not path.is_file():
        pytest.skip("reference file {} not found (set FANET_REFERENCE_DIR)".format(path))
    return path


def golden_state_dict(arch: str) -> dict:
    """Weights drawn from the key manifest exactly as FANET_SPEC.md describes."""
    import torch

    manifest = json.loads(_require_reference("keys_{}.json".format(arch)).read_text())
    torch.manual_seed(GOLDEN_WEIGHT_SEED)
    state = {}
    for key, shape, dtype in manifest:
        if "int" in dtype:
            state[key] = torch.zeros(shape, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape) + 0.5
        else:
            state[key] = torch.randn(shape) * 0.05
    return state


def golden_outputs(arch: str) -> Dict[str, np.ndarray]:
    """``input``, ``logits`` and ``logits_f64`` of the released code."""
    with np.load(str(_require_reference("golden_{}.npz".format(arch)))) as data:
        return {key: data[key] for key in data.files}


def pytest_configure(config):
    """Ctrl-C behaves as in a terminal even where the suite was started in the background
    (a shell starts background jobs with SIGINT ignored, and Python then keeps it so, in
    this process and in every command the tests start). Host-made artefacts go to a
    folder of this session, unless a parent session (the Python 3.6 run) shares its own."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if not os.environ.get(ROOT_VARIABLE):
        os.environ[ROOT_VARIABLE] = tempfile.mkdtemp(prefix="fanet-artefacts-")
        config._fanet_artefacts = os.environ[ROOT_VARIABLE]


def pytest_unconfigure(config):
    made = getattr(config, "_fanet_artefacts", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)
        os.environ.pop(ROOT_VARIABLE, None)


@pytest.fixture(scope="session")
def golden_fanet18():
    """(state dict, golden outputs) for FANet-18."""
    return golden_state_dict("fanet18"), golden_outputs("fanet18")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def synthetic_cityscapes() -> Path:
    """A Cityscapes-layout root with 48 train and 8 val synthetic street scenes (128x256)."""
    return host_artefact("cityscapes")


@pytest.fixture(scope="session")
def trained_run() -> Path:
    """fanet-train's folder after 200 iterations on the synthetic scenes (host_artefacts)."""
    return host_artefact("trained")


@pytest.fixture(scope="session")
def trained_checkpoint(trained_run) -> Path:
    """FANet-18 trained on the synthetic street scenes (confident predictions)."""
    return trained_run / "last.pth"


@pytest.fixture(scope="session")
def exported_trained() -> Path:
    """FP32 ONNX (128x256, with sidecar) of the trained fixture model."""
    return fp32_graph(host_artefact("exported_trained"))


@pytest.fixture(scope="session")
def temporal_export() -> Path:
    """A 2-frame temporal FP32 ONNX (random weights, 64x128, sum over the frames)."""
    return fp32_graph(host_artefact("temporal"))


def pytest_collection_modifyitems(config, items):
    """Skip tensorrt/gpu/host tests, with the reason, where the machine lacks them."""
    from fanet.core.host import host_available
    from fanet.runtime.trt.versions import installed_tensorrt_version

    no_trt = pytest.mark.skip(reason="TensorRT is not installed on this machine")
    no_gpu = pytest.mark.skip(reason="no CUDA GPU on this machine")
    no_host = pytest.mark.skip(reason="needs the host side (PyTorch), absent on this Python")
    has_gpu = _cuda_available()
    for item in items:
        if "tensorrt" in item.keywords and installed_tensorrt_version() is None:
            item.add_marker(no_trt)
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(no_gpu)
        if "host" in item.keywords and not host_available():
            item.add_marker(no_host)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory) -> Path:
    """The project's wheel, built from the checkout (``pip wheel``, no build isolation)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    root = str(Path(__file__).resolve().parents[1])
    subprocess.run(command + ["-q", "-w", str(out), root], check=True, stdout=subprocess.PIPE)
    (built,) = out.glob("*.whl")
    return built
