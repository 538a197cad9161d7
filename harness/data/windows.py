"""Windowing, per-collar orientation calibration and animal-wise splits. Pure, no I/O.

Orientation calibration: collars sit differently on every cow (and some are worn the other way
round, mirroring the X and Y signs of gravity). The z axis of the sensor runs along the collar, so
a rotation about z, estimated per cow from that cow's own *unlabelled* windows, aligns the
head-down direction of every cow with the canonical -Y axis. The device stores it as one rotation
(cos, sin in Q14) and applies it in integers; :func:`rotate_xy_q14` is that integer operation,
bit-exact with ``calib_rotate_xy_q14`` in the firmware (device_fw/src/app/calib.c), which applies it in stream mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.data.recordings import Bout

__all__ = [
    "DEFAULT_HOP",
    "DEFAULT_WINDOW",
    "Q14_ONE",
    "WindowSet",
    "context_windows",
    "estimate_rotation_q14",
    "leave_one_cow_out",
    "make_windows",
    "rotate_xy_q14",
]

DEFAULT_WINDOW = 50
"""5 s at 10 Hz: as close as this data allows to the seed paper's 5.12 s windows."""
DEFAULT_HOP = 25
Q14_ONE = 1 << 14


@dataclass(frozen=True)
class WindowSet:
    """Windows with their provenance. ``x`` holds raw sensor counts int16[N, T, 3]."""

    x: np.ndarray
    y: np.ndarray
    cow: np.ndarray
    bout: np.ndarray
    start: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def select(self, mask: np.ndarray) -> WindowSet:
        return WindowSet(self.x[mask], self.y[mask], self.cow[mask], self.bout[mask], self.start[mask])

    @property
    def cows(self) -> list[str]:
        return sorted(set(self.cow.tolist()))


def window_bout(bout: Bout, length: int, hop: int) -> np.ndarray:
    """Start indices of the windows of one bout.

    Raises:
        ValueError: the bout is shorter than one window (names the bout).
    """
    if length <= 0 or hop <= 0:
        raise ValueError(f"window length and hop must be positive, got {length} and {hop}")
    if bout.n_samples < length:
        raise ValueError(
            f"{bout.path}: bout has {bout.n_samples} samples, shorter than one window of {length}"
        )
    return np.arange(0, bout.n_samples - length + 1, hop)


def make_windows(
    bouts: Iterable[Bout], length: int = DEFAULT_WINDOW, hop: int = DEFAULT_HOP
) -> tuple[WindowSet, list[tuple[str, str]]]:
    """Cut every bout into windows. Bouts shorter than a window are returned as skipped, with why."""
    xs: list[np.ndarray] = []
    ys: list[int] = []
    cows: list[str] = []
    paths: list[str] = []
    starts: list[int] = []
    skipped: list[tuple[str, str]] = []
    for b in bouts:
        try:
            idx = window_bout(b, length, hop)
        except ValueError as exc:
            skipped.append((b.path, str(exc).split(": ", 1)[1]))
            continue
        for s in idx:
            xs.append(b.counts[s : s + length])
            ys.append(b.label)
            cows.append(b.cow)
            paths.append(b.path)
            starts.append(int(s))
    x = np.stack(xs).astype(np.int16) if xs else np.zeros((0, length, 3), np.int16)
    return (
        WindowSet(x, np.asarray(ys, np.int64), np.asarray(cows), np.asarray(paths), np.asarray(starts)),
        skipped,
    )


def context_windows(bouts: Iterable[Bout], ws: WindowSet, length: int) -> np.ndarray:
    """The span of ``length`` samples around every window of ``ws``, from the window's own bout.

    Centred on the window where the bout allows, shifted to stay inside it near its ends; a bout
    shorter than ``length`` is mirrored at its ends (``np.pad`` mode "symmetric") to fill the span.
    This is privileged context for a teacher: a device sees only its window. Returns raw counts
    int16[N, length, 3], in the order of ``ws``.

    Raises:
        KeyError: a window's bout is not among ``bouts`` (names it).
    """
    by_path = {b.path: b.counts for b in bouts}
    out = np.empty((len(ws), length, 3), np.int16)
    w = ws.x.shape[1]
    for i, (path, start) in enumerate(zip(ws.bout.tolist(), ws.start.tolist(), strict=True)):
        if path not in by_path:
            raise KeyError(f"window {i}: its bout {path} is not among the bouts given")
        c = by_path[path]
        n = len(c)
        if n >= length:
            s = min(max(int(start) + w // 2 - length // 2, 0), n - length)
            out[i] = c[s : s + length]
        else:
            before = (length - n) // 2
            out[i] = np.pad(c, ((before, length - n - before), (0, 0)), mode="symmetric")
    return out


def estimate_rotation_q14(x_counts: np.ndarray) -> tuple[int, int]:
    """Per-collar rotation about z that maps this cow's head-down direction onto -Y.

    Uses only unlabelled windows of one cow: the mean acceleration of each window approximates
    gravity; the windows with the largest horizontal (x, y) gravity component are the head-down
    ones, and their mean (x, y) direction is the head-down direction.

    Returns:
        (cos, sin) of the rotation angle in Q14, rounded to nearest.
    """
    g = x_counts.astype(np.float64).mean(axis=1)  # [N, 3]
    gxy = g[:, :2]
    mag = np.linalg.norm(gxy, axis=1)
    if len(mag) == 0:
        return Q14_ONE, 0
    thresh = np.quantile(mag, 0.8)
    head_down = gxy[mag >= thresh].mean(axis=0)
    phi = float(np.arctan2(head_down[1], head_down[0]))
    theta = -np.pi / 2 - phi  # rotate direction phi onto -Y (angle -pi/2)
    return round(np.cos(theta) * Q14_ONE), round(np.sin(theta) * Q14_ONE)


def rotate_xy_q14(x_counts: np.ndarray, rot_q14: tuple[int, int]) -> np.ndarray:
    """Rotate the x, y axes of int16 counts by (cos, sin) in Q14. Bit-exact integer operation.

    x' = (c*x - s*y + 2^13) >> 14, y' = (s*x + c*y + 2^13) >> 14 (arithmetic shift, so rounding is
    half towards +inf), saturated to int16; z passes through.
    """
    c, s = (int(v) for v in rot_q14)
    x = x_counts.astype(np.int32)
    out = x.copy()
    half = 1 << 13
    out[..., 0] = (c * x[..., 0] - s * x[..., 1] + half) >> 14
    out[..., 1] = (s * x[..., 0] + c * x[..., 1] + half) >> 14
    return np.clip(out, -32768, 32767).astype(np.int16)


def leave_one_cow_out(cows: Sequence[str], groups: int | None = None) -> list[list[str]]:
    """Test groups for cross-validation by animal: one cow per fold, or ``groups`` groups of cows.

    Cows are dealt round-robin in sorted order so the folds are deterministic.
    """
    ordered = sorted(set(cows))
    if groups is None or groups >= len(ordered):
        return [[c] for c in ordered]
    folds: list[list[str]] = [[] for _ in range(groups)]
    for i, c in enumerate(ordered):
        folds[i % groups].append(c)
    return folds
