"""The makers of ``artefacts.host_artefact``: what only the host side (PyTorch, onnx) can
make. Run in process by host tests, or as ``python -m support.host_artefacts NAME FOLDER``
(from ``tests/``) for the device tests' Python 3.6 run.

Exports use opset 13: what every TensorRT from 8.2 (the Jetson Nano) parses and ONNX
Runtime 1.10 (the last for Python 3.6) reads, so one artefact serves every run."""

import sys
from pathlib import Path

from support.artefacts import host_artefact

SCENE_SIZE = (128, 256)
SMALL = (64, 128)


def cityscapes(folder: Path) -> None:
    """A Cityscapes-layout root: 48 train and 8 val synthetic street scenes (128x256)."""
    from fanet.core.synthetic import write_cityscapes

    write_cityscapes(str(folder), "train", 48, seed=1, size=SCENE_SIZE)
    write_cityscapes(str(folder), "val", 8, seed=2, size=SCENE_SIZE)


def trained(folder: Path) -> None:
    """fanet-train's folder after 200 iterations of the released recipe (SGD, poly, OHEM,
    auxiliary heads, flip, crop, jitter; scale 0.75-1.25 for images this small) on the 48
    training scenes, batch 8, validated once on the 8 held-out ones (about 90 s)."""
    from fanet.train.trainer import TrainConfig, train

    config = TrainConfig(
        cityscapes=str(host_artefact("cityscapes")),
        crop=SCENE_SIZE,
        batch=8,
        iters=200,
        scale=(0.75, 1.25),
        val_every=200,
        workers=0,
        output_dir=str(folder),
    )
    train(config)


def exported_trained(folder: Path) -> None:
    """The FP32 ONNX (128x256, with sidecar) of the trained model."""
    _export(folder, weights=str(host_artefact("trained") / "last.pth"), size=SCENE_SIZE)


def exported_trained_int8(folder: Path) -> None:
    """The trained model's FP32 graph and its three INT8 graphs (128x256), calibrated on
    16 crops of the training scenes."""
    _export(
        folder,
        weights=str(host_artefact("trained") / "last.pth"),
        size=SCENE_SIZE,
        int8=True,
        calib_data=str(host_artefact("cityscapes")),
        calib_count=16,
    )


def temporal(folder: Path) -> None:
    """A 2-frame temporal FP32 ONNX (random weights, 64x128, sum over the frames)."""
    _export(folder, random_weights=True, size=SMALL, temporal=2, temporal_reduce="sum")


def export_set(folder: Path) -> None:
    """Random weights at 64x128, opset 17: FP32, FP16 and the three INT8 graphs with the
    calibration cache (4 synthetic crops)."""
    _export(
        folder,
        random_weights=True,
        size=SMALL,
        fp16=True,
        int8=True,
        calib_data=str(host_artefact("cityscapes")),
        calib_count=4,
    )


def tiny_export(folder: Path) -> None:
    """Random weights at 32x64, FP32 only: about 1 ms per frame on ONNX Runtime."""
    _export(folder, random_weights=True, size=(32, 64))


def dynamic_export(folder: Path) -> None:
    """Random weights, dynamic height and width, FP32 only."""
    _export(folder, random_weights=True, size=None)


OPSET = 13


def batched(folder: Path) -> None:
    """For Triton: a 2-frame temporal export (mean) with a batch axis up to 4, and one with
    dynamic sides and a batch up to 8 (random weights)."""
    _export(folder, random_weights=True, size=SMALL, max_batch=4, temporal=2)
    _export(folder, random_weights=True, size=None, max_batch=8)


def _export(folder: Path, **config: object) -> None:
    from fanet.export.pipeline import ExportConfig, run_export

    run_export(ExportConfig(output_dir=str(folder), opset=OPSET, **config))  # type: ignore[arg-type]


MAKERS = {
    maker.__name__: maker
    for maker in (
        cityscapes,
        trained,
        exported_trained,
        exported_trained_int8,
        temporal,
        export_set,
        tiny_export,
        dynamic_export,
        batched,
    )
}


def make(name: str, folder: Path) -> None:
    MAKERS[name](folder)


if __name__ == "__main__":
    make(sys.argv[1], Path(sys.argv[2]))
