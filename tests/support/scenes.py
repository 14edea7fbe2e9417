"""Synthetic scenes the tests need beyond ``fanet.core.synthetic``: video snippets in
Cityscapes' ``leftImg8bit_sequence`` layout, and the label file of an image (Python 3.6)."""

import os
from typing import List, Tuple

import numpy as np

from fanet.core.media_files import write_png
from fanet.core.synthetic import CITY, render_scene


def write_sequences(
    root: str,
    split: str,
    count: int,
    seed: int = 0,
    size: Tuple[int, int] = (256, 512),
    before: int = 1,
) -> List[str]:
    """``count`` labelled scenes in the Cityscapes layout, each the 20th frame of a
    snippet, with the ``before`` frames that precede it (the camera panning 3 pixels a
    frame) in ``leftImg8bit_sequence``, as Cityscapes ships them; returns the labelled
    images' paths."""
    labelled = 19
    paths = []
    for index in range(count):
        image, labels = render_scene(seed * 100_003 + index, *size)
        stem = f"{CITY}_{index:06d}"
        paths.append(
            os.path.join(root, "leftImg8bit", split, CITY, f"{stem}_{labelled:06d}_leftImg8bit.png")
        )
        write_png(paths[-1], image)
        label_name = f"{stem}_{labelled:06d}_gtFine_labelIds.png"
        write_png(os.path.join(root, "gtFine", split, CITY, label_name), labels)
        for back in range(1, before + 1):
            frame = np.roll(image, -3 * back, axis=1)
            name = f"{stem}_{labelled - back:06d}_leftImg8bit.png"
            write_png(os.path.join(root, "leftImg8bit_sequence", split, CITY, name), frame)
    return paths


def label_path_for(image_path: str) -> str:
    """The ``gtFine`` label-ID file of a ``leftImg8bit`` image."""
    folder, name = os.path.split(
        image_path.replace(os.sep + "leftImg8bit" + os.sep, os.sep + "gtFine" + os.sep, 1)
    )
    return os.path.join(folder, name.replace("_leftImg8bit.png", "_gtFine_labelIds.png"))
