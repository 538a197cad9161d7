"""Classification metrics against labels: accuracy, macro F1, multi-class MCC, confusion matrix.

Pure numpy; exact integer counting, so a device scores exactly what its reference scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BitExact", "FloatAgreement", "Latency", "Scores",
    "compare_bit_exact", "compare_float", "confusion_matrix", "score",
]


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


@dataclass(frozen=True)
class BitExact:
    """Device integer scores against the integer reference, window by window."""

    n: int
    n_exact: int
    first_mismatch: str | None

    @property
    def all_exact(self) -> bool:
        return self.n_exact == self.n


def compare_bit_exact(window_ids: np.ndarray, device: np.ndarray, reference: np.ndarray) -> BitExact:
    """Every score of every window must be equal; the first difference is described in full."""
    device = np.asarray(device, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)
    if device.shape != reference.shape:
        raise ValueError(f"device scores {device.shape} and reference {reference.shape} differ in shape")
    eq = (device == reference).all(axis=1)
    first = None
    if not eq.all():
        i = int(np.flatnonzero(~eq)[0])
        cols = np.flatnonzero(device[i] != reference[i])
        diffs = ", ".join(f"score {c}: got {device[i, c]}, want {reference[i, c]}" for c in cols)
        first = f"window {int(window_ids[i])}: {diffs}"
    return BitExact(n=len(eq), n_exact=int(eq.sum()), first_mismatch=first)


@dataclass(frozen=True)
class FloatAgreement:
    """Device float scores against the float reference."""

    n: int
    class_agreement: float
    max_abs_err: float
    tolerance: float
    first_disagreement: str | None

    @property
    def within_tolerance(self) -> bool:
        return self.max_abs_err <= self.tolerance and self.class_agreement == 1.0


def compare_float(window_ids: np.ndarray, device: np.ndarray, reference: np.ndarray, tol: float) -> FloatAgreement:
    device = np.asarray(device, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    err = np.abs(device - reference)
    same = device.argmax(1) == reference.argmax(1)
    first = None
    if not same.all():
        i = int(np.flatnonzero(~same)[0])
        first = (f"window {int(window_ids[i])}: device class {int(device[i].argmax())} scores "
                 f"{np.round(device[i], 5).tolist()}, reference class {int(reference[i].argmax())} scores "
                 f"{np.round(reference[i], 5).tolist()}")
    return FloatAgreement(len(device), float(same.mean()), float(err.max(initial=0.0)), tol, first)


@dataclass(frozen=True)
class Latency:
    p50: float
    p95: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: np.ndarray) -> Latency:
        v = np.asarray(values, dtype=np.float64)
        return cls(float(np.percentile(v, 50)), float(np.percentile(v, 95)), float(v.max()), float(v.mean()))
