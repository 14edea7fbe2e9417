"""Datasets on disk: Cityscapes roots and image/label folders, one finder for calibration,
evaluation and training."""

import shutil

import pytest

from fanet.core.synthetic import write_cityscapes
from fanet.evaluation.datasets import (
    DatasetError,
    LabelledData,
    cityscapes_images,
    cityscapes_pairs,
    find_pairs,
    folder_pairs,
)


@pytest.fixture(scope="module")
def cityscapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("cityscapes")
    write_cityscapes(str(root), "train", 3, size=(32, 64))
    write_cityscapes(str(root), "val", 2, size=(32, 64))
    return root


def test_a_cityscapes_split_pairs_each_image_with_its_label(cityscapes):
    found = cityscapes_pairs(str(cityscapes), "train")
    assert len(found.pairs) == 3 and not found.unlabelled
    for pair in found.pairs:
        assert pair.image.endswith("_leftImg8bit.png")
        assert pair.label.endswith(pair.name + "_gtFine_labelIds.png")


def test_a_missing_split_names_the_splits_there_are(cityscapes):
    with pytest.raises(
        DatasetError, match=r"no leftImg8bit/test folder \(splits found: train, val\)"
    ):
        cityscapes_images(str(cityscapes), "test")
    assert cityscapes_images(str(cityscapes / "gtFine"), "train") is None  # not a root


def test_folders_pair_by_stem_and_count_images_without_a_label(tmp_path, cityscapes):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    names = [pair.name for pair in cityscapes_pairs(str(cityscapes), "train").pairs]
    for pair in cityscapes_pairs(str(cityscapes), "train").pairs:
        shutil.copyfile(pair.image, str(images / (pair.name + ".png")))
    (labels / (names[0] + "_labelIds.png")).write_bytes(b"png")
    found = folder_pairs(str(images), str(labels))
    assert [pair.name for pair in found.pairs] == names[:1]
    assert len(found.unlabelled) == 2


def test_one_source_must_be_named_and_sets_the_label_kind(cityscapes, tmp_path):
    pairs, kind = find_pairs(LabelledData(str(cityscapes), "val"))
    assert len(pairs.pairs) == 2 and kind == "label_ids"
    _, kind = find_pairs(LabelledData(str(cityscapes), "val", label_kind="train_ids"))
    assert kind == "train_ids"
    with pytest.raises(DatasetError, match="not both"):
        find_pairs(LabelledData(str(cityscapes), images=str(tmp_path), labels=str(tmp_path)))
    with pytest.raises(DatasetError, match="no training data: pass --cityscapes ROOT"):
        find_pairs(LabelledData(), "training data")
