"""Calibration: a Q format for every tensor of the student, chosen from the observed ranges.

``float_trace`` runs the float student step by step in numpy (the same graph as torch's GRU, with
the gate internals exposed); ``quantize_student`` picks formats from those ranges (optionally
clipping at a percentile) and builds the integer :class:`QuantModel`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from harness.quant.intref import GateParams, QuantModel
from harness.quant.qformat import QFormat, frac_for_range
from harness.training.models import GruStudent

__all__ = ["VARIANTS", "FloatParams", "VariantSpec", "float_params", "float_trace", "quantize_student"]


@dataclass(frozen=True)
class VariantSpec:
    name: str
    wbits: int
    abits: int
    proto_variant: int


VARIANTS: dict[str, VariantSpec] = {
    "w8a16": VariantSpec("w8a16", 8, 16, 1),
    "w16a16": VariantSpec("w16a16", 16, 16, 2),
    "w8a8": VariantSpec("w8a8", 8, 8, 3),
}


@dataclass(frozen=True)
class FloatParams:
    """The float student as numpy arrays, normalisation gain folded into the input layer."""

    hidden: int
    mean: np.ndarray
    w_in: np.ndarray
    b_in: np.ndarray
    w_ih: dict[str, np.ndarray]
    w_hh: dict[str, np.ndarray]
    b_ih: dict[str, np.ndarray]
    b_hh: dict[str, np.ndarray]
    w_h1: np.ndarray
    b_h1: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray


def float_params(model: GruStudent) -> FloatParams:
    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    h = model.hidden
    split = {g: slice(i * h, (i + 1) * h) for i, g in enumerate("rzn")}
    return FloatParams(
        hidden=h,
        mean=sd["norm.mean"],
        w_in=sd["inp.weight"] * sd["norm.gain"][None, :],
        b_in=sd["inp.bias"],
        w_ih={g: sd["gru.weight_ih_l0"][s] for g, s in split.items()},
        w_hh={g: sd["gru.weight_hh_l0"][s] for g, s in split.items()},
        b_ih={g: sd["gru.bias_ih_l0"][s] for g, s in split.items()},
        b_hh={g: sd["gru.bias_hh_l0"][s] for g, s in split.items()},
        w_h1=sd["head1.weight"], b_h1=sd["head1.bias"], w_out=sd["head2.weight"], b_out=sd["head2.bias"],
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def float_trace(p: FloatParams, x_counts: np.ndarray) -> dict[str, np.ndarray]:
    """Float forward pass keeping every intermediate (for calibration). Logits equal torch's."""
    x = x_counts.astype(np.float64) - p.mean
    a = np.maximum(x @ p.w_in.T + p.b_in, 0)
    h = np.zeros((x.shape[0], p.hidden))
    tr: dict[str, list[np.ndarray]] = {k: [] for k in ("r_pre", "z_pre", "n_pre", "n_h", "h", "a_i", "h_h")}
    for t in range(x.shape[1]):
        at = a[:, t]
        gi = {g: at @ p.w_ih[g].T + p.b_ih[g] for g in "rzn"}
        gh = {g: h @ p.w_hh[g].T + p.b_hh[g] for g in "rzn"}
        r = _sigmoid(gi["r"] + gh["r"])
        z = _sigmoid(gi["z"] + gh["z"])
        n_pre = gi["n"] + r * gh["n"]
        n = np.tanh(n_pre)
        h = (1 - z) * n + z * h
        tr["r_pre"].append(gi["r"] + gh["r"])
        tr["z_pre"].append(gi["z"] + gh["z"])
        tr["n_pre"].append(n_pre)
        tr["n_h"].append(gh["n"])
        tr["h"].append(h)
        tr["a_i"].append(np.stack([gi[g] for g in "rzn"]))
        tr["h_h"].append(np.stack([gh[g] for g in "rzn"]))
    h1 = np.maximum(h @ p.w_h1.T + p.b_h1, 0)
    logits = h1 @ p.w_out.T + p.b_out
    out = {k: np.stack(v) for k, v in tr.items()}
    out.update({"x": x, "a": a, "h1": h1, "logits": logits})
    return out


def _range(v: np.ndarray, clip_pct: float | None) -> float:
    v = np.abs(v).ravel()
    return float(np.percentile(v, clip_pct) if clip_pct is not None else v.max(initial=0.0))


def quantize_student(model: GruStudent, calib_counts: np.ndarray, variant: str = "w8a16",
                     clip_pct: float | None = None) -> QuantModel:
    """Choose every tensor's Q format from ``calib_counts`` (calibrated training windows) and
    quantize. Deterministic."""
    spec = VARIANTS[variant]
    p = float_params(model)
    tr = float_trace(p, calib_counts)
    wb, ab = spec.wbits, spec.abits
    frac: dict[str, int] = {}
    fmt: dict[str, str] = {}

    def qw(name: str, w: np.ndarray, b: np.ndarray | None = None, f_x: int = 0) -> tuple[np.ndarray, int]:
        f = frac_for_range(float(np.abs(w).max()), wb)
        if b is not None:  # the bias lives at frac f + f_x in int32: it must fit there unsaturated
            f = min(f, frac_for_range(float(np.abs(b).max()), 32) - f_x)
        frac[name], fmt[name] = f, str(QFormat(wb, f))
        return QFormat(wb, f).quantize(w), f

    def act(name: str, v: np.ndarray, bits: int) -> int:
        f = frac_for_range(_range(v, clip_pct), bits)
        frac[name], fmt[name] = f, str(QFormat(bits, f))
        return f

    def qb(name: str, b: np.ndarray, f_acc: int) -> np.ndarray:
        frac[name], fmt[name] = f_acc, str(QFormat(32, f_acc))
        return QFormat(32, f_acc).quantize(b)

    mean_q = np.clip(np.round(p.mean), -32768, 32767).astype(np.int64)
    frac["input"], fmt["input"] = 0, "int16 counts - mean (Q15.0)"
    f_a = act("a", tr["a"], ab)
    f_h = ab - 1
    frac["h"], fmt["h"] = f_h, str(QFormat(ab, f_h))
    w_in, fw = qw("w_in", p.w_in, p.b_in, 0)
    b_in = qb("b_in", p.b_in, fw)
    f_pre = {"r": act("r_pre", tr["r_pre"], 16), "z": act("z_pre", tr["z_pre"], 16),
             "n": act("n_pre", tr["n_pre"], 16), "n_h": act("n_h", tr["n_h"], 16)}
    gates = {}
    for g in "rzn":
        wi, fwi = qw(f"w_i{g}", p.w_ih[g], p.b_ih[g], f_a)
        wh, fwh = qw(f"w_h{g}", p.w_hh[g], p.b_hh[g], f_h)
        target_h = f_pre["n_h"] if g == "n" else f_pre[g]
        gates[g] = GateParams(wi, qb(f"b_i{g}", p.b_ih[g], fwi + f_a), fwi + f_a - f_pre[g],
                              wh, qb(f"b_h{g}", p.b_hh[g], fwh + f_h), fwh + f_h - target_h)
    for k in ("sigmoid_out", "tanh_out"):
        frac[k], fmt[k] = 15, str(QFormat(16, 15))
    f_h1 = act("h1", tr["h1"], ab)
    w_h1, fw1 = qw("w_h1", p.w_h1, p.b_h1, f_h)
    b_h1 = qb("b_h1", p.b_h1, fw1 + f_h)
    f_out = act("logits", tr["logits"], 16)
    w_out, fwo = qw("w_out", p.w_out, p.b_out, f_h1)
    b_out = qb("b_out", p.b_out, fwo + f_h1)
    return QuantModel(
        variant=variant, wbits=wb, abits=ab, hidden=p.hidden, window=int(calib_counts.shape[1]),
        mean_q=mean_q, w_in=w_in, b_in=b_in, shift_in=fw - f_a, gates=gates, f_pre=f_pre,
        w_h1=w_h1, b_h1=b_h1, shift_h1=fw1 + f_h - f_h1, w_out=w_out, b_out=b_out, shift_out=fwo + f_h1 - f_out,
        formats=fmt, frac=frac,
    )


def torch_logits(model: GruStudent, x_counts: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x_counts.astype(np.float32))).double().numpy()
