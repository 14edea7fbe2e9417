"""Preprocessing: the lookup tables give the per-pixel formula."""

import numpy as np

from fanet.core.preprocess import preprocess


def test_preprocessing_tables_give_the_per_pixel_formula():
    image = np.random.default_rng(4).integers(0, 256, (37, 53, 3)).astype(np.uint8)
    mean, std = (0.3, 0.5, 0.7), (0.2, 0.25, 0.3)
    for rgb in (False, True):
        ordered = image if rgb else image[:, :, ::-1]
        scale = np.asarray(std, np.float32) * 255.0
        offset = np.asarray(mean, np.float32) * 255.0
        expected = ((ordered.astype(np.float32) - offset) / scale).transpose(2, 0, 1)[None]
        batch = preprocess(image, rgb=rgb, mean=mean, std=std)
        assert batch.flags["C_CONTIGUOUS"] and np.array_equal(batch, expected)
