"""Labelled and unlabelled images on disk: a Cityscapes root or plain folders (Python 3.6).

A Cityscapes root holds ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and, for the
labelled splits, ``gtFine/<split>/<city>/*_gtFine_labelIds.png``. Plain folders pair an
image with the label PNG of the same stem (label stems may end in ``_labelIds``,
``_trainIds`` or ``_gtFine_labelIds``). Calibration, evaluation and training all find their
images here.
"""

import os
from typing import List, NamedTuple, Optional, Tuple

from fanet.core.errors import FanetError
from fanet.core.media_files import find_files, is_image_name

CITYSCAPES_IMAGE = "_leftImg8bit.png"
CITYSCAPES_LABEL = "_gtFine_labelIds.png"
LABEL_KINDS = ("label_ids", "train_ids")  # Cityscapes label IDs, or train IDs already
LABEL_SUFFIXES = ("_gtFine_labelIds", "_labelIds", "_trainIds", "_gtFine_trainIds")


class DatasetError(FanetError):
    """Images or labels cannot be found where they were asked for."""


class Pair(NamedTuple):
    name: str
    image: str
    label: str


class Pairs(NamedTuple):
    """Image/label pairs found, and the images found without a label."""

    pairs: List[Pair]
    unlabelled: List[str]


def cityscapes_images(root: str, split: str) -> Optional[List[str]]:
    """The ``*_leftImg8bit.png`` images of ``root``'s ``split`` (None: ``root`` has no
    ``leftImg8bit`` folder, so it is not a Cityscapes root); ``DatasetError`` names the
    splits there are when ``split`` is not one of them."""
    splits = os.path.join(root, "leftImg8bit")
    if not os.path.isdir(splits):
        return None
    images_dir = os.path.join(splits, split)
    if not os.path.isdir(images_dir):
        raise DatasetError(
            "{} has no leftImg8bit/{} folder (splits found: {})".format(
                root, split, ", ".join(sorted(os.listdir(splits))) or "none"
            )
        )
    return find_files(images_dir, lambda name: name.endswith(CITYSCAPES_IMAGE))


def cityscapes_pairs(root: str, split: str = "val") -> Pairs:
    """The pairs of a Cityscapes root's ``split``; ``DatasetError`` for an empty one."""
    images = cityscapes_images(root, split)
    if images is None:
        raise DatasetError(
            "{} has no leftImg8bit/{} folder (splits found: none: is it a Cityscapes root?)".format(
                root, split
            )
        )
    images_dir = os.path.join(root, "leftImg8bit", split)
    if not images:
        raise DatasetError("no *{} images in {}".format(CITYSCAPES_IMAGE, images_dir))
    pairs, unlabelled = [], []
    for image in images:
        folder, name = os.path.split(os.path.relpath(image, images_dir))
        stem = name[: -len(CITYSCAPES_IMAGE)]
        label = os.path.join(root, "gtFine", split, folder, stem + CITYSCAPES_LABEL)
        if os.path.isfile(label):
            pairs.append(Pair(stem, image, label))
        else:
            unlabelled.append(image)
    return Pairs(pairs, unlabelled)


def folder_pairs(images_dir: str, labels_dir: str) -> Pairs:
    """Images and label PNGs matched by stem."""
    for folder in (images_dir, labels_dir):
        if not os.path.isdir(folder):
            raise DatasetError("no such folder: {}".format(folder))
    labels = {}
    for path in find_files(labels_dir, lambda name: name.lower().endswith(".png")):
        labels[_stem(path, LABEL_SUFFIXES)] = path
    label_files = set(labels.values())  # the same folder may hold both
    images = [p for p in find_files(images_dir, is_image_name) if p not in label_files]
    if not images:
        raise DatasetError("no images in {}".format(images_dir))
    pairs, unlabelled = [], []
    for image in images:
        stem = _stem(image, ("_leftImg8bit",))
        if stem in labels:
            pairs.append(Pair(stem, image, labels[stem]))
        else:
            unlabelled.append(image)
    return Pairs(pairs, unlabelled)


class LabelledData(NamedTuple):
    """Where labelled images are: a Cityscapes root and split, or two folders."""

    cityscapes: Optional[str] = None
    split: str = "val"
    images: Optional[str] = None
    labels: Optional[str] = None
    label_kind: Optional[str] = None  # None: label IDs for Cityscapes, train IDs for folders


def find_pairs(data: LabelledData, what: str = "data") -> Tuple[Pairs, str]:
    """The pairs ``data`` names and the kind of their label values; ``DatasetError`` when
    it names both sources or neither (``what`` says whose data it is)."""
    if data.cityscapes and (data.images or data.labels):
        raise DatasetError("give --cityscapes, or --images and --labels, not both")
    if data.cityscapes:
        return cityscapes_pairs(data.cityscapes, data.split), data.label_kind or "label_ids"
    if not (data.images and data.labels):
        raise DatasetError(
            "no {}: pass --cityscapes ROOT, or --images DIR and --labels DIR".format(what)
        )
    return folder_pairs(data.images, data.labels), data.label_kind or "train_ids"


def _stem(path: str, suffixes: Tuple[str, ...]) -> str:
    """The file's stem without the first of ``suffixes`` it ends in."""
    stem = os.path.splitext(os.path.basename(path))[0]
    for suffix in suffixes:
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem
