"""A short supervised training loop (the paper's loss: cross-entropy on upsampled logits)."""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fanet.calibration.synthetic import label_path_for
from fanet.core.errors import FanetError
from fanet.core.labels import IGNORE, id_to_train_id
from fanet.core.preprocess import preprocess
from fanet.model.fanet import FANet

logger = logging.getLogger(__name__)


def load_pairs(image_paths: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Preprocessed images (N x 3 x H x W) and train-ID maps (N x H x W) of Cityscapes files."""
    lookup = id_to_train_id()
    images, targets = [], []
    for path in image_paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        labels = cv2.imread(label_path_for(path), cv2.IMREAD_GRAYSCALE)
        if image is None or labels is None:
            raise FanetError(f"cannot read {path} or its gtFine label-ID file")
        images.append(preprocess(image)[0])
        targets.append(lookup[labels])
    return torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(targets)).long()


def fit(
    model: FANet,
    images: torch.Tensor,
    targets: torch.Tensor,
    steps: int = 60,
    batch_size: int = 4,
    lr: float = 2e-3,
    seed: int = 0,
) -> FANet:
    """Train ``model`` in place with Adam for ``steps`` minibatches; returns it in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    started = time.monotonic()
    for step in range(steps):
        index = torch.randint(0, len(images), (batch_size,), generator=generator)
        logits = model(images[index])
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=True)
        loss = F.cross_entropy(logits, targets[index], ignore_index=IGNORE)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 0 or step == steps - 1:
            logger.info(
                "step %d/%d loss %.3f (%.0f s)",
                step + 1,
                steps,
                loss.item(),
                time.monotonic() - started,
            )
    return model.eval()
