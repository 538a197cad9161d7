"""``hil bench kd --paired``: a KD benchmark that can carry a claim of a few hundredths of MCC.

Leave-one-cow-out folds x seeds. In every (fold, seed) the same teacher, the same training windows
and the same validation cows serve every arm, so the arms are compared *paired*:

- ``hard``: the student on hard labels;
- ``hard'``: the same arm again with another seed: hard' - hard is the benchmark's noise floor;
- ``kd``: the student distilled from the teacher (alpha, T as configured);
- ``kd-ens`` (optional): distilled from the mean probabilities of ``ensemble`` teachers.

Early stopping looks at two validation cows (never a test cow), not one. Torch runs on one thread
(stated in the output) so results do not depend on the machine's thread count. For every
comparison it reports the mean paired difference of per-fold MCC, its standard error over the
(fold, seed) pairs, and a 95 % bootstrap interval over cows (folds resampled with replacement,
seeded); plus the pooled out-of-fold MCC and the pooled per-class recall of every arm.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from harness.data.fixtures import calibrated
from harness.data.recordings import CLASS_NAMES
from harness.data.windows import DEFAULT_WINDOW, leave_one_cow_out
from harness.metrics import confusion_matrix, score
from harness.training.bench import load_dataset
from harness.training.models import N_CLASSES, GruStudent, ResNetTeacher
from harness.training.train import FitConfig, fit, predict_logits

__all__ = ["PairedConfig", "bootstrap_interval", "format_paired", "run_paired_bench"]

Log = Callable[[str], None]


@dataclass(frozen=True)
class PairedConfig:
    hidden: int = 32
    seeds: tuple[int, ...] = (0, 1)
    max_folds: int | None = None
    folds: tuple[int, ...] | None = None
    """run only these fold indices (for splitting a run over processes); None: all"""
    teacher: FitConfig = field(default_factory=lambda: FitConfig(epochs=20, patience=5, samples_per_epoch=3072))
    student: FitConfig = field(default_factory=lambda: FitConfig(epochs=30, patience=6, samples_per_epoch=4096))
    kd_alpha: float = 0.5
    temperature: float = 2.0
    ensemble: int = 0
    """teachers in the ensemble arm (0: no ensemble arm)"""
    threads: int = 1
    bootstrap: int = 2000

    @classmethod
    def quick(cls) -> PairedConfig:
        return cls(seeds=(0,), max_folds=2, teacher=FitConfig(epochs=2, patience=2, samples_per_epoch=512),
                   student=FitConfig(epochs=2, patience=2, samples_per_epoch=512))


def bootstrap_interval(diffs_by_fold: list[float], n: int, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the mean over folds (cows), folds resampled with replacement."""
    d = np.asarray(diffs_by_fold, dtype=np.float64)
    if len(d) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n, len(d)))].mean(axis=1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def _val_cows(rest: list[str], ws_y: np.ndarray, ws_cow: np.ndarray, fold: int) -> list[str]:
    rich = [c for c in rest if len(set(ws_y[ws_cow == c].tolist())) >= 3] or list(rest)
    k = fold % len(rich)
    return sorted({rich[k], rich[(k + 1) % len(rich)]})


def _fit_student(h: int, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, cfg: FitConfig, seed: int,
                 soft: np.ndarray | None, alpha: float, temperature: float) -> GruStudent:
    torch.manual_seed(seed)
    st = GruStudent(DEFAULT_WINDOW, h)
    fc = replace(cfg, seed=seed)
    if soft is not None:
        fc = replace(fc, alpha=alpha, temperature=temperature)
    fit(st, x, y, xv, yv, fc, soft_logits=soft)
    return st


def run_paired_bench(data_root: Path, cfg: PairedConfig, out_json: Path | None, log: Log = print) -> dict[str, object]:
    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    ds = load_dataset(data_root)
    xtr = calibrated(ds.train, ds.rotations)
    xte = calibrated(ds.test, ds.rotations)
    folds = leave_one_cow_out(ds.test.cows)
    idx = list(range(len(folds)))[: cfg.max_folds]
    if cfg.folds is not None:
        idx = [i for i in idx if i in cfg.folds]
    arms = ["teacher", "hard", "hard'", "kd"] + (["kd-ens"] if cfg.ensemble else [])
    total = len(idx) * len(cfg.seeds)
    log(f"paired KD bench: {len(idx)} folds x {len(cfg.seeds)} seeds = {total} runs, GRU-{cfg.hidden}, "
        f"KD alpha {cfg.kd_alpha} T {cfg.temperature}, ensemble {cfg.ensemble or 'off'}, torch threads {cfg.threads}, "
        f"teacher {cfg.teacher.epochs} epochs, student {cfg.student.epochs} epochs")
    rows: list[dict[str, object]] = []
    pooled: dict[str, tuple[list[int], list[int]]] = {a: ([], []) for a in arms}
    done = 0
    for fi in idx:
        test = folds[fi]
        rest = [c for c in ds.test.cows if c not in test]
        val = _val_cows(rest, ds.test.y, ds.test.cow, fi)
        fit_cows = [c for c in rest if c not in val]
        mtr, mval, mte = np.isin(ds.train.cow, fit_cows), np.isin(ds.test.cow, val), np.isin(ds.test.cow, test)
        x, y, xv, yv = xtr[mtr], ds.train.y[mtr], xte[mval], ds.test.y[mval]
        for seed in cfg.seeds:
            teachers = []
            for k in range(max(1, cfg.ensemble)):
                torch.manual_seed(seed * 100 + k)
                t = ResNetTeacher(DEFAULT_WINDOW)
                fit(t, x, y, xv, yv, replace(cfg.teacher, seed=seed * 100 + k))
                teachers.append(t)
            soft = predict_logits(teachers[0], x)
            models: dict[str, torch.nn.Module] = {"teacher": teachers[0]}
            models["hard"] = _fit_student(cfg.hidden, x, y, xv, yv, cfg.student, seed, None, 1.0, 1.0)
            models["hard'"] = _fit_student(cfg.hidden, x, y, xv, yv, cfg.student, seed + 1000, None, 1.0, 1.0)
            models["kd"] = _fit_student(cfg.hidden, x, y, xv, yv, cfg.student, seed, soft, cfg.kd_alpha,
                                        cfg.temperature)
            if cfg.ensemble:
                probs = np.mean([torch.softmax(torch.from_numpy(predict_logits(t, x)), 1).numpy() for t in teachers], 0)
                models["kd-ens"] = _fit_student(cfg.hidden, x, y, xv, yv, cfg.student, seed,
                                                np.log(np.clip(probs, 1e-7, 1.0)), cfg.kd_alpha, cfg.temperature)
            row: dict[str, object] = {"fold": fi, "test_cows": test, "val_cows": val, "seed": seed, "mcc": {}}
            for a, m in models.items():
                pred = predict_logits(m, xte[mte]).argmax(1)
                row["mcc"][a] = score(ds.test.y[mte], pred, N_CLASSES).mcc  # type: ignore[index]
                pooled[a][0].extend(ds.test.y[mte].tolist())
                pooled[a][1].extend(pred.tolist())
            rows.append(row)
            done += 1
            el = time.time() - t0
            log(f"run {done} of {total}: fold {fi} (test {'+'.join(test)}, val {'+'.join(val)}) seed {seed}: "
                + " ".join(f"{a} {v:+.3f}" for a, v in row["mcc"].items())  # type: ignore[attr-defined]
                + f" [{el:.0f} s, ETA {el / done * (total - done):.0f} s]")
    result = summarise(rows, pooled, arms, cfg)
    result.update(config={**asdict(cfg), "window": DEFAULT_WINDOW}, runs=rows, seconds=round(time.time() - t0, 1))
    log(format_paired(result))
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(result, indent=1, default=str) + "\n")
        log(f"wrote {out_json}")
    return result


def summarise(rows: list[dict[str, object]], pooled: dict[str, tuple[list[int], list[int]]], arms: list[str],
              cfg: PairedConfig) -> dict[str, object]:
    arm_rows = []
    for a in arms:
        v = np.array([r["mcc"][a] for r in rows])  # type: ignore[index]
        yt, yp = np.array(pooled[a][0]), np.array(pooled[a][1])
        cm = confusion_matrix(yt, yp, N_CLASSES)
        rec = {CLASS_NAMES[k]: float(cm[k, k] / cm[k].sum()) if cm[k].sum() else None for k in range(N_CLASSES)}
        arm_rows.append({"arm": a, "mcc_mean": float(v.mean()), "mcc_sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                         "pooled_mcc": score(yt, yp, N_CLASSES).mcc, "pooled_recall": rec})
    comps = []
    for a, b, what in (("hard'", "hard", "noise floor: the same arm, another seed"),
                       ("kd", "hard", "KD minus hard labels"), ("kd-ens", "hard", "ensemble KD minus hard labels"),
                       ("kd-ens", "kd", "ensemble KD minus KD")):
        if a not in arms or b not in arms:
            continue
        d = np.array([r["mcc"][a] - r["mcc"][b] for r in rows])  # type: ignore[index]
        folds = sorted({int(r["fold"]) for r in rows})  # type: ignore[call-overload]
        by_fold = [float(np.mean([r["mcc"][a] - r["mcc"][b] for r in rows if r["fold"] == f])) for f in folds]  # type: ignore[index]
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        comps.append({"comparison": f"{a} - {b}", "what": what, "n_pairs": len(d), "mean": float(d.mean()),
                      "paired_se": se, "ci95_over_cows": bootstrap_interval(by_fold, cfg.bootstrap)})
    return {"arms": arm_rows, "comparisons": comps}


def format_paired(result: dict[str, object]) -> str:
    lines = [f"{'arm':<9}{'MCC mean':>10}{'sd':>7}{'pooled MCC':>12}  pooled recall (" + ", ".join(CLASS_NAMES) + ")"]
    for r in result["arms"]:  # type: ignore[attr-defined]
        rec = " ".join("-" if v is None else f"{v:.2f}" for v in r["pooled_recall"].values())
        lines.append(f"{r['arm']:<9}{r['mcc_mean']:>10.3f}{r['mcc_sd']:>7.3f}{r['pooled_mcc']:>12.3f}  {rec}")
    lines.append("")
    lines.append(f"{'paired difference of MCC':<26}{'pairs':>6}{'mean':>9}{'SE':>8}  95% interval over cows")
    for c in result["comparisons"]:  # type: ignore[attr-defined]
        lo, hi = c["ci95_over_cows"]
        lines.append(f"{c['comparison']:<26}{c['n_pairs']:>6}{c['mean']:>+9.3f}{c['paired_se']:>8.3f}  "
                     f"[{lo:+.3f}, {hi:+.3f}]  ({c['what']})")
    return "\n".join(lines)
