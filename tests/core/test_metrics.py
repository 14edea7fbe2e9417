"""Agreement metrics with hand-computed values."""

import numpy as np
import pytest

from fanet.core.metrics import confusion_matrix, labels_agreement, logits_agreement, mean_iou


def test_confusion_and_miou():
    reference = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    confusion = confusion_matrix(reference, predicted, 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # IoU: class 0 1/(2+2-1)=1/3, class 1 2/3, class 2 1/2
    assert mean_iou(confusion) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert labels_agreement(reference, predicted, 3)["argmax_agreement"] == pytest.approx(4 / 6)


def test_logits_agreement():
    reference = np.zeros((1, 2, 1, 2), np.float32)
    reference[0, 0] = [[2.0, 0.0]]
    reference[0, 1] = [[0.0, 1.0]]
    candidate = reference.copy()
    candidate[0, 1, 0, 1] = -1.0  # flips the second pixel's label
    result = logits_agreement(reference, candidate)
    assert result["max_abs"] == 2.0 and result["max_rel"] == 1.0
    assert result["argmax_agreement"] == 0.5 and result["finite"] == 1.0
    candidate[0, 0, 0, 0] = np.inf
    assert logits_agreement(reference, candidate)["finite"] == 0.0
