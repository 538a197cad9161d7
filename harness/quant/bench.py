"""``hil quantize`` and ``hil bench quant``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from harness.config.descriptor import ModelDescriptor
from harness.data.fixtures import calibrated, load_fixtures
from harness.quant.calibrate import VARIANTS, quantize_student, torch_logits
from harness.quant.intref import QuantModel
from harness.quant.model_io import load_quant, save_quant
from harness.quant.torch_graph import QuantGraphTorch
from harness.training.models import GruStudent
from harness.training.train import load_model
from harness.verdict.metrics import score

__all__ = ["activation_ram_bytes", "quantize_all", "run_quant_bench", "weight_bytes"]

Log = Callable[[str], None]
CALIB_STRIDE = 3
"""Calibrate on every third training window (all cows but the fixture cows)."""


def quantize_all(data_root: Path, model: ModelDescriptor, clip_pct: float | None = None, log: Log = print) -> None:
    """Quantize ``model``'s student (in its models folder) to every variant, calibrated on the
    training windows of the animals that are not held out."""
    from harness.training.bench import load_dataset

    models_dir = model.models_dir
    student = load_model(models_dir / "student")
    assert isinstance(student, GruStudent)
    ds = load_dataset(data_root, model)
    x = calibrated(ds.train, ds.rotations)[~np.isin(ds.train.cow, model.held_out)][::CALIB_STRIDE]
    for v in VARIANTS:
        m = quantize_student(student, x, v, clip_pct)
        save_quant(m, models_dir / f"student_{v}", {
            "calibration": f"{len(x)} windows: every {CALIB_STRIDE}rd training window of cows other than "
            f"{'+'.join(model.held_out)}; clip percentile {clip_pct}"})
        log(f"{v}: wrote {models_dir / f'student_{v}.npz'}")


def weight_bytes(m: QuantModel) -> int:
    mats = [m.w_in, m.w_h1, m.w_out] + [w for g in m.gates.values() for w in (g.w_i, g.w_h)]
    biases = [m.b_in, m.b_h1, m.b_out] + [b for g in m.gates.values() for b in (g.b_i, g.b_h)]
    return sum(w.size for w in mats) * m.wbits // 8 + sum(b.size for b in biases) * 4


def activation_ram_bytes(hidden: int, elem_bytes: int, n_classes: int) -> int:
    """Buffers nn_model_infer_* allocates: h, a, h1, 6H gate scratch, logits (C containers:
    int16 for every integer variant, float for the float model)."""
    return (9 * hidden) * elem_bytes + n_classes * 4


def run_quant_bench(model: ModelDescriptor, fixtures_dir: Path, out_json: Path | None,
                    log: Log = print) -> dict[str, object]:
    models_dir = model.models_dir
    fx = load_fixtures(fixtures_dir, model)
    x, y = fx.calibrated_x(), fx.windows.y
    student = load_model(models_dir / "student")
    assert isinstance(student, GruStudent)
    fl = torch_logits(student, x)
    fcls = fl.argmax(1)
    n_classes = student.n_classes
    fs = score(y, fcls, n_classes)
    n_float_w = sum(p.numel() for p in student.parameters())
    rows: list[dict[str, object]] = [{
        "variant": "float32", "accuracy": fs.accuracy, "macro_f1": fs.macro_f1, "mcc": fs.mcc,
        "agreement": 1.0, "logit_err_mean": 0.0, "logit_err_max": 0.0,
        "weight_bytes": n_float_w * 4, "act_ram_bytes": activation_ram_bytes(student.hidden, 4, n_classes)}]
    for v in VARIANTS:
        path = models_dir / f"student_{v}"
        if not path.with_suffix(".npz").exists():
            log(f"{v}: not quantized (run `hil quantize`)")
            continue
        m = load_quant(path)
        with torch.no_grad():
            lq, cq = QuantGraphTorch(m)(torch.from_numpy(x))
        err = np.abs(lq.numpy() * 2.0**-m.f_out - fl)
        s = score(y, cq.numpy(), n_classes)
        rows.append({"variant": v, "accuracy": s.accuracy, "macro_f1": s.macro_f1, "mcc": s.mcc,
                     "agreement": float((cq.numpy() == fcls).mean()), "logit_err_mean": float(err.mean()),
                     "logit_err_max": float(err.max()), "weight_bytes": weight_bytes(m),
                     "act_ram_bytes": activation_ram_bytes(m.hidden, 2, n_classes)})
    head = (f"{'variant':<9}{'accuracy':>9}{'macro F1':>9}{'MCC':>8}{'agree':>8}{'|dlogit| mean':>14}"
            f"{'max':>8}{'weight B':>10}{'act RAM B':>10}")
    lines = [f"held-out cows {'+'.join(fx.windows.cows)}: {len(y)} windows; H={student.hidden}", head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['variant']:<9}{r['accuracy']:>9.3f}{r['macro_f1']:>9.3f}{r['mcc']:>8.3f}"
                     f"{r['agreement']:>8.2%}{r['logit_err_mean']:>14.5f}{r['logit_err_max']:>8.4f}"
                     f"{r['weight_bytes']:>10}{r['act_ram_bytes']:>10}")
    log("\n".join(lines))
    result: dict[str, object] = {"fixture_sha256": fx.sha256, "rows": rows}
    if out_json is not None:
        out_json.write_text(json.dumps(result, indent=1) + "\n")
    return result
