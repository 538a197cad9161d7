"""Where the "other" windows of unseen animals go (issue 23): leave-one-cow-out with the default
recipe of ``hil train`` (:func:`harness.training.bench.train_default`: the descriptor's loader,
windowing and per-cow rotation, the ResNet teacher, the GRU-32 student distilled at alpha 0.5, T 2,
the same fit configurations and validation-cow rule), and, for every held-out window of the class
the ``Others`` folder holds, what the student called it: per Others sub-behaviour (from the bout's
file name) and per cow. Optional levers (:class:`Lever`) change one thing of the recipe each, so
their arms can be compared fold by fold (paired) against the default arm.

Every arm is evaluated on the test windows of the *default* labelling and window length where it
can be (a relabelling lever changes training and validation labels only); a window-length lever
cuts its own test windows, so its breakdown counts differ from the default arm's.

One torch thread; teachers are shared between arms whose training data and window are the same.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from harness.config.descriptor import ModelDescriptor, load_descriptor
from harness.data.fixtures import calibrated
from harness.data.recordings import FOLDER_TO_CLASS
from harness.data.windows import leave_one_cow_out
from harness.training.bench import BenchConfig, Dataset, _val_cow, load_dataset
from harness.training.models import GruStudent, ResNetTeacher
from harness.training.train import fit, predict_logits
from harness.verdict.metrics import confusion_matrix, score

__all__ = [
    "ArmResult",
    "Lever",
    "OthersResult",
    "format_others",
    "lever_presets",
    "run_others",
]

Log = Callable[[str], None]
OTHER = FOLDER_TO_CLASS["Others"]
"""the class index of the Others folder (the class this module is about)"""
WALKING = FOLDER_TO_CLASS["Walking"]
TROTTING = "Trotting"
RELABEL_CHOICES = ("keep", "as-walking", "drop")


@dataclass(frozen=True)
class Lever:
    """One change of the default recipe (the defaults of every field: the default recipe itself)."""

    name: str = "default"
    other_weight: float = 1.0
    """weight of the "other" class in the student's hard-label cross-entropy (all others 1)"""
    cow_balance: float = 0.0
    """> 0: within every class, each training cow's windows are repeated so that the cows are drawn
    about equally often, a cow's repeat factor capped at this value (0: windows as they come)"""
    dyn_scale: float = 0.0
    """> 0: augmentation: every training window gets a copy whose dynamic part (the window minus its
    mean, per axis) is scaled by a log-uniform factor in [1/(1+s), 1+s] (seeded; 0: none)"""
    window: int | None = None
    """samples per window (hop: half of it); None: the descriptor's"""
    trotting: str = "keep"
    """Trotting bouts in training and validation: "keep" (as the Others folder says), "as-walking"
    (relabelled) or "drop"; the test windows keep the folder's label"""
    teacher_too: bool = False
    """apply other_weight to the teacher too (by default only the student, the shipped model)"""

    def teacher_key(self) -> tuple[object, ...]:
        """Arms with the same key share a teacher (same training windows and labels)."""
        return (self.window, self.trotting, self.teacher_too and self.other_weight)


def lever_presets() -> dict[str, Lever]:
    """The levers tried for issue 23, by name (``hil bench others --lever NAME``)."""
    return {
        "default": Lever(),
        "other-w2": Lever("other-w2", other_weight=2.0),
        "other-w4": Lever("other-w4", other_weight=4.0),
        "cow-balance": Lever("cow-balance", cow_balance=8.0),
        "dyn-aug": Lever("dyn-aug", dyn_scale=0.5),
        "trot-walking": Lever("trot-walking", trotting="as-walking"),
        "trot-drop": Lever("trot-drop", trotting="drop"),
        "win-30": Lever("win-30", window=30),
        "win-80": Lever("win-80", window=80),
    }


@dataclass
class ArmResult:
    name: str
    lever: Lever
    fold_mcc: list[float] = field(default_factory=list)
    fold_recall: list[list[float]] = field(default_factory=list)
    """per fold, recall of every class (nan where the test cow has no window of it)"""
    fold_other: list[tuple[int, int]] = field(default_factory=list)
    """per fold: (held-out "other" windows called "other", held-out "other" windows)"""
    confusion: list[list[int]] = field(default_factory=list)
    """pooled over folds: rows true class, columns predicted"""
    breakdown: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    """behaviour -> cow -> windows predicted as each class (held-out "other" windows only)"""
    motion: dict[str, dict[str, float]] = field(default_factory=dict)
    """behaviour (and "<Walking>" for the walking class) -> cow -> mean per-window standard
    deviation of |a| in g: how much the collar moves"""

    @property
    def mcc_mean(self) -> float:
        return float(np.mean(self.fold_mcc)) if self.fold_mcc else math.nan

    @property
    def pooled_recall(self) -> list[float]:
        cm = np.asarray(self.confusion, dtype=np.float64)
        n = cm.sum(1)
        return [float(cm[k, k] / n[k]) if n[k] else math.nan for k in range(len(cm))]

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "mcc_mean": self.mcc_mean, "pooled_recall": self.pooled_recall}


@dataclass
class OthersResult:
    classes: list[str]
    folds: list[list[str]]
    val_cows: list[str]
    arms: list[ArmResult]
    seconds: float
    threads: int

    def arm(self, name: str) -> ArmResult:
        for a in self.arms:
            if a.name == name:
                return a
        raise KeyError(f"no arm {name!r} (arms: {', '.join(a.name for a in self.arms)})")

    def as_dict(self) -> dict[str, object]:
        return {"classes": self.classes, "folds": self.folds, "val_cows": self.val_cows, "seconds": self.seconds,
                "threads": self.threads, "arms": [a.as_dict() for a in self.arms]}


def _motion_g(x_counts: np.ndarray, counts_per_g: float) -> np.ndarray:
    """Per window: the standard deviation of |a| over the window, in g."""
    mag = np.linalg.norm(x_counts.astype(np.float64), axis=2) / counts_per_g
    return mag.std(axis=1) if len(mag) else np.zeros(0)


def _cow_balanced(y: np.ndarray, cow: np.ndarray, cap: float) -> np.ndarray:
    """Row indices repeating every (class, cow) group up to the class's largest group (factor <= cap)."""
    idx: list[np.ndarray] = []
    for k in np.unique(y):
        mk = y == k
        groups = {c: np.flatnonzero(mk & (cow == c)) for c in np.unique(cow[mk])}
        top = max(len(g) for g in groups.values())
        for g in groups.values():
            idx.append(np.repeat(g, max(1, min(round(cap), round(top / len(g))))))
    return np.sort(np.concatenate(idx))


def _dyn_scaled(x: np.ndarray, s: float, seed: int) -> np.ndarray:
    """Copies of ``x`` (int16 counts) with the dynamic part scaled by log-uniform factors."""
    rng = np.random.default_rng(seed)
    f = np.exp(rng.uniform(-math.log1p(s), math.log1p(s), size=(len(x), 1, 1)))
    xf = x.astype(np.float64)
    mean = xf.mean(axis=1, keepdims=True)
    return np.clip(np.rint(mean + (xf - mean) * f), -32768, 32767).astype(np.int16)


def _training_labels(ds: Dataset, lever: Lever, which: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels of ``ds.train`` or ``ds.test`` under the lever's Trotting rule, and the rows kept."""
    ws = ds.train if which == "train" else ds.test
    beh = {b.path: b.behaviour for b in ds.bouts}
    trot = np.array([beh[p] == TROTTING for p in ws.bout.tolist()], dtype=bool)
    y = ws.y.copy()
    keep = np.ones(len(ws), dtype=bool)
    if lever.trotting == "as-walking":
        y[trot] = WALKING
    elif lever.trotting == "drop":
        keep = ~trot
    return y, keep


def run_others(
    data_root: Path,
    levers: Sequence[Lever] = (Lever(),),
    *,
    model: ModelDescriptor | None = None,
    cows: Sequence[str] | None = None,
    max_folds: int | None = None,
    cfg: BenchConfig | None = None,
    hidden: int = 32,
    threads: int = 1,
    log: Log = print,
) -> OthersResult:
    """Leave-one-cow-out of the default recipe (and of every other lever given), with where the
    held-out "other" windows went.

    Args:
        data_root: the recordings (db-cow-walking layout; the descriptor's loader reads them).
        levers: the arms; the first is the reference of the paired differences (give ``Lever()``
            first to compare against the default recipe).
        model: the descriptor (default: the packaged cattle model); its held-out animals are *not*
            left out here: every cow is a test cow once.
        cows: use only these cows (default: all); each is the test cow of one fold.
        max_folds: stop after this many folds (a smoke test).
        cfg: teacher and student fit configurations, KD alpha and T (default: ``BenchConfig()``,
            what ``hil train`` uses).
        hidden: the student's GRU size (default 32, ``hil train``'s).
        threads: torch threads (1: results do not depend on the machine).
    """
    if not levers:
        raise ValueError("levers: give at least one arm")
    names = [lv.name for lv in levers]
    if len(set(names)) != len(names):
        raise ValueError(f"levers: arm names repeat: {names}")
    for lv in levers:
        if lv.trotting not in RELABEL_CHOICES:
            raise ValueError(f"lever {lv.name}: trotting {lv.trotting!r} not one of {RELABEL_CHOICES}")
    torch.set_num_threads(threads)
    t0 = time.time()
    model = model or load_descriptor()
    cfg = cfg or BenchConfig()
    base = replace(model, held_out=())
    datasets: dict[int | None, Dataset] = {}

    def dataset(window: int | None) -> Dataset:
        if window not in datasets:
            m = base if window is None else replace(base, window=window, hop=max(1, window // 2))
            ds = load_dataset(data_root, m)
            if cows is not None:
                missing = sorted(set(cows) - set(ds.test.cows))
                if missing:
                    raise ValueError(f"cows: {', '.join(missing)} not in {data_root} "
                                     f"(it has {', '.join(ds.test.cows)})")
                ds = replace(ds, train=ds.train.select(np.isin(ds.train.cow, list(cows))),
                             test=ds.test.select(np.isin(ds.test.cow, list(cows))))
            datasets[window] = ds
        return datasets[window]

    ds0 = dataset(None)
    folds = leave_one_cow_out(ds0.test.cows)
    if max_folds is not None:
        folds = folds[:max_folds]
    n_cls = model.n_classes
    arms = [ArmResult(lv.name, lv, confusion=np.zeros((n_cls, n_cls), np.int64).tolist()) for lv in levers]
    val_cows: list[str] = []
    log(f"others LOAO: {len(folds)} folds, arms {', '.join(names)}, torch threads {threads}")
    for fi, test_cows in enumerate(folds):
        rest = [c for c in ds0.test.cows if c not in test_cows]
        val = _val_cow(rest, ds0.test, fi)
        val_cows.append(val)
        fit_cows = [c for c in rest if c != val]
        teachers: dict[tuple[object, ...], tuple[ResNetTeacher, np.ndarray]] = {}
        for arm in arms:
            lv = arm.lever
            ds = dataset(lv.window)
            window = ds.train.x.shape[1]
            xtr = calibrated(ds.train, ds.rotations)
            xte = calibrated(ds.test, ds.rotations)
            ytr, ktr = _training_labels(ds, lv, "train")
            yva, kva = _training_labels(ds, lv, "test")
            mtr = np.isin(ds.train.cow, fit_cows) & ktr
            mval = (ds.test.cow == val) & kva
            weight = np.ones(n_cls)
            weight[OTHER] = lv.other_weight
            cw = None if lv.other_weight == 1.0 else weight
            key = lv.teacher_key()
            if key not in teachers:
                torch.manual_seed(cfg.teacher.seed)
                teacher = ResNetTeacher(window, n_cls, model.channels)
                fit(teacher, xtr[mtr], ytr[mtr], xte[mval], yva[mval], cfg.teacher,
                    class_weight=cw if lv.teacher_too else None)
                teachers[key] = (teacher, predict_logits(teacher, xtr[mtr]))
            teacher, soft = teachers[key]
            xs, ys, ss = xtr[mtr], ytr[mtr], soft
            if lv.cow_balance > 0:
                rows = _cow_balanced(ys, ds.train.cow[mtr], lv.cow_balance)
                xs, ys, ss = xs[rows], ys[rows], ss[rows]
            if lv.dyn_scale > 0:
                xs = np.concatenate([xs, _dyn_scaled(xs, lv.dyn_scale, cfg.student.seed + fi)])
                ys = np.concatenate([ys, ys])
                ss = np.concatenate([ss, predict_logits(teacher, xs[len(ys) // 2:])])
            torch.manual_seed(cfg.student.seed)
            student = GruStudent(window, hidden, n_cls, model.channels)
            fc = replace(cfg.student, alpha=cfg.kd_alpha, temperature=cfg.temperature)
            fit(student, xs, ys, xte[mval], yva[mval], fc, soft_logits=ss, class_weight=cw)
            mte = np.isin(ds.test.cow, test_cows)
            y_te = ds.test.y[mte]
            pred = predict_logits(student, xte[mte]).argmax(1)
            s = score(y_te, pred, n_cls)
            cm = confusion_matrix(y_te, pred, n_cls)
            arm.confusion = (np.asarray(arm.confusion) + cm).tolist()
            arm.fold_mcc.append(float(s.mcc))
            n = cm.sum(1)
            arm.fold_recall.append([float(cm[k, k] / n[k]) if n[k] else math.nan for k in range(n_cls)])
            arm.fold_other.append((int(cm[OTHER, OTHER]), int(n[OTHER])))
            _add_breakdown(arm, ds, mte, pred, model.counts_per_g)
            log(f"fold {fi} test={'+'.join(test_cows)} val={val} {arm.name}: MCC {s.mcc:+.3f} other "
                f"{cm[OTHER, OTHER]}/{n[OTHER]} [{time.time() - t0:.0f}s]")
    return OthersResult(list(model.classes), [list(f) for f in folds], val_cows, arms,
                        round(time.time() - t0, 1), threads)


def _add_breakdown(arm: ArmResult, ds: Dataset, mte: np.ndarray, pred: np.ndarray, counts_per_g: float) -> None:
    beh = {b.path: b.behaviour for b in ds.bouts}
    test = ds.test.select(mte)
    motion = _motion_g(test.x, counts_per_g)
    n_cls = len(arm.confusion)
    sums: dict[tuple[str, str], list[float]] = {}
    for i, (path, cow, y) in enumerate(zip(test.bout.tolist(), test.cow.tolist(), test.y.tolist(), strict=True)):
        if y == OTHER:
            b = beh[path]
            row = arm.breakdown.setdefault(b, {}).setdefault(cow, [0] * n_cls)
            row[int(pred[i])] += 1
        elif y == WALKING:
            b = "<Walking>"
        else:
            continue
        sums.setdefault((b, cow), []).append(float(motion[i]))
    for (b, cow), v in sums.items():
        arm.motion.setdefault(b, {})[cow] = float(np.mean(v))


def _f(v: float, spec: str = ".2f") -> str:
    return "  -  " if math.isnan(v) else format(v, spec)


def format_others(result: OthersResult, breakdown: Sequence[str] | None = None) -> str:
    """Plain-text tables: per arm the held-out "other" windows by sub-behaviour and cow with what they
    were called; the arms' LOAO MCC and recall of every class; paired per-fold differences against
    the first arm. ``breakdown``: the arms whose breakdown to print (default: the first only)."""
    cls = result.classes
    short = [c[:5] for c in cls]
    out: list[str] = []
    chosen = [result.arms[0].name] if breakdown is None else list(breakdown)
    for arm in (result.arm(n) for n in chosen):
        cows = sorted({c for per in arm.breakdown.values() for c in per})
        out.append(f"[{arm.name}] held-out {cls[OTHER]!r} windows: predicted " + "/".join(short)
                   + " (per cow), and motion = mean std|a| in g")
        head = f"{'behaviour':<11}" + "".join(f"{c:>18}" for c in cows) + f"{'all':>18}{'motion':>8}"
        out += [head, "-" * len(head)]
        tot_all = np.zeros(len(cls), np.int64)
        for b in sorted(arm.breakdown):
            per = arm.breakdown[b]
            tot = np.sum([per[c] for c in per], axis=0)
            tot_all += tot
            mot = np.mean(list(arm.motion.get(b, {}).values())) if arm.motion.get(b) else math.nan
            out.append(f"{b:<11}" + "".join(f"{'/'.join(map(str, per[c])) if c in per else '':>18}" for c in cows)
                       + f"{'/'.join(map(str, tot)):>18}{_f(float(mot), '.3f'):>8}")
        cow_tot = [np.sum([arm.breakdown[b][c] for b in arm.breakdown if c in arm.breakdown[b]], axis=0)
                   for c in cows]
        out.append(f"{'all':<11}" + "".join(f"{'/'.join(map(str, t)):>18}" for t in cow_tot)
                   + f"{'/'.join(map(str, tot_all)):>18}")
        walk = arm.motion.get("<Walking>", {})
        out.append(f"{'(walking)':<11}" + "".join(f"{_f(walk.get(c, math.nan), '.3f'):>18}" for c in cows)
                   + f"{'':>18}{_f(float(np.mean(list(walk.values()))) if walk else math.nan, '.3f'):>8}")
        out.append("")
    head = (f"{'arm':<14}{'MCC mean':>9}{'sd':>6}" + "".join(f"{'rec ' + s:>10}" for s in short)
            + f"{cls[OTHER] + ' n':>9}")
    out += ["LOAO (mean MCC over folds; recall pooled over the folds' test windows)", head, "-" * len(head)]
    for a in result.arms:
        sd = float(np.std(a.fold_mcc, ddof=1)) if len(a.fold_mcc) > 1 else 0.0
        n_other = sum(n for _, n in a.fold_other)
        out.append(f"{a.name:<14}{a.mcc_mean:>9.3f}{sd:>6.2f}" + "".join(f"{_f(r, '.3f'):>10}" for r in a.pooled_recall)
                   + f"{n_other:>9}")
    ref = result.arms[0]
    if len(result.arms) > 1:
        labels = ["+".join(f) for f in result.folds]
        out += ["", f"paired per-fold differences against {ref.name!r}: dMCC (d recall {cls[OTHER]}, pp of the "
                "fold's windows)", f"{'arm':<14}" + "".join(f"{c:>13}" for c in labels) + f"{'mean dMCC':>11}{'se':>7}"]
        for a in result.arms[1:]:
            d = np.array(a.fold_mcc) - np.array(ref.fold_mcc)
            cells = []
            for fi in range(len(d)):
                (k1, n1), (k0, n0) = a.fold_other[fi], ref.fold_other[fi]
                dr = 100 * (k1 / n1 - k0 / n0) if n1 and n0 else math.nan
                cells.append(f"{d[fi]:+.3f}({_f(dr, '+.0f')})")
            se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0
            out.append(f"{a.name:<14}" + "".join(f"{c:>13}" for c in cells) + f"{d.mean():>+11.3f}{se:>7.3f}")
    out.append(f"\n{len(result.folds)} folds, torch threads {result.threads}, {result.seconds:.0f} s")
    return "\n".join(out)
