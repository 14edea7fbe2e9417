"""Fixtures of the device commands' tests."""

import cv2
import pytest


@pytest.fixture(scope="session")
def scenes(tmp_path_factory):
    """60 synthetic street scenes (128x256) as PNGs and as a 10 FPS video."""
    from fanet.core.synthetic import write_cityscapes

    root = tmp_path_factory.mktemp("scenes")
    write_cityscapes(str(root), "val", 60, seed=5, size=(128, 256))
    paths = sorted(root.glob("leftImg8bit/val/*/*.png"))
    video = root / "drive.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (256, 128))
    for path in paths:
        writer.write(cv2.imread(str(path)))
    writer.release()
    return paths, video
