"""Classification metrics against labels: accuracy, macro F1, multi-class MCC, confusion matrix.

Pure numpy; exact integer counting, so a device scores exactly what its reference scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Scores", "confusion_matrix", "score"]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts int64[n_classes, n_classes]; rows are true classes, columns predictions."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"labels {y_true.shape} and predictions {y_pred.shape} differ in shape")
    for name, arr in (("label", y_true), ("prediction", y_pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            raise ValueError(f"{name} outside 0..{n_classes - 1}")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


@dataclass(frozen=True)
class Scores:
    n: int
    accuracy: float
    macro_f1: float
    mcc: float
    confusion: tuple[tuple[int, ...], ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "mcc": self.mcc,
            "confusion": [list(r) for r in self.confusion],
        }


def score(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> Scores:
    """Accuracy, macro F1 over the classes present in labels or predictions, and Gorodkin's MCC."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    n = int(cm.sum())
    if n == 0:
        raise ValueError("no samples to score")
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    present = (support + predicted) > 0
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    macro_f1 = float(f1[present].mean())
    c = float(tp.sum())
    cov = c * n - float(predicted @ support)
    var = np.sqrt((n * n - float(predicted @ predicted)) * (n * n - float(support @ support)))
    mcc = cov / var if var > 0 else 0.0
    return Scores(
        n=n,
        accuracy=c / n,
        macro_f1=macro_f1,
        mcc=float(mcc),
        confusion=tuple(tuple(int(v) for v in row) for row in cm),
    )
