"""The references a device is checked against, behind one interface, chosen per variant in the
model descriptor (harness.config.descriptor):

- ``torch``: the harness's float GRU student (within the descriptor's tolerance);
- ``onnx``: a float model in ONNX run with onnxruntime (within the descriptor's tolerance; see
  harness.reference.onnxref);
- ``dq``: the integer reference of a DQ-quantized student (bit-exact);
- ``expected``: an expected-outputs file that any toolchain can write (see :func:`load_expected`):
  integer scores are checked bit-exact, float scores within the descriptor's tolerance.

Each gives the model hash the firmware must report."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.config.descriptor import DescriptorError, ModelDescriptor

__all__ = ["EXPECTED_ARRAYS", "Reference", "ReferenceError", "exported_hash", "load_expected", "load_reference",
           "reference_files"]

EXPECTED_ARRAYS = {
    "bout": "str[N]: the bout id of each window (windows.npz's `bout`)",
    "start": "int[N]: the window's first sample in its bout (windows.npz's `start`)",
    "classes": "int[N]: the class the model gives, 0-based in the descriptor's class order",
    "scores": "[N, n_classes]: the model's scores; integer dtype (Q`out_frac` fixed point, bit-exact) or float",
    "out_frac": "int scalar: fractional bits of integer scores (0 for float scores)",
    "model_hash": "str scalar: the 16 hex digits of the model hash the firmware reports in its hello",
}
"""The arrays of an expected-outputs file (npz) and their meaning."""


class ReferenceError(ValueError):
    """A reference that cannot be used; the message says which file and what is wrong."""


@dataclass(frozen=True)
class Reference:
    variant: str
    model_hash: bytes
    logits: np.ndarray
    """float64 scores for a float reference; int64 Q(out_frac) scores for an integer one"""
    classes: np.ndarray
    out_frac: int
    exact: bool
    """True: bit-exact contract (integer reference); False: within ``tolerance``"""
    tolerance: float | None = None
    """float references: the largest |device score - reference score| accepted"""
    source: str = ""
    """where the reference came from (kind and file), for messages and the report"""


def load_reference(model: ModelDescriptor, variant: str, x: np.ndarray,
                   keys: Sequence[tuple[str, int]] | None = None) -> Reference:
    """Reference outputs for every window of ``x`` (calibrated counts) for ``variant`` of ``model``.
    ``keys`` ((bout, start) of every window) are needed by an expected-outputs reference, which
    is looked up by window, not computed."""
    spec = model.variant(variant)
    path = model.reference_path(variant)
    if spec.reference == "torch":
        import torch

        from harness.quant.export import float_model_hash
        from harness.training.models import GruStudent
        from harness.training.train import load_model

        student = load_model(path)
        if not isinstance(student, GruStudent):
            raise ReferenceError(f"{path}: a {type(student).__name__}, not a GRU student")
        _check_shape(model, path, student.window, student.n_classes)
        with torch.no_grad():
            lg = student(torch.from_numpy(x.astype(np.float32))).double().numpy()
        return Reference(variant, float_model_hash(student), lg, lg.argmax(1), 0, False, spec.tolerance,
                         f"torch {path}")
    if spec.reference == "onnx":
        from harness.reference.onnxref import run_onnx

        lg, h = run_onnx(path, x, model.window, model.channels, model.n_classes)
        return Reference(variant, h, lg, lg.argmax(1), 0, False, spec.tolerance, f"onnx {path}")
    if spec.reference == "dq":
        from harness.quant.intref import model_forward_q
        from harness.quant.model_io import load_quant, quant_model_hash

        m = load_quant(path)
        _check_shape(model, path, None, int(m.w_out.shape[0]))
        lq, cq = model_forward_q(m, x)
        return Reference(variant, quant_model_hash(m), lq, cq, m.f_out, True, None, f"dq {path}")
    if keys is None:
        raise ReferenceError(f"{path}: an expected-outputs reference is looked up per window (bout, start); "
                             "this mode has no such windows")
    return load_expected(path, model, variant, keys, spec.tolerance)


def _check_shape(model: ModelDescriptor, path: Path, window: int | None, n_classes: int) -> None:
    if n_classes != model.n_classes:
        raise DescriptorError(f"{model.source}: model.classes: {model.n_classes} classes, but the reference {path} "
                              f"has {n_classes} outputs")
    if window is not None and window != model.window:
        raise DescriptorError(f"{model.source}: model.window: {model.window} samples, but the reference {path} "
                              f"was trained on {window}")


def load_expected(path: Path, model: ModelDescriptor, variant: str, keys: Sequence[tuple[str, int]],
                  tolerance: float | None) -> Reference:
    """The rows of an expected-outputs file (arrays: :data:`EXPECTED_ARRAYS`) for the windows ``keys``,
    in that order. Every window must have exactly one row; integer scores are bit-exact, float ones
    need the descriptor's tolerance."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected-outputs file missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = sorted(set(EXPECTED_ARRAYS) - set(z.files))
            if missing:
                raise ReferenceError(f"{path}: arrays {', '.join(missing)} missing (an expected-outputs file has "
                                     f"{', '.join(EXPECTED_ARRAYS)})")
            a = {k: z[k] for k in EXPECTED_ARRAYS}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        if isinstance(exc, ReferenceError):
            raise
        raise ReferenceError(f"{path}: not a readable npz archive ({type(exc).__name__}: {exc})") from None
    scores, classes = a["scores"], a["classes"]
    n = len(classes)
    if scores.ndim != 2 or scores.shape != (n, model.n_classes):
        raise ReferenceError(f"{path}: scores must be [N, {model.n_classes}] (N = {n} classes entries), got "
                             f"{list(scores.shape)}")
    for name in ("bout", "start"):
        if a[name].shape != (n,):
            raise ReferenceError(f"{path}: {name} must have one entry per window ({n}), got {list(a[name].shape)}")
    if not np.issubdtype(classes.dtype, np.integer) or (n and (classes.min() < 0 or classes.max() >= model.n_classes)):
        raise ReferenceError(f"{path}: classes must be integers 0..{model.n_classes - 1}")
    exact = bool(np.issubdtype(scores.dtype, np.integer))
    if not exact and not np.issubdtype(scores.dtype, np.floating):
        raise ReferenceError(f"{path}: scores must be integers or floats, got dtype {scores.dtype}")
    if not exact and tolerance is None:
        raise ReferenceError(f"{path}: float scores, but {model.source} gives variants.{variant} no tolerance")
    try:
        out_frac = int(a["out_frac"])
        model_hash = bytes.fromhex(str(a["model_hash"]))
    except (TypeError, ValueError) as exc:
        raise ReferenceError(f"{path}: out_frac must be an integer and model_hash 16 hex digits ({exc})") from None
    if len(model_hash) != 8:
        raise ReferenceError(f"{path}: model_hash must be 16 hex digits, got {str(a['model_hash'])!r}")
    row: dict[tuple[str, int], int] = {}
    for i, (b, s) in enumerate(zip(a["bout"].astype(str).tolist(), a["start"].astype(np.int64).tolist(), strict=True)):
        if (b, s) in row:
            raise ReferenceError(f"{path}: window (bout {b}, start {s}) appears twice (rows {row[(b, s)]} and {i})")
        row[(b, s)] = i
    try:
        take = np.array([row[(str(b), int(s))] for b, s in keys], dtype=np.int64)
    except KeyError as exc:
        raise ReferenceError(f"{path}: no row for window (bout, start) {exc.args[0]}: the file does not cover "
                             "these fixtures") from None
    sc = scores[take].astype(np.int64 if exact else np.float64)
    return Reference(variant, model_hash, sc, classes[take].astype(np.int64), out_frac, exact,
                     None if exact else tolerance, f"expected {path}")


def exported_hash(generated_dir: Path, variant: str) -> str | None:
    """The hash `hil export` wrote for ``variant`` (what the built firmware reports)."""
    p = generated_dir / "models.json"
    if not p.exists():
        return None
    entry = json.loads(p.read_text()).get(variant)
    return None if entry is None else str(entry["model_hash"])


def reference_files(model: ModelDescriptor, variant: str) -> list[Path]:
    """The files the reference of ``variant`` reads (to check that they exist before anything starts)."""
    spec = model.variant(variant)
    p = model.reference_path(variant)
    if spec.reference == "torch":
        return [p.with_suffix(".json"), p.with_suffix(".pt")]
    if spec.reference == "dq":
        return [p.with_suffix(".json"), p.with_suffix(".npz")]
    return [p]
