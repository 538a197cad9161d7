"""``hil bench kd``: leave-one-cow-out cross-validation of the teacher, hard-label students and KD
students, and ``hil train``: the default teacher and student for the fixtures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from harness.config.descriptor import ModelDescriptor, load_descriptor
from harness.data.fixtures import calibrated, cow_rotations
from harness.data.recordings import CLASS_NAMES, Bout
from harness.data.windows import DEFAULT_HOP, DEFAULT_WINDOW, Q14_ONE, WindowSet, leave_one_cow_out, make_windows
from harness.training.models import GruStudent, ResNetTeacher, count_params
from harness.training.train import FitConfig, fit, predict_logits, save_model
from harness.verdict.metrics import score

__all__ = ["BenchConfig", "Dataset", "load_dataset", "run_kd_bench", "train_default"]

Log = Callable[[str], None]
N_CLASSES = len(CLASS_NAMES)
"""the classes of the db-cow-walking loader (harness.data.recordings) this bench trains on"""


@dataclass(frozen=True)
class BenchConfig:
    hidden: tuple[int, ...] = (16, 32, 64)
    seeds: tuple[int, ...] = (0,)
    folds: int | None = None
    """None: one cow per fold; k: k groups of cows."""
    max_folds: int | None = None
    teacher: FitConfig = field(default_factory=lambda: FitConfig(epochs=25, patience=6, samples_per_epoch=3072))
    student: FitConfig = field(default_factory=lambda: FitConfig(epochs=40, patience=8, samples_per_epoch=4096))
    kd_alpha: float = 0.5
    """0: pure soft labels; in (0, 1): mix with the hard labels (default; keep in step with
    harness.cli.BENCH_DEFAULTS)."""
    temperature: float = 2.0
    kd_consistent: bool = False
    """True: the teacher labels every augmented batch as the student sees it; False: soft labels
    computed once on the unaugmented windows."""

    @classmethod
    def quick(cls) -> BenchConfig:
        return cls(
            hidden=(16,),
            folds=4,
            max_folds=1,
            teacher=FitConfig(epochs=2, patience=2, samples_per_epoch=512),
            student=FitConfig(epochs=3, patience=3, samples_per_epoch=512),
        )


@dataclass(frozen=True)
class Dataset:
    train: WindowSet
    """Overlapping windows (hop 25) for training."""
    test: WindowSet
    """Non-overlapping windows for evaluation."""
    rotations: dict[str, tuple[int, int]]
    excluded: list[tuple[str, str]]
    skipped: list[tuple[str, str]]
    bouts: list[Bout] = field(default_factory=list)
    """The usable bouts the windows were cut from (raw counts, uncalibrated)."""


def load_dataset(data_root: Path, model: ModelDescriptor | None = None) -> Dataset:
    """Every bout the descriptor's loader reads (default: the packaged cattle model), cut into
    overlapping training windows (its hop) and non-overlapping test windows; the per-animal
    rotations when its calibration is rotation-z (else the identity)."""
    from harness.data.loaders import load_bouts

    model = model or load_descriptor()
    bouts, excluded = load_bouts(model, data_root)
    train, skipped = make_windows(bouts, model.window, model.hop)
    test, _ = make_windows(bouts, model.window, model.window)
    rotations = (cow_rotations(test) if model.calibration == "rotation-z"
                 else {c: (Q14_ONE, 0) for c in test.cows})
    return Dataset(train, test, rotations, excluded, skipped, bouts)


def _val_cow(train_cows: Sequence[str], ws: WindowSet, fold: int) -> str:
    """A training cow with at least three classes, rotating with the fold index."""
    rich = [c for c in train_cows if len(set(ws.y[ws.cow == c].tolist())) >= 3]
    pool = rich or list(train_cows)
    return pool[fold % len(pool)]


def _specs(cfg: BenchConfig) -> list[tuple[str, str, int]]:
    specs = [("teacher resnet", "teacher", 0)]
    for h in cfg.hidden:
        specs.append((f"gru-{h} hard", "hard", h))
        specs.append((f"gru-{h} kd", "kd", h))
    return specs


def run_kd_bench(data_root: Path, cfg: BenchConfig, out_json: Path | None, log: Log = print) -> dict[str, object]:
    torch.set_num_threads(2)
    t0 = time.time()
    ds = load_dataset(data_root)
    xtr = calibrated(ds.train, ds.rotations)
    xte = calibrated(ds.test, ds.rotations)
    folds = leave_one_cow_out(ds.test.cows, cfg.folds)
    if cfg.max_folds is not None:
        folds = folds[: cfg.max_folds]
    log(
        f"data: {len(ds.train)} training windows (hop {DEFAULT_HOP}), {len(ds.test)} test windows "
        f"(non-overlapping) from cows {', '.join(ds.test.cows)}; excluded {len(ds.excluded)} faulty "
        f"bouts, skipped {len(ds.skipped)} bouts shorter than a window"
    )
    specs = _specs(cfg)
    per_fold: list[dict[str, object]] = []
    oof: dict[str, dict[int, tuple[list[int], list[int]]]] = {name: {} for name, _, _ in specs}
    for fi, test_cows in enumerate(folds):
        rest = [c for c in ds.test.cows if c not in test_cows]
        val = _val_cow(rest, ds.test, fi)
        fit_cows = [c for c in rest if c != val]
        mtr = np.isin(ds.train.cow, fit_cows)
        mval = ds.test.cow == val
        mte = np.isin(ds.test.cow, test_cows)
        y_te = ds.test.y[mte]
        for seed in cfg.seeds:
            row: dict[str, object] = {"fold": fi, "test_cows": test_cows, "val_cow": val, "seed": seed,
                                      "n_test": int(mte.sum()), "models": {}}
            torch.manual_seed(seed)  # the initial weights too: torch's default seed is random per process
            teacher = ResNetTeacher(DEFAULT_WINDOW, N_CLASSES)
            r = fit(teacher, xtr[mtr], ds.train.y[mtr], xte[mval], ds.test.y[mval], replace(cfg.teacher, seed=seed))
            soft = predict_logits(teacher, xtr[mtr])
            trained: list[tuple[str, torch.nn.Module, object]] = [("teacher resnet", teacher, r)]
            for h in cfg.hidden:
                for mode in ("hard", "kd"):
                    torch.manual_seed(seed)
                    st = GruStudent(DEFAULT_WINDOW, h, N_CLASSES)
                    fc = replace(cfg.student, seed=seed)
                    if mode == "kd":
                        fc = replace(fc, alpha=cfg.kd_alpha, temperature=cfg.temperature)
                    kd = mode == "kd"
                    r = fit(st, xtr[mtr], ds.train.y[mtr], xte[mval], ds.test.y[mval], fc,
                            soft_logits=soft if kd and not cfg.kd_consistent else None,
                            teacher=teacher if kd and cfg.kd_consistent else None)
                    trained.append((f"gru-{h} {mode}", st, r))
            models: dict[str, object] = {}
            for name, model, res in trained:
                pred = predict_logits(model, xte[mte]).argmax(1)
                s = score(y_te, pred, N_CLASSES)
                models[name] = {**s.as_dict(), "fit": asdict(res)}  # type: ignore[call-overload]
                oof[name][seed] = (oof[name].get(seed, ([], []))[0] + y_te.tolist(),
                                   oof[name].get(seed, ([], []))[1] + pred.tolist())
            row["models"] = models
            per_fold.append(row)
            mccs = "  ".join(f"{n}={m['mcc']:+.2f}" for n, m in models.items())  # type: ignore[index]
            log(f"fold {fi} test={'+'.join(test_cows)} val={val} seed={seed} [{time.time() - t0:.0f}s]: {mccs}")
    summary = _summarise(specs, per_fold, oof, cfg)
    result: dict[str, object] = {
        "config": {**asdict(cfg), "window": DEFAULT_WINDOW, "hop": DEFAULT_HOP,
                   "folds": [list(f) for f in folds]},
        "summary": summary,
        "per_fold": per_fold,
        "excluded_bouts": ds.excluded,
        "seconds": round(time.time() - t0, 1),
    }
    log(format_table(summary))
    log(format_fold_table(specs, per_fold))
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(result, indent=1) + "\n")
        log(f"wrote {out_json}")
    return result


def _summarise(specs, per_fold, oof, cfg) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    rows = []
    for name, _, h in specs:
        vals = {k: np.array([f["models"][name][k] for f in per_fold]) for k in ("accuracy", "macro_f1", "mcc")}
        pooled = [score(np.array(yt), np.array(yp), N_CLASSES).mcc for yt, yp in oof[name].values()]
        model = ResNetTeacher(DEFAULT_WINDOW, N_CLASSES) if h == 0 else GruStudent(DEFAULT_WINDOW, h, N_CLASSES)
        rows.append({
            "model": name, "params": count_params(model), "macs": model.macs(),
            **{f"{k}_mean": float(v.mean()) for k, v in vals.items()},
            **{f"{k}_sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0 for k, v in vals.items()},
            "pooled_mcc": float(np.mean(pooled)),
        })
    return rows


def format_table(summary: list[dict[str, object]]) -> str:
    head = f"{'model':<16}{'params':>9}{'MACs/win':>11}{'accuracy':>16}{'macro F1':>16}{'MCC':>16}{'pooled MCC':>12}"
    lines = [head, "-" * len(head)]
    for r in summary:
        cells = "".join(f"{r[k + '_mean']:>9.3f} ±{r[k + '_sd']:.2f}" for k in ("accuracy", "macro_f1", "mcc"))  # type: ignore[str-format]
        lines.append(f"{r['model']:<16}{r['params']:>9}{r['macs']:>11}{cells}{r['pooled_mcc']:>12.3f}")
    return "\n".join(lines)


def format_fold_table(specs, per_fold) -> str:  # type: ignore[no-untyped-def]
    names = [n for n, _, _ in specs]
    head = f"{'fold (test cows)':<22}" + "".join(f"{n:>16}" for n in names)
    lines = ["per-fold MCC:", head]
    for f in per_fold:
        label = f"{f['fold']} ({'+'.join(f['test_cows'])}) s{f['seed']}"
        lines.append(f"{label:<22}" + "".join(f"{f['models'][n]['mcc']:>16.3f}" for n in names))
    return "\n".join(lines)


def train_default(data_root: Path, out_dir: Path, model: ModelDescriptor, hidden: int = 32, log: Log = print,
                  cfg: BenchConfig | None = None) -> dict[str, object]:
    """Train the teacher and the KD student of ``model`` on every animal but its held-out ones."""
    torch.set_num_threads(2)
    cfg = cfg or BenchConfig()
    ds = load_dataset(data_root, model)
    held_out = model.held_out
    xtr = calibrated(ds.train, ds.rotations)
    xte = calibrated(ds.test, ds.rotations)
    rest = [c for c in ds.test.cows if c not in held_out]
    val = _val_cow(rest, ds.test, 0)
    fit_cows = [c for c in rest if c != val]
    mtr = np.isin(ds.train.cow, fit_cows)
    mval = ds.test.cow == val
    mho = np.isin(ds.test.cow, held_out)
    torch.manual_seed(cfg.teacher.seed)
    teacher = ResNetTeacher(model.window, model.n_classes, model.channels)
    rt = fit(teacher, xtr[mtr], ds.train.y[mtr], xte[mval], ds.test.y[mval], cfg.teacher)
    soft = predict_logits(teacher, xtr[mtr])
    torch.manual_seed(cfg.student.seed)
    student = GruStudent(model.window, hidden, model.n_classes, model.channels)
    fc = replace(cfg.student, alpha=cfg.kd_alpha, temperature=cfg.temperature)
    rs = fit(student, xtr[mtr], ds.train.y[mtr], xte[mval], ds.test.y[mval], fc,
             soft_logits=None if cfg.kd_consistent else soft, teacher=teacher if cfg.kd_consistent else None)
    out: dict[str, object] = {}
    for name, net, res, fcfg in (("teacher", teacher, rt, cfg.teacher), ("student", student, rs, fc)):
        s = score(ds.test.y[mho], predict_logits(net, xte[mho]).argmax(1), model.n_classes)
        extra = {"trained_on_cows": fit_cows, "validation_cow": val, "held_out_cows": list(held_out),
                 "fit": res, "config": fcfg, "held_out_scores": s.as_dict(), "class_names": list(model.classes)}
        save_model(net, out_dir / name, extra)
        log(f"{name}: held-out animals {'+'.join(held_out)}: accuracy {s.accuracy:.3f} "
            f"macro F1 {s.macro_f1:.3f} MCC {s.mcc:.3f} (best epoch {res.best_epoch})")
        out[name] = s.as_dict()
    return out
