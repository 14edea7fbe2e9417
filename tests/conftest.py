"""Shared fixtures: the reference files in ../shared/reference and golden weights."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

REFERENCE_DIR = Path(
    os.environ.get(
        "FANET_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "reference"
    )
)
GOLDEN_WEIGHT_SEED = 7


def _require_reference(name: str) -> Path:
    path = REFERENCE_DIR / name
    if not path.is_file():
        pytest.skip(f"reference file {path} not found (set FANET_REFERENCE_DIR)")
    return path


def golden_state_dict(arch: str) -> dict:
    """Weights drawn from the key manifest exactly as FANET_SPEC.md describes."""
    import torch

    manifest = json.loads(_require_reference(f"keys_{arch}.json").read_text())
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


def golden_outputs(arch: str) -> dict[str, np.ndarray]:
    """``input``, ``logits`` and ``logits_f64`` of the released code."""
    with np.load(_require_reference(f"golden_{arch}.npz")) as data:
        return {key: data[key] for key in data.files}


def pytest_configure(config):
    """Ctrl-C behaves as in a terminal even where the suite was started in the background
    (a shell starts background jobs with SIGINT ignored, and Python then keeps it so, in
    this process and in every command the tests start)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def golden_fanet18():
    """(state dict, golden outputs) for FANet-18."""
    return golden_state_dict("fanet18"), golden_outputs("fanet18")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE_DIR


SCENE_SIZE = (128, 256)


@pytest.fixture(scope="session")
def synthetic_cityscapes(tmp_path_factory) -> Path:
    """A Cityscapes-layout root with 48 train and 8 val synthetic street scenes."""
    from fanet.calibration.synthetic import write_cityscapes

    root = tmp_path_factory.mktemp("cityscapes")
    write_cityscapes(str(root), "train", 48, seed=1, size=SCENE_SIZE)
    write_cityscapes(str(root), "val", 8, seed=2, size=SCENE_SIZE)
    return root


@pytest.fixture(scope="session")
def trained_run(synthetic_cityscapes, tmp_path_factory) -> Path:
    """fanet-train's folder after 200 iterations of the released recipe (SGD, poly, OHEM,
    auxiliary heads, flip, crop, jitter; scale 0.75-1.25 for images this small) on the 48
    training scenes, batch 8, validated once on the 8 held-out ones (about 90 s)."""
    from fanet.train.trainer import TrainConfig, train

    out = tmp_path_factory.mktemp("trained")
    config = TrainConfig(
        cityscapes=str(synthetic_cityscapes),
        crop=SCENE_SIZE,
        batch=8,
        iters=200,
        scale=(0.75, 1.25),
        val_every=200,
        workers=0,
        output_dir=str(out),
    )
    train(config)
    return out


@pytest.fixture(scope="session")
def trained_checkpoint(trained_run) -> Path:
    """FANet-18 trained on the synthetic street scenes (confident predictions)."""
    return trained_run / "last.pth"


@pytest.fixture(scope="session")
def exported_trained(trained_checkpoint, tmp_path_factory) -> Path:
    """FP32 ONNX (128x256, with sidecar) of the trained fixture model."""
    from fanet.export.pipeline import ExportConfig, run_export

    out = tmp_path_factory.mktemp("exported")
    run_export(ExportConfig(weights=str(trained_checkpoint), size=SCENE_SIZE, output_dir=str(out)))
    return out / "fanet18_128x256.onnx"


@pytest.fixture(scope="session")
def temporal_export(tmp_path_factory) -> Path:
    """A 2-frame temporal FP32 ONNX (random weights, 64x128, sum over the frames)."""
    from fanet.export.pipeline import ExportConfig, run_export

    out = tmp_path_factory.mktemp("temporal")
    config = ExportConfig(
        random_weights=True, size=(64, 128), temporal=2, temporal_reduce="sum", output_dir=str(out)
    )
    return Path(run_export(config)[0].path)


def pytest_collection_modifyitems(config, items):
    """Skip tensorrt/gpu tests, with the reason, where the machine lacks them."""
    from fanet.runtime.trt.versions import installed_tensorrt_version

    no_trt = pytest.mark.skip(reason="TensorRT is not installed on this machine")
    no_gpu = pytest.mark.skip(reason="no CUDA GPU on this machine")
    has_gpu = _cuda_available()
    for item in items:
        if "tensorrt" in item.keywords and installed_tensorrt_version() is None:
            item.add_marker(no_trt)
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(no_gpu)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()
