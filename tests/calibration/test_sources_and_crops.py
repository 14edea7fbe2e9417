"""Calibration sources (Cityscapes root, folder, video) and deterministic crops."""

import cv2
import numpy as np
import pytest

from fanet.calibration.crops import CropStats, sample_crops
from fanet.calibration.errors import CalibrationError
from fanet.calibration.sources import open_source
from fanet.core.preprocess import preprocess
from fanet.core.synthetic import write_cityscapes


@pytest.fixture()
def cityscapes(tmp_path):
    write_cityscapes(str(tmp_path), "train", 4, seed=0, size=(64, 128))
    write_cityscapes(str(tmp_path), "val", 2, seed=1, size=(64, 128))
    return tmp_path


def test_cityscapes_root_uses_the_split(cityscapes):
    assert len(open_source(str(cityscapes), "train")) == 4
    source = open_source(str(cityscapes), "val")
    assert source.kind == "cityscapes" and len(source) == 2
    assert all(p.endswith("_leftImg8bit.png") for p in source.paths)
    with pytest.raises(CalibrationError, match="leftImg8bit/test folder .splits found: train, val"):
        open_source(str(cityscapes), "test")


def test_crops_are_deterministic_and_preprocessed_like_the_runtime(cityscapes):
    source = open_source(str(cityscapes))
    first = list(sample_crops(source, 6, (32, 48), seed=3))
    again = list(sample_crops(source, 6, (32, 48), seed=3))
    other = list(sample_crops(source, 6, (32, 48), seed=4))
    assert len(first) == 6 and first[0].shape == (1, 3, 32, 48) and first[0].dtype == np.float32
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    assert any((a != b).any() for a, b in zip(first, other, strict=True))
    images = [preprocess(cv2.imread(p)) for p in source.paths]
    crop = first[0][0]
    assert any(_contains(image[0], crop) for image in images)  # a crop of some image, as is


def _contains(image, crop):
    height, width = crop.shape[1:]
    for top in range(image.shape[1] - height + 1):
        for left in range(image.shape[2] - width + 1):
            if np.array_equal(image[:, top : top + height, left : left + width], crop):
                return True
    return False


def test_folder_and_video_sources(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)]
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i}.jpg"), frame)
    assert open_source(str(folder)).kind == "folder"
    video = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for frame in frames:
        writer.write(frame)
    writer.release()
    source = open_source(str(video))
    assert source.kind == "video" and len(source) == 5
    assert len(list(sample_crops(source, 3, (32, 32)))) == 3


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_empty_or_imageless_folder_is_an_error(tmp_path, content):
    if content:
        (tmp_path / content).write_text("no images here")
    with pytest.raises(CalibrationError, match="no images"):
        open_source(str(tmp_path))


def test_missing_path_and_non_video_file(tmp_path):
    with pytest.raises(CalibrationError, match="not found"):
        open_source(str(tmp_path / "nowhere"))
    (tmp_path / "list.txt").write_text("x")
    with pytest.raises(CalibrationError, match="not a video"):
        open_source(str(tmp_path / "list.txt"))


def test_images_smaller_than_the_crop_are_enlarged_and_counted(tmp_path):
    cv2.imwrite(str(tmp_path / "photo.png"), np.full((48, 64, 3), 200, np.uint8))
    cv2.imwrite(str(tmp_path / "large.png"), np.full((256, 512, 3), 100, np.uint8))
    stats = CropStats()
    crops = list(sample_crops(open_source(str(tmp_path)), 4, (128, 256), stats=stats))
    assert len(crops) == 4 and all(crop.shape == (1, 3, 128, 256) for crop in crops)
    assert [p.rsplit("/", 1)[-1] for p in stats.enlarged] == ["photo.png"]


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"good{i}.png"), np.zeros((40, 40, 3), np.uint8))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG truncated")
    stats = CropStats()
    crops = list(sample_crops(open_source(str(tmp_path)), 5, (32, 32), stats=stats))
    assert len(crops) == 5 and stats.crops == 5
    assert [p.rsplit("/", 1)[-1] for p in stats.skipped] == ["broken.png"]


def test_all_unreadable_is_an_error(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(CalibrationError, match="only 0 of 2 crops"):
        list(sample_crops(open_source(str(tmp_path)), 2, (8, 8)))


def test_broken_links_are_skipped_and_linked_folders_read_once(tmp_path, caplog):
    folder = tmp_path / "images"
    (folder / "city").mkdir(parents=True)
    cv2.imwrite(str(folder / "city" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (folder / "loop1.png").symlink_to("loop2.png")
    (folder / "loop2.png").symlink_to("loop1.png")
    (folder / "dangling.png").symlink_to("missing.png")
    (folder / "city" / "back").symlink_to("..")  # a folder link loop
    (folder / "again").symlink_to("city")  # the same images through a link
    source = open_source(str(folder))
    assert source.paths == (str(folder / "again" / "a.png"),)
    assert len(source.fingerprint()) == 64
    assert "skipped 3 broken links or unreadable entries" in caplog.text
