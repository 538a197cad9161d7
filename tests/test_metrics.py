"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.metrics import confusion_matrix, score


def test_binary_mcc_matches_the_textbook_formula() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1, 0, 1, 1])
    p = np.array([0, 0, 1, 0, 1, 0, 1, 0, 1, 1])
    tp, tn, fp, fn = 4, 4, 1, 1
    want = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    s = score(y, p, 2)
    assert s.mcc == pytest.approx(want)
    assert s.accuracy == pytest.approx(0.8)
    assert s.macro_f1 == pytest.approx(0.8)
    assert s.confusion == ((4, 1), (1, 4))


def test_constant_prediction_scores_zero_mcc_and_absent_classes_do_not_count_in_f1() -> None:
    s = score(np.array([0, 1, 1]), np.array([1, 1, 1]), 4)
    assert s.mcc == 0.0
    assert s.macro_f1 == pytest.approx((0 + 0.8) / 2)


def test_out_of_range_labels_are_rejected() -> None:
    with pytest.raises(ValueError, match="prediction outside"):
        confusion_matrix(np.array([0]), np.array([4]), 4)
    with pytest.raises(ValueError, match="no samples"):
        score(np.array([], int), np.array([], int), 4)
