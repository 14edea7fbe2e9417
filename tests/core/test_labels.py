"""The one Cityscapes table fanet uses equals the official one (cityscapesscripts)."""

import pytest

from fanet.core.labels import IGNORE, LABELS, TRAIN_CLASSES


def test_the_table_is_the_official_cityscapes_table():
    official = pytest.importorskip("cityscapesscripts.helpers.labels").labels
    expected = [
        (label.name, label.id, label.trainId if 0 <= label.trainId < 19 else IGNORE, label.color)
        for label in official
        if label.id >= 0
    ]
    assert [(lb.name, lb.id, lb.train_id, lb.color) for lb in LABELS] == expected


def test_the_train_classes_are_the_19_in_train_id_order():
    assert [label.train_id for label in TRAIN_CLASSES] == list(range(19))
    assert TRAIN_CLASSES[0].name == "road" and TRAIN_CLASSES[18].name == "bicycle"
