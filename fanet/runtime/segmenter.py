"""Segmenter: uint8 image in, Cityscapes train-ID map out, on any backend (Python 3.6).

    seg = Segmenter.from_file("fanet18_512x1024_fp16.engine")   # or .onnx / .pth
    labels = seg(image_bgr)                  # H x W uint8 train IDs at the image's size
    cv2.imshow("fanet", seg.overlay(image_bgr, labels))

Resizing policy: a graph with a fixed input size gets the image resized bilinearly to
that size; a dynamic graph gets the image at its own size. Logits (1/8 resolution) are
upsampled bilinearly with align_corners=True to the image size, as the authors' code
does, then argmax'd. Label outputs (``--output labels``) are resized nearest-neighbour.
"""

import logging
from typing import Any, Dict, Optional, Tuple

import numpy as np

from fanet.runtime.backend import Backend
from fanet.runtime.labels import train_id_palette
from fanet.runtime.preprocess import as_color_image, preprocess
from fanet.runtime.resize import upsampled_argmax

logger = logging.getLogger(__name__)


class Segmenter:
    """Segments images with a backend described by a sidecar."""

    def __init__(self, backend: Backend, metadata: Dict[str, Any], rgb: bool = False) -> None:
        self.backend = backend
        self.metadata = metadata
        self.rgb = rgb
        size = metadata.get("input_size")
        self.input_size: Optional[Tuple[int, int]] = tuple(size) if size else None
        self._input = backend.input_specs[0]
        self._output = backend.output_specs[0].name

    @classmethod
    def from_file(
        cls,
        path: str,
        backend: str = "auto",
        device: Optional[str] = None,
        rgb: bool = False,
        **options: Any,
    ) -> "Segmenter":
        """A Segmenter for an ``.engine``, ``.onnx`` or ``.pth``/``.pt``/``.pkl`` file."""
        from fanet.runtime.backends import metadata_for, open_backend

        opened = open_backend(path, backend=backend, device=device, **options)
        return cls(opened, metadata_for(path, opened), rgb=rgb)

    def feed(self, image: np.ndarray) -> np.ndarray:
        """The preprocessed 1 x 3 x h x w input tensor for ``image``."""
        batch = preprocess(
            image,
            size=self.input_size,
            rgb=self.rgb,
            mean=self.metadata["mean"],
            std=self.metadata["std"],
        )
        return batch.astype(self._input.dtype, copy=False)

    def logits(self, image: np.ndarray) -> np.ndarray:
        """Raw model output for one image: classes x h/8 x w/8 float32 logits."""
        output = self.backend.infer({self._input.name: self.feed(image)})[self._output]
        return np.asarray(output[0], dtype=np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """H x W uint8 train IDs at the size of ``image`` (H x W x 3 uint8, BGR unless rgb)."""
        image = as_color_image(image)
        height, width = image.shape[:2]
        output = self.backend.infer({self._input.name: self.feed(image)})[self._output][0]
        if output.ndim == 2:  # labels from the graph
            import cv2

            labels = output.astype(np.uint8)
            if labels.shape != (height, width):
                labels = cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)
            return labels
        logits = np.asarray(output, dtype=np.float32)
        return upsampled_argmax(logits, (height, width))

    @staticmethod
    def colorize(labels: np.ndarray) -> np.ndarray:
        """Cityscapes colours of a train-ID map, H x W x 3 uint8 in BGR (OpenCV) order."""
        return train_id_palette()[labels][:, :, ::-1].copy()

    def overlay(self, image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
        """``image`` blended with the colourised ``labels`` (same channel order as image)."""
        image = as_color_image(image)
        colours = self.colorize(labels)
        if self.rgb:
            colours = colours[:, :, ::-1]
        blended = image.astype(np.float32) * (1 - alpha) + colours.astype(np.float32) * alpha
        return np.clip(blended + 0.5, 0, 255).astype(np.uint8)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Segmenter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
