"""The references a device is checked against: the torch float student and the integer reference
of each quantized variant, with the model hashes the firmware must report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.quant.calibrate import VARIANTS
from harness.quant.export import float_model_hash
from harness.quant.intref import model_forward_q
from harness.quant.model_io import load_quant, quant_model_hash
from harness.training.models import GruStudent
from harness.training.train import load_model

__all__ = ["FLOAT_TOLERANCE", "VARIANT_NAMES", "Reference", "load_reference"]

FLOAT_TOLERANCE = 1e-3
"""Largest |device logit - torch logit| accepted for the float firmware (float32 on both sides;
the order of operations and libm's expf/tanhf differ, so equality is not expected)."""
VARIANT_NAMES = ("float32", *VARIANTS)


@dataclass(frozen=True)
class Reference:
    variant: str
    model_hash: bytes
    logits: np.ndarray
    """float64 logits for float32; int64 Q(out_frac) logits for quantized variants."""
    classes: np.ndarray
    out_frac: int
    exact: bool
    """True: bit-exact contract (integer reference); False: within FLOAT_TOLERANCE."""


def load_reference(models_dir: Path, variant: str, x: np.ndarray) -> Reference:
    """Reference outputs for every window of ``x`` (calibrated counts)."""
    if variant not in VARIANT_NAMES:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANT_NAMES)}")
    if variant == "float32":
        student = load_model(models_dir / "student")
        assert isinstance(student, GruStudent)
        with torch.no_grad():
            lg = student(torch.from_numpy(x.astype(np.float32))).double().numpy()
        return Reference(variant, float_model_hash(student), lg, lg.argmax(1), 0, False)
    m = load_quant(models_dir / f"student_{variant}")
    lq, cq = model_forward_q(m, x)
    return Reference(variant, quant_model_hash(m), lq, cq, m.f_out, True)


def exported_hash(generated_dir: Path, variant: str) -> str | None:
    """The hash `hil export` wrote for ``variant`` (what the built firmware reports)."""
    p = generated_dir / "models.json"
    if not p.exists():
        return None
    entry = json.loads(p.read_text()).get(variant)
    return None if entry is None else str(entry["model_hash"])
