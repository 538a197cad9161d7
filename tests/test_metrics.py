"""Metrics against hand-computed values and against scikit-learn as an oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.verdict.metrics import confusion_matrix, score


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


@pytest.mark.filterwarnings("ignore:A single label was found")  # sklearn's MCC on one class: 0, as ours
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=300))
def test_metrics_agree_with_scikit_learn(pairs: list[tuple[int, int]]) -> None:
    """scikit-learn as the oracle: accuracy, MCC and the confusion matrix exactly, macro F1 over the
    classes present in labels or predictions."""
    from sklearn import metrics as sk

    y, p = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
    s = score(y, p, 4)
    assert s.accuracy == pytest.approx(sk.accuracy_score(y, p))
    assert s.mcc == pytest.approx(sk.matthews_corrcoef(y, p), abs=1e-12)
    assert np.array_equal(np.array(s.confusion), sk.confusion_matrix(y, p, labels=[0, 1, 2, 3]))
    present = sorted(set(y.tolist()) | set(p.tolist()))
    assert s.macro_f1 == pytest.approx(sk.f1_score(y, p, labels=present, average="macro", zero_division=0))
