"""Accuracy on labelled images: Cityscapes IoU per class, mIoU and pixel accuracy for any
model the runtime runs (Python 3.6 compatible).

Label PNGs hold Cityscapes label IDs, which become the 19 train IDs (255: ignored) through
the Cityscapes table in ``fanet.core.labels`` (tested equal to ``cityscapesscripts``'), or
train IDs already. Scores follow the official evaluation: a class's IoU is
TP / (TP + FP + FN) over the pixels whose truth is not ignored, and classes that neither
the truth nor a prediction holds are left out of the mean.

Labels of another size than their image and label IDs outside the table are skipped (or,
for unknown IDs, ignored) and counted, never silently.
"""

import contextlib
import logging
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple

import numpy as np

from fanet.core.errors import FanetError
from fanet.core.labels import IGNORE, LABELS, TRAIN_CLASSES
from fanet.core.media_files import read_image
from fanet.core.metrics import confusion_matrix
from fanet.evaluation.datasets import LABEL_KINDS, Pair, Pairs

logger = logging.getLogger(__name__)


class EvaluationError(FanetError):
    """Labelled data cannot be evaluated."""


class LabelTable(NamedTuple):
    """How label PNG values become train IDs: a 256-entry lookup, which values are known,
    and the class names in train-ID order."""

    lookup: np.ndarray
    known: np.ndarray  # bool, 256
    names: List[str]
    kind: str = "label_ids"  # or "train_ids": what the PNG values are


def label_table(kind: str = "label_ids") -> LabelTable:
    """The Cityscapes table for label-ID PNGs; for ``train_ids``, 0-18 and 255 as they are."""
    if kind not in LABEL_KINDS:
        raise EvaluationError("unknown label kind {!r}; choose label_ids or train_ids".format(kind))
    names = [label.name for label in TRAIN_CLASSES]
    lookup = np.full(256, IGNORE, np.uint8)
    known = np.zeros(256, bool)
    if kind == "label_ids":
        for label in LABELS:
            known[label.id] = True
            lookup[label.id] = label.train_id
    else:
        lookup[: len(names)] = np.arange(len(names), dtype=np.uint8)
        known[: len(names)] = known[IGNORE] = True
    return LabelTable(lookup, known, names, kind)


def train_ids(raw: np.ndarray, table: LabelTable) -> Tuple[np.ndarray, int]:
    """A label PNG's values as train IDs (``IGNORE`` where the table does not know them),
    and how many pixels it did not know."""
    raw = raw.astype(np.int64)
    outside = (raw > 255) | ~table.known[np.clip(raw, 0, 255)]
    truth = np.where(outside, IGNORE, table.lookup[np.clip(raw, 0, 255)])
    return truth, int(outside.sum())


class Scores(NamedTuple):
    """One model's accumulated confusion (rows: truth, columns: prediction)."""

    confusion: np.ndarray

    def iou(self) -> np.ndarray:
        """Per-class IoU, NaN where neither the truth nor a prediction holds the class."""
        confusion = self.confusion.astype(np.float64)
        true_positive = np.diag(confusion)
        union = confusion.sum(0) + confusion.sum(1) - true_positive
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, true_positive / np.maximum(union, 1), np.nan)

    def miou(self) -> float:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else float("nan")


class Report(NamedTuple):
    """What an evaluation measured: scores per model, agreement of each with the first
    (fraction of all pixels with the same label), and what was skipped."""

    names: List[str]  # class names, train-ID order
    scores: List[Scores]
    agreement: List[float]
    images: int
    skipped: Dict[str, List[str]]  # reason -> files
    unknown_pixels: int  # pixels of label IDs outside the table (ignored)


Predictor = Callable[[np.ndarray], np.ndarray]  # BGR image -> H x W train IDs


def predictor(segmenter: Any, stack: contextlib.ExitStack) -> Predictor:
    """Labels of one image; a temporal model sees each image as a sequence of its own
    (its session closes with ``stack``)."""
    if segmenter.sidecar.temporal == 1:
        return segmenter
    return one_frame_each(stack.enter_context(segmenter.temporal_session()))


def one_frame_each(session: Any) -> Predictor:
    """A temporal session that starts again at every image."""

    def fresh(image: np.ndarray) -> np.ndarray:
        session.reset()
        return session(image)

    return fresh


def evaluate(
    predictors: List[Predictor],
    pairs: Pairs,
    table: LabelTable,
    num_classes: int = 19,
    limit: Optional[int] = None,
    progress: Callable[[Iterable[Pair], int], Iterable[Pair]] = lambda items, total: items,
) -> Report:
    """Run every predictor on each pair (read once) and accumulate its scores."""
    import cv2

    chosen = pairs.pairs[:limit] if limit else pairs.pairs
    if not chosen:
        raise EvaluationError("no labelled images to evaluate")
    confusions = [np.zeros((num_classes, num_classes), np.int64) for _ in predictors]
    agreeing = [0] * len(predictors)
    pixels, images, unknown, scored = 0, 0, 0, 0
    skipped: Dict[str, List[str]] = {"without a label": list(pairs.unlabelled)}
    for pair in progress(chosen, len(chosen)):
        image = read_image(pair.image, cv2.IMREAD_COLOR)
        raw = read_image(pair.label, cv2.IMREAD_UNCHANGED)
        if image is None or raw is None:
            unreadable = pair.image if image is None else pair.label
            skipped.setdefault("unreadable", []).append(unreadable)
            continue
        if raw.ndim != 2 or raw.shape != image.shape[:2]:
            skipped.setdefault("label of another size or not one channel", []).append(pair.label)
            continue
        truth, outside = train_ids(raw, table)
        unknown += outside
        valid = truth != IGNORE
        scored += int(np.count_nonzero(valid))
        first = None
        for index, predict in enumerate(predictors):
            labels = predict(image)
            confusions[index] += confusion_matrix(truth[valid], labels[valid], num_classes)
            first = labels if first is None else first
            agreeing[index] += int(np.count_nonzero(labels == first))
        pixels += truth.size
        images += 1
    if not images:
        raise EvaluationError(
            "none of the {} labelled images could be evaluated".format(len(chosen))
        )
    _warn(skipped, unknown, scored + unknown, table)
    if not scored:
        raise EvaluationError(
            "no label pixel of the {} images is one of the {} classes (all are ignored): "
            "nothing to score{}".format(images, num_classes, _label_kind_hint(table, unknown))
        )
    return Report(
        table.names,
        [Scores(confusion) for confusion in confusions],
        [count / pixels for count in agreeing],
        images,
        {reason: files for reason, files in skipped.items() if files},
        unknown,
    )


def _label_kind_hint(table: LabelTable, unknown: int) -> str:
    """What the labels likely are, where the table read them as something else."""
    if table.kind == "train_ids":
        return " (Cityscapes label IDs read as train IDs? pass --label-kind label_ids)"
    if unknown:
        return " (train IDs read as label IDs? pass --label-kind train_ids)"
    return ""


MANY_UNKNOWN = 0.01  # a share of the labelled pixels that suggests the wrong --label-kind


def _warn(skipped: Dict[str, List[str]], unknown: int, labelled: int, table: LabelTable) -> None:
    for reason, files in skipped.items():
        if files:
            logger.warning("skipped %d images %s (first: %s)", len(files), reason, files[0])
    if unknown:
        hint = _label_kind_hint(table, unknown) if unknown > MANY_UNKNOWN * labelled else ""
        logger.warning(
            "%d pixels hold label IDs outside the Cityscapes table: counted as ignored%s",
            unknown,
            hint,
        )


def as_json(report: Report, models: List[str]) -> Dict[str, Any]:
    """The report as a JSON object: a ``miou`` field (0-1) per model, and the rest."""
    return {
        "images": report.images,
        "skipped": {reason: len(files) for reason, files in report.skipped.items()},
        "unknown_label_pixels": report.unknown_pixels,
        "models": [
            {
                "model": model,
                "miou": _number(scores.miou()),
                "pixel_accuracy": _number(scores.pixel_accuracy()),
                "agreement_with_first": agreement,
                "iou": {name: _number(v) for name, v in zip(report.names, scores.iou())},
            }
            for model, scores, agreement in zip(models, report.scores, report.agreement)
        ],
    }


def _number(value: float) -> Optional[float]:
    return None if np.isnan(value) else float(value)


def as_table(report: Report, models: List[str]) -> str:
    """Per-class IoU (%) in the paper's Table IV order, one column per model, then mIoU,
    pixel accuracy and agreement with the first model."""
    headers = ["class"] + models
    rows = [
        [name] + [_percent(scores.iou()[index]) for scores in report.scores]
        for index, name in enumerate(report.names)
    ]
    rows.append(["mIoU"] + [_percent(scores.miou()) for scores in report.scores])
    rows.append(["pixel accuracy"] + [_percent(s.pixel_accuracy()) for s in report.scores])
    rows.append(["agreement with " + models[0]] + [_percent(a) for a in report.agreement])
    widths = [max(len(row[i]) for row in [headers] + rows) for i in range(len(headers))]

    def line(cells: List[str]) -> str:
        return "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(cells, widths))
        )

    rule = "  ".join("-" * width for width in widths)
    body = [line(headers), rule] + [line(row) for row in rows[:-3]] + [rule]
    body += [line(row) for row in rows[-3:]]
    note = "{} images; % of pixels; '-': a class neither truth nor prediction holds"
    return "\n".join(body) + "\n\n" + note.format(report.images) + "\n"


def _percent(value: float) -> str:
    return "-" if np.isnan(value) else "{:.2f}".format(100 * value)
