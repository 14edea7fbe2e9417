"""Agreement between a reference output and a lower-precision one (numpy, Python 3.6).

Used by export (ONNX vs PyTorch, FP16/INT8 vs FP32) and by evaluation.
"""

from typing import Dict, Optional

import numpy as np


def confusion_matrix(reference: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """num_classes x num_classes counts, rows = reference label, columns = predicted."""
    index = reference.astype(np.int64).ravel() * num_classes + predicted.astype(np.int64).ravel()
    counts = np.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def mean_iou(confusion: np.ndarray) -> float:
    """Mean IoU over classes present in the reference or the prediction."""
    true_positive = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - true_positive
    present = union > 0
    return float((true_positive[present] / union[present]).mean()) if present.any() else 1.0


def logits_agreement(
    reference: np.ndarray, candidate: np.ndarray, num_classes: Optional[int] = None
) -> Dict[str, float]:
    """Errors of ``candidate`` logits (N x C x H x W) against ``reference``, and label agreement.

    Keys: max_abs, mean_abs, max_rel (max error / max |reference|), mean_rel,
    argmax_agreement (fraction of pixels), miou (candidate labels vs reference labels),
    finite (1.0 when the candidate holds no NaN/Inf).
    """
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ValueError("shapes differ: {} vs {}".format(reference.shape, candidate.shape))
    error = np.abs(candidate - reference)
    scale = max(float(np.abs(reference).max()), 1e-12)
    classes = num_classes or reference.shape[1]
    reference_labels, candidate_labels = reference.argmax(1), candidate.argmax(1)
    result = labels_agreement(reference_labels, candidate_labels, classes)
    result.update(
        max_abs=float(error.max()),
        mean_abs=float(error.mean()),
        max_rel=float(error.max() / scale),
        mean_rel=float(error.mean() / scale),
        finite=float(np.isfinite(candidate).all()),
    )
    return result


def labels_agreement(
    reference: np.ndarray, candidate: np.ndarray, num_classes: int
) -> Dict[str, float]:
    """Pixel agreement and mIoU of ``candidate`` labels against ``reference`` labels."""
    confusion = confusion_matrix(reference, candidate, num_classes)
    return {
        "argmax_agreement": float(np.trace(confusion) / max(confusion.sum(), 1)),
        "miou": mean_iou(confusion),
    }
