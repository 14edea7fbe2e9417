"""Synthetic street scenes: deterministic, Cityscapes layout, the expected classes."""

import cv2
import numpy as np

from fanet.core.labels import LABEL_BY_NAME
from fanet.core.synthetic import render_scene, write_cityscapes
from fanet.evaluation.scoring import label_table

from support.scenes import label_path_for


def test_scenes_are_deterministic_by_seed():
    first, labels = render_scene(4, 96, 192)
    again, labels_again = render_scene(4, 96, 192)
    other, _ = render_scene(5, 96, 192)
    assert (first == again).all() and (labels == labels_again).all()
    assert (first != other).any()


def test_scenes_hold_street_classes():
    ids = set()
    for seed in range(6):
        ids |= set(np.unique(render_scene(seed, 128, 256)[1]).tolist())
    names = {"road", "sidewalk", "building", "vegetation", "sky", "car", "person"}
    assert {LABEL_BY_NAME[name].id for name in names} <= ids
    assert (label_table("label_ids").lookup[sorted(ids)] != 255).all()


def test_cityscapes_layout(tmp_path):
    paths = write_cityscapes(str(tmp_path), "val", 2, seed=3, size=(64, 128))
    assert paths[0].startswith(str(tmp_path / "leftImg8bit" / "val" / "synthcity"))
    labels = cv2.imread(label_path_for(paths[0]), cv2.IMREAD_UNCHANGED)
    assert "gtFine/val/synthcity" in label_path_for(paths[0])
    assert label_path_for(paths[0]).endswith("_gtFine_labelIds.png")
    assert labels.shape == (64, 128) and labels.dtype == np.uint8
    assert cv2.imread(paths[0]).shape == (64, 128, 3)
