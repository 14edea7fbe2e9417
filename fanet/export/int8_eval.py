"""The images an INT8 export is judged on, and mIoU of a graph on them (host side).

The images are scaled to the export's resolution, as a robot's frames are; their labels
(nearest-neighbour) are the reference where they have labels (a Cityscapes split), else
the FP32 graph's own labels are. Graphs run on ONNX Runtime's CPU provider: an INT8 form
for ONNX Runtime as it runs (integer kernels), a form for TensorRT with each Q/DQ pair
computed as written (``fake_quant``: round, saturate, scale in float), as TensorRT does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np
import onnx

from fanet.calibration.crops import CropStats
from fanet.calibration.sources import ImageSource, open_source
from fanet.core.labels import IGNORE
from fanet.core.media_files import read_image
from fanet.core.metrics import confusion_matrix
from fanet.core.postprocess import upsampled_argmax
from fanet.core.preprocess import preprocess
from fanet.core.sidecar import INPUT_NAME
from fanet.evaluation.datasets import DatasetError, cityscapes_pairs
from fanet.evaluation.scoring import Scores, label_table, train_ids
from fanet.export.errors import ExportError
from fanet.export.onnx_runs import image_feed, open_session

CITYSCAPES_LABELS = label_table("label_ids")


@dataclass(frozen=True)
class EvalSet:
    """Preprocessed images at the export size, their reference labels (train IDs, 255
    ignored; None: the FP32 graph's labels are the reference) and where they came from."""

    batches: list[np.ndarray]
    truth: list[np.ndarray] | None
    origin: str

    @property
    def reference(self) -> str:
        return "labels" if self.truth is not None else "FP32 labels"


def eval_set(
    eval_data: str | None,
    eval_split: str,
    count: int,
    size: tuple[int, int],
    calibration: ImageSource,
    used: CropStats,
) -> EvalSet:
    """``count`` images of ``eval_data`` (a Cityscapes root's ``eval_split``: labelled; an
    image folder or a video: not), or else of the calibration images calibration did not
    use (``used``), labelled where they are a Cityscapes split."""
    if eval_data is not None:
        source = open_source(eval_data, eval_split, "--eval-data")
        indices = list(range(len(source)))
        origin = eval_data + (f" ({eval_split})" if source.kind == "cityscapes" else "")
    else:
        source = calibration
        indices = [index for index in range(len(source)) if index not in used.indices]
        origin = "the calibration data that calibration did not use"
        if not indices:
            raise ExportError(
                f"calibration used all {len(source)} of its images, so none is left to judge "
                "INT8 on: pass --eval-data (a labelled Cityscapes split, or other images)"
            )
    labels = _labels_of(source) if source.kind == "cityscapes" else None
    batches: list[np.ndarray] = []
    truth: list[np.ndarray] = []
    for index in indices:
        if len(batches) == count:
            break
        image = source.read(index)
        if image is None:
            continue
        batches.append(preprocess(image, size))
        if labels is not None:
            truth.append(_label(source.paths[index], labels, image.shape[:2], size))
    if not batches:
        raise ExportError(f"no readable image to judge INT8 on in {origin}")
    return EvalSet(batches, truth if labels is not None else None, origin)


def _labels_of(source: ImageSource) -> dict[str, str]:
    """Image path -> its gtFine label, for a Cityscapes split's images."""
    split_folder = os.path.dirname(os.path.dirname(source.paths[0]))  # leftImg8bit/<split>
    root, split = os.path.dirname(os.path.dirname(split_folder)), os.path.basename(split_folder)
    try:
        pairs = cityscapes_pairs(root, split)
    except DatasetError as exc:
        raise ExportError(str(exc)) from None
    if pairs.unlabelled:
        raise ExportError(f"{len(pairs.unlabelled)} images have no label: {pairs.unlabelled[0]}")
    return {pair.image: pair.label for pair in pairs.pairs}


def _label(image: str, labels: dict[str, str], shape: tuple, size: tuple[int, int]) -> np.ndarray:
    """The train IDs of ``image``'s label at ``size``; an unreadable label, or one that does
    not fit its image, is an error (a score on it would be wrong)."""
    raw = read_image(labels[image], cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 2 or raw.shape != tuple(shape):
        raise ExportError(
            f"label {labels[image]} does not fit its image ({'x'.join(map(str, shape))}, one "
            "channel): fix the labels or pass other --eval-data"
        )
    truth, _ = train_ids(raw, CITYSCAPES_LABELS)
    return cv2.resize(truth.astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


class Scorer:
    """mIoU and per-class IoU of graphs on one ``EvalSet``, with ``output`` the graphs'
    output tensor (logits or labels) and ``num_classes`` classes."""

    def __init__(self, images: EvalSet, output: str, num_classes: int) -> None:
        self.images = images
        self.output = output
        self.num_classes = num_classes
        self.truth = images.truth
        self.fp32: Scores | None = None

    def use_as_reference(self, fp32: onnx.ModelProto) -> Scores:
        """The FP32 graph's scores, measured once; where the images have no labels, its
        labels become the reference (so its own mIoU is 100)."""
        if self.fp32 is None:
            labels = self._labels(fp32, fake_quant=False)
            if self.truth is None:
                self.truth = labels
            self.fp32 = self._scores(labels)
        return self.fp32

    def score(self, model: onnx.ModelProto, fake_quant: bool = False) -> Scores:
        assert self.truth is not None, "use_as_reference first"
        return self._scores(self._labels(model, fake_quant))

    def _scores(self, predicted: list[np.ndarray]) -> Scores:
        assert self.truth is not None
        confusion = np.zeros((self.num_classes, self.num_classes), np.int64)
        for truth, labels in zip(self.truth, predicted):
            valid = truth != IGNORE
            confusion += confusion_matrix(truth[valid], labels[valid], self.num_classes)
        return Scores(confusion)

    def _labels(self, model: onnx.ModelProto, fake_quant: bool) -> list[np.ndarray]:
        session = open_session(model.SerializeToString(), fake_quant)
        labels = []
        for batch in self.images.batches:
            (output,) = session.run([self.output], {INPUT_NAME: image_feed(session, batch)})
            labels.append(self._at_size(output[0], batch.shape[2:]))
        return labels

    @staticmethod
    def _at_size(output: np.ndarray, size: tuple) -> np.ndarray:
        if output.dtype.kind == "f":
            return upsampled_argmax(output.astype(np.float32), tuple(size))
        labels = output.astype(np.uint8)
        if labels.shape == tuple(size):
            return labels
        return cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
