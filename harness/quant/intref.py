"""The integer reference of the quantized student: the bit-exact contract for the firmware.

Functions mirror the C kernels in ``device_fw/src/nn/`` name for name. No float anywhere on the
quantized path: inputs are int16 counts, every intermediate is an integer (int64 here, int32
products accumulated into int64 in C), every requantization uses :func:`requant`.

Shapes: a leading batch axis is allowed everywhere, so a whole fixture set runs at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from harness.quant.qformat import requant, saturate

__all__ = [
    "GATE_FRAC",
    "LUT_IN_FRAC",
    "SIGMOID_LUT",
    "TANH_LUT",
    "QuantModel",
    "model_forward_q",
    "nn_argmax_s32",
    "nn_fully_connected",
    "nn_gru_gate_pre",
    "nn_gru_step",
    "nn_input_center",
    "nn_relu",
    "nn_requant",
    "nn_sigmoid_s16",
    "nn_tanh_s16",
]

GATE_FRAC = 15
"""Gate outputs (sigmoid, tanh) are Q15 in int16; 1.0 saturates to 32767."""
LUT_IN_FRAC = 12
"""Activation-function inputs are brought to Q12 before the table lookup."""
_SIG_RANGE, _SIG_STEP_SHIFT = 8, 8  # table over [-8, 8) in steps of 2^-4 = 2^8 Q12 units
_TANH_RANGE, _TANH_STEP_SHIFT = 4, 7  # table over [-4, 4) in steps of 2^-5


def _lut(fn: object, lo: float, step: float, n: int) -> np.ndarray:
    vals = [fn(lo + i * step) for i in range(n + 1)]  # type: ignore[operator]
    return np.array([min(32767, max(-32768, math.floor(v * 32768 + 0.5))) for v in vals], dtype=np.int64)


SIGMOID_LUT = _lut(lambda x: 1 / (1 + math.exp(-x)), -_SIG_RANGE, 2**-4, 256)
"""257 entries, Q15: sigmoid at -8, -8 + 1/16, ..., 8."""
TANH_LUT = _lut(math.tanh, -_TANH_RANGE, 2**-5, 256)
"""257 entries, Q15: tanh at -4, -4 + 1/32, ..., 4."""


def nn_requant(acc: np.ndarray, shift: int, bits: int) -> np.ndarray:
    """See harness.quant.qformat.requant; bit-exact with nn_requant in C."""
    return requant(acc, shift, bits)


def nn_input_center(x_counts: np.ndarray, mean_q: np.ndarray) -> np.ndarray:
    """int16 counts minus the per-axis mean (int16), saturated to int16."""
    return saturate(x_counts.astype(np.int64) - mean_q.astype(np.int64), 16)


def nn_fully_connected(x_q: np.ndarray, w_q: np.ndarray, b_q: np.ndarray, shift: int, out_bits: int) -> np.ndarray:
    """y = sat(requant(W x + b, shift)). x: int[..., in] (frac fx), w: int[out, in] (frac fw),
    b: int32[out] at frac fw + fx, shift = fw + fx - fo. Bit-exact with nn_fully_connected_s{8,16}w."""
    acc = x_q.astype(np.int64) @ w_q.astype(np.int64).T + b_q.astype(np.int64)
    return nn_requant(acc, shift, out_bits)


def nn_relu(x_q: np.ndarray) -> np.ndarray:
    return np.maximum(x_q, 0)


def _lut_eval(x_q: np.ndarray, frac_in: int, lut: np.ndarray, rng: int, step_shift: int) -> np.ndarray:
    x12 = nn_requant(x_q, frac_in - LUT_IN_FRAC, 32)
    lo, hi = -(rng << LUT_IN_FRAC), (rng << LUT_IN_FRAC) - 1
    u = np.clip(x12, lo, hi) - lo  # 0 .. 2*rng*4096 - 1
    idx = u >> step_shift
    frac = u & ((1 << step_shift) - 1)
    y0, y1 = lut[idx], lut[idx + 1]
    y = y0 + (((y1 - y0) * frac + (1 << (step_shift - 1))) >> step_shift)
    return np.where(x12 > hi, lut[-1], y)


def nn_sigmoid_s16(x_q: np.ndarray, frac_in: int) -> np.ndarray:
    """Sigmoid, int16 in Q(frac_in) -> Q15, by table with linear interpolation. Worst-case error
    against the float function over all int16 inputs: 1.0e-4 on [-8, 8], 3.4e-4 beyond (clamped)."""
    return _lut_eval(x_q, frac_in, SIGMOID_LUT, _SIG_RANGE, _SIG_STEP_SHIFT)


def nn_tanh_s16(x_q: np.ndarray, frac_in: int) -> np.ndarray:
    """tanh, int16 in Q(frac_in) -> Q15 by table with linear interpolation. Worst-case error over all
    int16 inputs: 2.1e-4 on [-4, 4], 6.8e-4 beyond (clamped)."""
    return _lut_eval(x_q, frac_in, TANH_LUT, _TANH_RANGE, _TANH_STEP_SHIFT)


@dataclass(frozen=True)
class GateParams:
    """One GRU gate: input and hidden weights with their own formats."""

    w_i: np.ndarray
    b_i: np.ndarray
    shift_i: int
    """acc (fw_i + f_a) -> gate pre-activation format"""
    w_h: np.ndarray
    b_h: np.ndarray
    shift_h: int
    """acc (fw_h + f_h) -> the gate's hidden-part format"""


@dataclass(frozen=True)
class QuantModel:
    """Every integer and every format of one quantized student."""

    variant: str
    wbits: int
    abits: int
    hidden: int
    window: int
    mean_q: np.ndarray
    w_in: np.ndarray
    b_in: np.ndarray
    shift_in: int
    gates: dict[str, GateParams]
    """'r', 'z', 'n'"""
    f_pre: dict[str, int]
    """pre-activation frac of each gate; for 'n' also 'n_h', the frac of W_hn h + b_hn."""
    w_h1: np.ndarray
    b_h1: np.ndarray
    shift_h1: int
    w_out: np.ndarray
    b_out: np.ndarray
    shift_out: int
    formats: dict[str, str] = field(default_factory=dict)
    """Human-readable Q format of every tensor, for the report."""
    frac: dict[str, int] = field(default_factory=dict)
    """frac of every tensor, by name (export and report)."""

    @property
    def f_h(self) -> int:
        return self.abits - 1

    @property
    def f_out(self) -> int:
        return self.frac["logits"]


def nn_gru_gate_pre(a_q: np.ndarray, h_q: np.ndarray, g: GateParams, bits: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The two halves of a gate pre-activation: (W_i a + b_i, W_h h + b_h), each requantized."""
    return (nn_fully_connected(a_q, g.w_i, g.b_i, g.shift_i, bits),
            nn_fully_connected(h_q, g.w_h, g.b_h, g.shift_h, bits))


def nn_gru_step(a_q: np.ndarray, h_q: np.ndarray, m: QuantModel) -> np.ndarray:
    """One GRU step, torch semantics (r, z, n; h' = (1 - z) n + z h), all integer.

    a_q: input-layer output (frac f_a, abits); h_q: hidden state Q(abits-1). Returns the new h_q.
    Bit-exact with nn_gru_step in C.
    """
    ri, rh = nn_gru_gate_pre(a_q, h_q, m.gates["r"])
    zi, zh = nn_gru_gate_pre(a_q, h_q, m.gates["z"])
    ni, nh = nn_gru_gate_pre(a_q, h_q, m.gates["n"])
    r = nn_sigmoid_s16(saturate(ri + rh, 16), m.f_pre["r"])
    z = nn_sigmoid_s16(saturate(zi + zh, 16), m.f_pre["z"])
    # r * (W_hn h + b_hn): Q15 x Q(n_h) -> Q(n_h), then to the n pre-activation format.
    rnh = nn_requant(r * nh, GATE_FRAC + m.f_pre["n_h"] - m.f_pre["n"], 16)
    n = nn_tanh_s16(saturate(ni + rnh, 16), m.f_pre["n"])
    up = GATE_FRAC - m.f_h
    h15 = h_q.astype(np.int64) << up
    # h' = n + z (h - n) in Q15, rounded half up, back to Q(abits-1)
    h_new15 = nn_requant((np.int64(1 << GATE_FRAC) - z) * n + z * h15, GATE_FRAC, 32)
    return nn_requant(h_new15, up, m.abits)


def nn_argmax_s32(logits_q: np.ndarray) -> np.ndarray:
    """Index of the largest logit; the lowest index wins a tie (like np.argmax and the C kernel)."""
    return np.argmax(logits_q, axis=-1)


def model_forward_q(m: QuantModel, x_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer forward pass. x_counts: int16[..., T, 3] calibrated counts.

    Returns:
        (logits int64[..., 4] in Q(f_out), class int64[...]). Bit-exact with model_infer_q in C.
    """
    x = nn_input_center(x_counts, m.mean_q)
    a_all = nn_relu(nn_fully_connected(x, m.w_in, m.b_in, m.shift_in, m.abits))
    h = np.zeros((*x_counts.shape[:-2], m.hidden), dtype=np.int64)
    for t in range(x_counts.shape[-2]):
        h = nn_gru_step(a_all[..., t, :], h, m)
    h1 = nn_relu(nn_fully_connected(h, m.w_h1, m.b_h1, m.shift_h1, m.abits))
    logits = nn_fully_connected(h1, m.w_out, m.b_out, m.shift_out, 16)
    return logits, nn_argmax_s32(logits)
