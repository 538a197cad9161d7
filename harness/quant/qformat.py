"""Power-of-two fixed-point formats (dynamic fixed point: every tensor its own Q format).

The one rounding rule, used everywhere (Python, torch emulation, C): a right shift by s > 0 rounds
half up, ``(v + (1 << (s - 1))) >> s`` with an arithmetic shift; a shift by s <= 0 is an exact left
shift. Then the value saturates to the target bit width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["QFormat", "QTensor", "frac_for_range", "requant", "saturate"]


@dataclass(frozen=True)
class QFormat:
    """Signed ``bits``-wide integers with ``frac`` fractional bits: real = q * 2**-frac."""

    bits: int
    frac: int
    signed: bool = True

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Round half away from zero, saturate. Returns int64."""
        scaled = np.asarray(x, dtype=np.float64) * (2.0**self.frac)
        q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
        return np.clip(q, self.qmin, self.qmax).astype(np.int64)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return np.asarray(q, dtype=np.float64) * (2.0**-self.frac)

    def __str__(self) -> str:
        return f"Q{self.bits - self.frac - 1}.{self.frac}/{self.bits}b"


@dataclass(frozen=True)
class QTensor:
    """Integers that travel with their format."""

    q: np.ndarray
    fmt: QFormat

    def real(self) -> np.ndarray:
        return self.fmt.dequantize(self.q)


def frac_for_range(max_abs: float, bits: int, lo: int = -8, hi: int = 30) -> int:
    """Largest frac such that max_abs fits in a signed ``bits`` integer; clamped to [lo, hi]."""
    if max_abs <= 0 or not math.isfinite(max_abs):
        return hi
    int_bits = math.floor(math.log2(max_abs)) + 1  # bits left of the point, sign excluded
    return max(lo, min(hi, bits - 1 - int_bits))


def saturate(v: np.ndarray, bits: int) -> np.ndarray:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(v, lo, hi)


def requant(acc: np.ndarray, shift: int, bits: int) -> np.ndarray:
    """Shift right by ``shift`` (round half up) or left by ``-shift``, then saturate. Bit-exact
    with ``nn_requant`` in C. Input and output int64."""
    acc = np.asarray(acc, dtype=np.int64)
    if shift > 0:
        v = (acc + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)
    else:
        lim = np.int64(1) << np.int64(62 + shift)  # saturate before an overflowing left shift
        v = np.clip(acc, -lim, lim - 1) << np.int64(-shift)
    return saturate(v, bits)
