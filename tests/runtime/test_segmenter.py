"""Segmenter inputs and outputs: conversions, errors, colours, and the device-side imports."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fanet.runtime.preprocess import ImageError
from fanet.runtime.segmenter import Segmenter
from fanet.train.synthetic import render_scene


@pytest.fixture(scope="module")
def seg(exported_trained):
    with Segmenter.from_file(str(exported_trained), backend="onnxruntime") as segmenter:
        yield segmenter


def test_labels_at_the_image_size_for_any_size(seg):
    image, truth = render_scene(7, 200, 300)
    labels = seg(image)
    assert labels.shape == (200, 300) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= set(range(19))


def test_rgb_option_matches_bgr(exported_trained, seg):
    image, _ = render_scene(8, 128, 256)
    with Segmenter.from_file(str(exported_trained), backend="onnxruntime", rgb=True) as rgb_seg:
        assert (rgb_seg(image[:, :, ::-1].copy()) == seg(image)).all()


def test_documented_conversions(seg):
    image, _ = render_scene(9, 128, 256)
    gray = image.mean(axis=2).astype(np.uint8)
    assert seg(gray).shape == (128, 256)
    bgra = np.concatenate([image, np.full((128, 256, 1), 255, np.uint8)], axis=2)
    assert (seg(bgra) == seg(image)).all()
    strided = np.zeros((128, 512, 3), np.uint8)
    strided[:, ::2] = image
    view = strided[:, ::2]
    assert not view.flags.c_contiguous and (seg(view) == seg(image)).all()


@pytest.mark.parametrize(
    "image,message",
    [
        (np.zeros((0, 10, 3), np.uint8), "empty image"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10, 5), np.uint8), "H x W x 3"),
        ("image.png", "numpy array"),
    ],
)
def test_bad_images_are_clear_errors(seg, image, message):
    with pytest.raises(ImageError, match=message):
        seg(image)


def test_colorize_and_overlay(seg):
    labels = np.array([[0, 13], [10, 255]], np.uint8)
    colours = seg.colorize(labels)
    assert colours.shape == (2, 2, 3)
    assert colours[0, 0].tolist() == [128, 64, 128][::-1]  # road, BGR
    assert colours[0, 1].tolist() == [142, 0, 0]  # car (0, 0, 142) in BGR
    assert colours[1, 1].tolist() == [0, 0, 0]  # ignored
    image = np.full((2, 2, 3), 200, np.uint8)
    overlay = seg.overlay(image, labels, alpha=0.5)
    assert overlay[1, 1].tolist() == [100, 100, 100]


def test_onnx_without_sidecar_works_with_defaults(exported_trained, tmp_path, caplog):
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(exported_trained.read_bytes())
    image, _ = render_scene(3, 128, 256)
    with caplog.at_level("WARNING"), Segmenter.from_file(str(lone), backend="onnxruntime") as s:
        assert s(image).shape == (128, 256)
    assert "no sidecar" in caplog.text


BLOCKED = textwrap.dedent(
    """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("torch", "onnx", "onnxscript"):
                raise ImportError("blocked: " + name)

    sys.meta_path.insert(0, Block())
    import cv2
    import fanet.cli.build, fanet.cli.common, fanet.metrics
    import fanet.runtime.backends, fanet.runtime.cuda_memory, fanet.runtime.engine_record
    import fanet.runtime.io_buffers, fanet.runtime.onnxruntime_backend, fanet.runtime.segmenter
    import fanet.runtime.trt_versions
    from fanet.runtime.segmenter import Segmenter

    seg = Segmenter.from_file(sys.argv[1], backend="onnxruntime")
    image = cv2.imread(sys.argv[2])
    loaded = sorted(m for m in sys.modules if m.startswith(("torch", "onnx.")))
    print("labels", seg(image).shape, loaded)
    """
)


def test_device_side_runs_without_torch_and_onnx(exported_trained, tmp_path):
    import cv2

    image_path = tmp_path / "scene.png"
    cv2.imwrite(str(image_path), render_scene(1, 128, 256)[0])
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED, str(exported_trained), str(image_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "labels (128, 256) []" in result.stdout
