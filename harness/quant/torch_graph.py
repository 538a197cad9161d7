"""The quantized graph in torch, for fast batched evaluation (and a base for quantization-aware
fine-tuning: floors go through a straight-through estimator).

Integers are carried in float64 tensors. Every intermediate of the integer graph stays far below
2^53, so float64 represents it exactly and this module equals the integer reference bit for bit
(tested on every fixture window); it is an independent implementation of the same arithmetic,
not a call into the numpy code.
"""

from __future__ import annotations

import numpy as np
import torch

from harness.quant.intref import (
    _SIG_RANGE,
    _SIG_STEP_SHIFT,
    _TANH_RANGE,
    _TANH_STEP_SHIFT,
    GATE_FRAC,
    LUT_IN_FRAC,
    SIGMOID_LUT,
    TANH_LUT,
    QuantModel,
)

__all__ = ["QuantGraphTorch"]


def _floor_ste(v: torch.Tensor) -> torch.Tensor:
    return v + (torch.floor(v) - v).detach()


def _sat(v: torch.Tensor, bits: int) -> torch.Tensor:
    return torch.clamp(v, -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)


def _requant(v: torch.Tensor, shift: int, bits: int) -> torch.Tensor:
    if shift > 0:
        v = _floor_ste((v + 2.0 ** (shift - 1)) / 2.0**shift)
    else:
        lim = 2.0 ** (62 + shift)
        v = torch.clamp(v, -lim, lim - 1) * 2.0 ** (-shift)
    return _sat(v, bits)


class QuantGraphTorch(torch.nn.Module):
    """Batched integer-exact forward of a :class:`QuantModel`."""

    def __init__(self, m: QuantModel) -> None:
        super().__init__()
        self.m = m

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.asarray(a, dtype=np.float64))

        self.mean = t(m.mean_q)
        self.w_in, self.b_in = t(m.w_in), t(m.b_in)
        self.g = {k: (t(g.w_i), t(g.b_i), t(g.w_h), t(g.b_h)) for k, g in m.gates.items()}
        self.w_h1, self.b_h1, self.w_out, self.b_out = t(m.w_h1), t(m.b_h1), t(m.w_out), t(m.b_out)
        self.sig, self.tanh = t(SIGMOID_LUT), t(TANH_LUT)

    def _fc(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, shift: int, bits: int) -> torch.Tensor:
        return _requant(x @ w.T + b, shift, bits)

    def _lut(self, x: torch.Tensor, frac_in: int, lut: torch.Tensor, rng: int, k: int) -> torch.Tensor:
        x12 = _requant(x, frac_in - LUT_IN_FRAC, 32)
        lo, hi = -(rng << LUT_IN_FRAC), (rng << LUT_IN_FRAC) - 1
        u = torch.clamp(x12, lo, hi) - lo
        idx = torch.floor(u / 2.0**k)
        fr = u - idx * 2.0**k
        i = idx.long()
        y0, y1 = lut[i], lut[i + 1]
        y = y0 + _floor_ste(((y1 - y0) * fr + 2.0 ** (k - 1)) / 2.0**k)
        return torch.where(x12 > hi, lut[-1], y)

    def forward(self, x_counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.m
        x = _sat(x_counts.double() - self.mean, 16)
        a_all = torch.relu(self._fc(x, self.w_in, self.b_in, m.shift_in, m.abits))
        h = torch.zeros(x.shape[0], m.hidden, dtype=torch.float64)
        up = GATE_FRAC - m.f_h
        for step in range(x.shape[1]):
            a = a_all[:, step]
            half = {}
            for k, (wi, bi, wh, bh) in self.g.items():
                gp = m.gates[k]
                half[k] = (self._fc(a, wi, bi, gp.shift_i, 16), self._fc(h, wh, bh, gp.shift_h, 16))
            r = self._lut(_sat(half["r"][0] + half["r"][1], 16), m.f_pre["r"], self.sig, _SIG_RANGE, _SIG_STEP_SHIFT)
            z = self._lut(_sat(half["z"][0] + half["z"][1], 16), m.f_pre["z"], self.sig, _SIG_RANGE, _SIG_STEP_SHIFT)
            rnh = _requant(r * half["n"][1], GATE_FRAC + m.f_pre["n_h"] - m.f_pre["n"], 16)
            n = self._lut(_sat(half["n"][0] + rnh, 16), m.f_pre["n"], self.tanh, _TANH_RANGE, _TANH_STEP_SHIFT)
            h15 = h * 2.0**up
            h = _requant(_requant((2.0**GATE_FRAC - z) * n + z * h15, GATE_FRAC, 32), up, m.abits)
        h1 = torch.relu(self._fc(h, self.w_h1, self.b_h1, m.shift_h1, m.abits))
        logits = self._fc(h1, self.w_out, self.b_out, m.shift_out, 16)
        return logits, torch.argmax(logits, dim=1)
