"""Saving, loading and hashing quantized models (deterministic npz + JSON formats)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from harness.data.fixtures import write_npz
from harness.quant.intref import GateParams, QuantModel

__all__ = ["load_quant", "quant_model_hash", "save_quant"]

_ARRAYS = ("mean_q", "w_in", "b_in", "w_h1", "b_h1", "w_out", "b_out")
_SCALARS = ("variant", "wbits", "abits", "hidden", "window", "shift_in", "shift_h1", "shift_out")


def _canonical(m: QuantModel) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    arrays = {k: np.asarray(getattr(m, k), dtype=np.int64) for k in _ARRAYS}
    for g, gp in sorted(m.gates.items()):
        arrays.update({f"{g}_w_i": gp.w_i.astype(np.int64), f"{g}_b_i": gp.b_i.astype(np.int64),
                       f"{g}_w_h": gp.w_h.astype(np.int64), f"{g}_b_h": gp.b_h.astype(np.int64)})
    meta: dict[str, object] = {k: getattr(m, k) for k in _SCALARS}
    meta["gate_shifts"] = {g: [gp.shift_i, gp.shift_h] for g, gp in sorted(m.gates.items())}
    meta["f_pre"] = dict(sorted(m.f_pre.items()))
    meta["frac"] = dict(sorted(m.frac.items()))
    meta["formats"] = dict(sorted(m.formats.items()))
    return arrays, meta


def quant_model_hash(m: QuantModel) -> bytes:
    """8 bytes: sha256 over every integer and every shift of the model. Reported by the firmware."""
    arrays, meta = _canonical(m)
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode() + arrays[k].astype("<i8").tobytes())
    h.update(json.dumps({k: meta[k] for k in sorted(meta) if k != "formats"}, sort_keys=True).encode())
    return h.digest()[:8]


def save_quant(m: QuantModel, path: Path, extra: dict[str, object] | None = None) -> None:
    """``<path>.npz`` (integers) and ``<path>.json`` (formats, shifts, hash, provenance)."""
    arrays, meta = _canonical(m)
    write_npz(path.with_suffix(".npz"), arrays)
    meta["model_hash"] = quant_model_hash(m).hex()
    meta.update(extra or {})
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def load_quant(path: Path) -> QuantModel:
    path = Path(path)
    npz, js = path.with_suffix(".npz"), path.with_suffix(".json")
    for p in (npz, js):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: quantized model missing; run `hil quantize`")
    meta = json.loads(js.read_text())
    with np.load(npz, allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    gates = {g: GateParams(a[f"{g}_w_i"], a[f"{g}_b_i"], int(s[0]), a[f"{g}_w_h"], a[f"{g}_b_h"], int(s[1]))
             for g, s in meta["gate_shifts"].items()}
    m = QuantModel(
        variant=meta["variant"], wbits=meta["wbits"], abits=meta["abits"], hidden=meta["hidden"],
        window=meta["window"], mean_q=a["mean_q"], w_in=a["w_in"], b_in=a["b_in"], shift_in=meta["shift_in"],
        gates=gates, f_pre=meta["f_pre"], w_h1=a["w_h1"], b_h1=a["b_h1"], shift_h1=meta["shift_h1"],
        w_out=a["w_out"], b_out=a["b_out"], shift_out=meta["shift_out"], formats=meta["formats"], frac=meta["frac"],
    )
    if quant_model_hash(m).hex() != meta["model_hash"]:
        raise ValueError(f"{npz}: model hash does not match {js}")
    return m
