"""``hil bench kd --paired``: a KD benchmark that can carry a claim of a few hundredths of MCC.

Leave-one-animal-out folds x seeds, on the recordings and classes of any model descriptor (its
loader reads them; the default is the packaged cattle model). In every (fold, seed) the same
teacher, the same training windows and the same validation cows serve every arm, so the arms are
compared *paired*:

- ``hard``: the student on hard labels;
- ``hard'``: the same arm again with another seed: hard' - hard is the benchmark's noise floor;
- ``kd``: the student distilled from the teacher (alpha, T as configured);
- ``kd-ens`` (optional): distilled from the mean probabilities of ``ensemble`` teachers;
- ``teacher-ctx`` and ``kd-ctx`` (``context``): a teacher with privileged context (it sees the
  ``context`` samples around each window, cut from the window's bout; the student still sees only
  its window) and the student distilled from it. ``teacher-ctx`` is scored on the test windows'
  contexts: a figure for the teacher, not one a device could reach;
- ``<kd>-dense`` (``dense_hop``): distilled on windows every ``dense_hop`` samples rather than the
  labelled hop-25 set, every one soft-labelled by the teacher (the context teacher if there is one);
- ``<kd>-tuned`` (``tune``): T and alpha chosen from a grid by MCC on the validation cows only;
- ``kd-feat`` (``feature_match``): KD plus matching the window teacher's pooled features through a
  trained linear map of the student's last hidden state (FitNets-style).

Early stopping looks at two validation cows (never a test cow), not one. Torch runs on one thread
(stated in the output) so results do not depend on the machine's thread count; ``jobs`` processes
share the folds (same results, a fraction of the wall time). For every
comparison it reports the mean paired difference of per-fold MCC, its standard error over the
(fold, seed) pairs, and a 95 % bootstrap interval over cows (folds resampled with replacement,
seeded); plus the pooled out-of-fold MCC and the pooled per-class recall of every arm.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from harness.config.descriptor import ModelDescriptor, load_descriptor
from harness.data.fixtures import calibrated
from harness.data.recordings import CLASS_NAMES, Bout
from harness.data.windows import WindowSet, context_windows, leave_one_cow_out, make_windows
from harness.training.bench import Dataset, load_dataset
from harness.training.models import GruStudent, ResNetTeacher
from harness.training.train import FitConfig, fit, predict_logits
from harness.verdict.metrics import confusion_matrix, score

__all__ = ["PairedConfig", "arms_of", "bootstrap_interval", "format_paired", "merge_paired", "run_paired_bench"]

Log = Callable[[str], None]
LEGACY_CLASSES = CLASS_NAMES
"""the class names of a result file written before results recorded theirs (the cattle model's)"""


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
    context: int = 0
    """samples of privileged context around each window for a second teacher (0: no such arm)"""
    context_filters: tuple[int, int, int] = (32, 64, 64)
    """that teacher's ResNet widths: narrower than the window teacher's, so its cost on the longer
    input stays close to the window teacher's"""
    dense_hop: int = 0
    """a KD arm trained on windows every this many samples, soft-labelled by the teacher (0: off)"""
    tune: bool = False
    """a KD arm whose (T, alpha) is chosen from ``tune_grid`` by MCC on the validation cows"""
    tune_grid: tuple[tuple[float, float], ...] = ((2.0, 0.5), (4.0, 0.5), (2.0, 0.2), (4.0, 0.8))
    feature_match: float = 0.0
    """a KD arm that also matches the window teacher's pooled features (weight of that loss; 0: no
    such arm)"""
    jobs: int = 1
    """processes, each with ``threads`` torch threads, taking the folds in turn (results do not
    depend on it: every (fold, seed) run is seeded on its own)"""

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


def _fit_student(h: int, n_classes: int, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray,
                 cfg: FitConfig, seed: int, soft: np.ndarray | None, alpha: float, temperature: float,
                 feat: np.ndarray | None = None, feat_weight: float = 0.0) -> GruStudent:
    torch.manual_seed(seed)
    st = GruStudent(x.shape[1], h, n_classes)
    fc = replace(cfg, seed=seed)
    if soft is not None:
        fc = replace(fc, alpha=alpha, temperature=temperature)
    fit(st, x, y, xv, yv, fc, soft_logits=soft, feat_target=feat, feat_weight=feat_weight)
    return st


def _features(t: ResNetTeacher, x: np.ndarray, batch: int = 512) -> np.ndarray:
    t.eval()
    with torch.no_grad():
        return torch.cat([t.features(torch.from_numpy(x[i : i + batch].astype(np.float32)))
                          for i in range(0, len(x), batch)]).numpy()


def _fold_calibrated(bouts: list[Bout], cows: list[str], rotations: dict[str, tuple[int, int]], window: int,
                     hop: int) -> WindowSet:
    """Windows of ``cows`` every ``hop`` samples, calibrated (each cow's rotation applied)."""
    ws, _ = make_windows([b for b in bouts if b.cow in cows], window, hop)
    return WindowSet(calibrated(ws, rotations), ws.y, ws.cow, ws.bout, ws.start)


def _ctx(ds: Dataset, ws: WindowSet, length: int) -> np.ndarray:
    """Calibrated privileged context of every window of ``ws`` (raw windows)."""
    raw = context_windows(ds.bouts, ws, length)
    return calibrated(WindowSet(raw, ws.y, ws.cow, ws.bout, ws.start), ds.rotations)


def _fit_teacher(n_classes: int, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, cfg: FitConfig,
                 seed: int, filters: tuple[int, int, int] = (64, 128, 128)) -> ResNetTeacher:
    torch.manual_seed(seed)
    t = ResNetTeacher(x.shape[1], n_classes, filters=filters)
    fit(t, x, y, xv, yv, replace(cfg, seed=seed))
    return t


def arms_of(cfg: PairedConfig) -> list[str]:
    """The arms a configuration runs, in table order."""
    arms = ["teacher", "hard", "hard'", "kd"]
    if cfg.ensemble:
        arms.append("kd-ens")
    if cfg.feature_match:
        arms.append("kd-feat")
    if cfg.context:
        arms += ["teacher-ctx", "kd-ctx"]
    src = "kd-ctx" if cfg.context else "kd"
    if cfg.dense_hop:
        arms.append(f"{src}-dense")
    if cfg.tune:
        arms.append(f"{src}-tuned")
    return arms


def _log_stderr(prefix: str, msg: str) -> None:
    import sys

    print(f"{prefix}{msg}", file=sys.stderr, flush=True)


def _worker(data_root: Path, cfg: PairedConfig, model: ModelDescriptor, k: int) -> dict[str, object]:
    return _run(data_root, cfg, None, partial(_log_stderr, f"[job {k}] "), table=False, model=model)


def run_paired_bench(data_root: Path, cfg: PairedConfig, out_json: Path | None, log: Log = print,
                     model: ModelDescriptor | None = None) -> dict[str, object]:
    """The benchmark on the recordings at ``data_root``, read by the loader of ``model`` (default:
    the packaged cattle descriptor), whose window and classes it trains; with ``cfg.jobs`` > 1 its
    folds are dealt round-robin to that many processes (each logs its own progress, prefixed) and
    the parts merged (:func:`merge_paired`)."""
    model = model or load_descriptor()
    if cfg.jobs <= 1:
        return _run(data_root, cfg, out_json, log, model=model)
    n = len(leave_one_cow_out(load_dataset(data_root, model).test.cows))
    idx = [i for i in range(n)[: cfg.max_folds] if cfg.folds is None or i in cfg.folds]
    shares = [tuple(idx[k :: cfg.jobs]) for k in range(cfg.jobs) if idx[k :: cfg.jobs]]
    log(f"paired KD bench in {len(shares)} processes: folds " + " | ".join(",".join(map(str, s)) for s in shares))
    t0 = time.time()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(shares), mp_context=ctx) as pool:
        futs = [pool.submit(_worker, data_root, replace(cfg, folds=s, jobs=1), model, k) for k, s in enumerate(shares)]
        parts = [f.result() for f in futs]
    result = merge_paired(parts)
    result["config"]["jobs"] = cfg.jobs  # type: ignore[index]
    result["wall_seconds"] = round(time.time() - t0, 1)
    log(format_paired(result))
    log(f"{result['wall_seconds']} s wall time, {result['seconds']} s summed over the processes")
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(result, indent=1, default=str) + "\n")
        log(f"wrote {out_json}")
    return result


def _run(data_root: Path, cfg: PairedConfig, out_json: Path | None, log: Log = print,
         table: bool = True, model: ModelDescriptor | None = None) -> dict[str, object]:
    """One process's share of the benchmark; ``table`` False: a worker of a split run, whose parent
    prints the merged table, so it prints only its progress."""
    model = model or load_descriptor()
    nc = model.n_classes
    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    ds = load_dataset(data_root, model)
    xtr = calibrated(ds.train, ds.rotations)
    xte = calibrated(ds.test, ds.rotations)
    if cfg.context:
        ctr, cte = _ctx(ds, ds.train, cfg.context), _ctx(ds, ds.test, cfg.context)
    folds = leave_one_cow_out(ds.test.cows)
    idx = list(range(len(folds)))[: cfg.max_folds]
    if cfg.folds is not None:
        idx = [i for i in idx if i in cfg.folds]
    arms = arms_of(cfg)
    total = len(idx) * len(cfg.seeds)
    levers = []
    if cfg.context:
        secs = cfg.context / model.sample_rate_hz
        levers.append(f"privileged-context teacher on {cfg.context} samples ({secs:g} s), "
                      f"filters {'-'.join(map(str, cfg.context_filters))}")
    if cfg.dense_hop:
        levers.append(f"soft labels on windows every {cfg.dense_hop} samples")
    if cfg.feature_match:
        levers.append(f"feature matching to the window teacher, weight {cfg.feature_match:g}")
    if cfg.tune:
        levers.append("T, alpha chosen on the validation cows from "
                      + ", ".join(f"({t:g}, {a:g})" for t, a in cfg.tune_grid))
    log(f"paired KD bench, model {model.summary()}: {len(idx)} folds x {len(cfg.seeds)} seeds = {total} runs, "
        f"GRU-{cfg.hidden}, "
        f"KD alpha {cfg.kd_alpha} T {cfg.temperature}, ensemble {cfg.ensemble or 'off'}, torch threads {cfg.threads}, "
        f"teacher {cfg.teacher.epochs} epochs, student {cfg.student.epochs} epochs"
        + (f"; levers: {'; '.join(levers)}" if levers else "") + f"; arms: {', '.join(arms)}")
    rows: list[dict[str, object]] = []
    done = 0
    for fi in idx:
        test = folds[fi]
        rest = [c for c in ds.test.cows if c not in test]
        val = _val_cows(rest, ds.test.y, ds.test.cow, fi)
        fit_cows = [c for c in rest if c not in val]
        mtr, mval, mte = np.isin(ds.train.cow, fit_cows), np.isin(ds.test.cow, val), np.isin(ds.test.cow, test)
        x, y, xv, yv = xtr[mtr], ds.train.y[mtr], xte[mval], ds.test.y[mval]
        dense = (_fold_calibrated(ds.bouts, fit_cows, ds.rotations, model.window, cfg.dense_hop) if cfg.dense_hop
                 else None)
        for seed in cfg.seeds:
            teachers = [_fit_teacher(nc, x, y, xv, yv, cfg.teacher, seed * 100 + k)
                        for k in range(max(1, cfg.ensemble))]
            soft = predict_logits(teachers[0], x)
            models: dict[str, torch.nn.Module] = {"teacher": teachers[0]}
            models["hard"] = _fit_student(cfg.hidden, nc, x, y, xv, yv, cfg.student, seed, None, 1.0, 1.0)
            models["hard'"] = _fit_student(cfg.hidden, nc, x, y, xv, yv, cfg.student, seed + 1000, None, 1.0, 1.0)
            models["kd"] = _fit_student(cfg.hidden, nc, x, y, xv, yv, cfg.student, seed, soft, cfg.kd_alpha,
                                        cfg.temperature)
            if cfg.ensemble:
                probs = np.mean([torch.softmax(torch.from_numpy(predict_logits(t, x)), 1).numpy() for t in teachers], 0)
                models["kd-ens"] = _fit_student(cfg.hidden, nc, x, y, xv, yv, cfg.student, seed,
                                                np.log(np.clip(probs, 1e-7, 1.0)), cfg.kd_alpha, cfg.temperature)
            if cfg.feature_match:
                models["kd-feat"] = _fit_student(cfg.hidden, nc, x, y, xv, yv, cfg.student, seed, soft, cfg.kd_alpha,
                                                 cfg.temperature, _features(teachers[0], x), cfg.feature_match)
            # The teacher whose soft labels the dense and tuned arms use; a callable so a dense window
            # set gets the labels of the same teacher.
            label: Callable[[WindowSet], np.ndarray]
            if cfg.context:
                tc = _fit_teacher(nc, ctr[mtr], y, cte[mval], yv, cfg.teacher, seed * 100 + 50, cfg.context_filters)
                models["teacher-ctx"] = tc
                soft_src = predict_logits(tc, ctr[mtr])
                models["kd-ctx"] = _fit_student(cfg.hidden, nc, x, y, xv, yv, cfg.student, seed, soft_src,
                                                cfg.kd_alpha, cfg.temperature)
                src = "kd-ctx"

                def label(ws: WindowSet, tc: ResNetTeacher = tc) -> np.ndarray:
                    return predict_logits(tc, _ctx(ds, ws, cfg.context))
            else:
                soft_src, src = soft, "kd"

                def label(ws: WindowSet, t: ResNetTeacher = teachers[0]) -> np.ndarray:
                    return predict_logits(t, ws.x)
            choice: dict[str, object] = {}
            if dense is not None:
                models[f"{src}-dense"] = _fit_student(cfg.hidden, nc, dense.x, dense.y, xv, yv, cfg.student, seed,
                                                      label(dense), cfg.kd_alpha, cfg.temperature)
            if cfg.tune:
                best: tuple[float, tuple[float, float], torch.nn.Module] | None = None
                for t_, a_ in cfg.tune_grid:
                    if (t_, a_) == (cfg.temperature, cfg.kd_alpha):
                        m = models[src]
                    else:
                        m = _fit_student(cfg.hidden, nc, x, y, xv, yv, cfg.student, seed, soft_src, a_, t_)
                    v = score(yv, predict_logits(m, xv).argmax(1), nc).mcc
                    if best is None or v > best[0]:
                        best = (v, (t_, a_), m)
                assert best is not None
                models[f"{src}-tuned"] = best[2]
                choice = {"temperature": best[1][0], "alpha": best[1][1], "val_mcc": best[0]}
            mcc: dict[str, float] = {}
            cms: dict[str, list[list[int]]] = {}
            for a in arms:
                xa = cte[mte] if a == "teacher-ctx" else xte[mte]
                pred = predict_logits(models[a], xa).argmax(1)
                mcc[a] = score(ds.test.y[mte], pred, nc).mcc
                cms[a] = confusion_matrix(ds.test.y[mte], pred, nc).tolist()
            row: dict[str, object] = {"fold": fi, "test_cows": test, "val_cows": val, "seed": seed, "mcc": mcc,
                                      "confusion": cms}
            if choice:
                row["tuned"] = choice
            rows.append(row)
            done += 1
            el = time.time() - t0
            log(f"run {done} of {total}: fold {fi} (test {'+'.join(test)}, val {'+'.join(val)}) seed {seed}: "
                + " ".join(f"{a} {v:+.3f}" for a, v in row["mcc"].items())  # type: ignore[attr-defined]
                + (f" (tuned: T {choice['temperature']:g} alpha {choice['alpha']:g})" if choice else "")
                + f" [{el:.0f} s, ETA {el / done * (total - done):.0f} s]")
    result = summarise(rows, arms, cfg.bootstrap, model.classes)
    result.update(config={**asdict(cfg), "window": model.window, "model": model.name,
                          "descriptor": str(model.source)},
                  runs=rows, seconds=round(time.time() - t0, 1))
    if table:
        log(format_paired(result))
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(result, indent=1, default=str) + "\n")
        log(f"wrote {out_json}")
    return result


def _from_confusion(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) label arrays with exactly the counts of ``cm``."""
    t, p = np.nonzero(cm >= 0)
    reps = cm[t, p].astype(np.int64)
    return np.repeat(t, reps), np.repeat(p, reps)


def summarise(rows: list[dict[str, object]], arms: list[str], bootstrap: int,
              classes: Sequence[str] = LEGACY_CLASSES) -> dict[str, object]:
    """Per arm: MCC mean and sd over runs, pooled MCC and recall of every class in ``classes``
    (from the runs' summed confusion matrices); per comparison: paired mean difference, its SE and
    the interval over cows."""
    n = len(classes)
    arm_rows = []
    for a in arms:
        v = np.array([r["mcc"][a] for r in rows])  # type: ignore[index]
        cm = np.sum([np.asarray(r["confusion"][a]) for r in rows], axis=0)  # type: ignore[index]
        yt, yp = _from_confusion(cm)
        rec = {classes[k]: float(cm[k, k] / cm[k].sum()) if cm[k].sum() else None for k in range(n)}
        arm_rows.append({"arm": a, "mcc_mean": float(v.mean()), "mcc_sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                         "pooled_mcc": score(yt, yp, n).mcc, "pooled_recall": rec})
    comps = []
    for a, b, what in _comparisons(arms):
        d = np.array([r["mcc"][a] - r["mcc"][b] for r in rows])  # type: ignore[index]
        folds = sorted({int(r["fold"]) for r in rows})  # type: ignore[call-overload]
        by_fold = [float(np.mean([r["mcc"][a] - r["mcc"][b] for r in rows if r["fold"] == f])) for f in folds]  # type: ignore[index]
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        comps.append({"comparison": f"{a} - {b}", "what": what, "n_pairs": len(d), "mean": float(d.mean()),
                      "paired_se": se, "ci95_over_cows": bootstrap_interval(by_fold, bootstrap)})
    return {"arms": arm_rows, "comparisons": comps, "class_names": list(classes)}


_WHAT = {"kd": "KD", "kd-ens": "ensemble KD", "kd-feat": "KD with feature matching",
         "kd-ctx": "KD from the privileged-context teacher",
         "kd-dense": "KD on dense windows", "kd-tuned": "KD, T and alpha tuned on validation cows",
         "kd-ctx-dense": "context KD on dense windows",
         "kd-ctx-tuned": "context KD, T and alpha tuned on validation cows"}


def _comparisons(arms: list[str]) -> list[tuple[str, str, str]]:
    """(a, b, what) for every paired difference a - b the table reports."""
    out = [("hard'", "hard", "noise floor: the same arm, another seed")]
    kds = [a for a in arms if a.startswith("kd")]
    out += [(a, "hard", f"{_WHAT.get(a, a)} minus hard labels") for a in kds]
    out += [(a, "kd", f"{_WHAT.get(a, a)} minus KD") for a in kds if a != "kd"]
    return [c for c in out if c[0] in arms and c[1] in arms]


def merge_paired(parts: list[dict[str, object]]) -> dict[str, object]:
    """One result from runs split over processes (``--folds``): same configuration but for the
    folds, no (fold, seed) twice; summarised anew.

    Raises:
        ValueError: the parts differ in configuration or repeat a run (says which).
    """
    if not parts:
        raise ValueError("nothing to merge")

    def key(p: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in p["config"].items() if k not in ("folds", "jobs")}  # type: ignore[attr-defined]

    arms = [r["arm"] for r in parts[0]["arms"]]  # type: ignore[attr-defined]
    for i, p in enumerate(parts[1:], 2):
        if key(p) != key(parts[0]):
            diff = sorted(k for k in key(p) if key(p).get(k) != key(parts[0]).get(k))
            raise ValueError(f"part {i}: configuration differs from part 1 in {', '.join(diff)}")
    rows = [r for p in parts for r in p["runs"]]  # type: ignore[attr-defined]
    seen: set[tuple[int, int]] = set()
    for r in rows:
        k = (int(r["fold"]), int(r["seed"]))
        if k in seen:
            raise ValueError(f"fold {k[0]} seed {k[1]} is in more than one part")
        seen.add(k)
    rows.sort(key=lambda r: (int(r["fold"]), int(r["seed"])))
    classes = [p.get("class_names", list(LEGACY_CLASSES)) for p in parts]
    if any(c != classes[0] for c in classes):
        raise ValueError(f"the parts have different classes: {classes}")
    cfg = dict(key(parts[0]))
    cfg["folds"] = sorted({int(r["fold"]) for r in rows})
    out = summarise(rows, arms, int(cfg["bootstrap"]), classes[0])  # type: ignore[call-overload,arg-type]
    out.update(config=cfg, runs=rows, seconds=round(sum(float(p["seconds"]) for p in parts), 1))  # type: ignore[arg-type,misc]
    return out


def format_paired(result: dict[str, object]) -> str:
    classes = result.get("class_names", list(LEGACY_CLASSES))
    lines = [f"{'arm':<13}{'MCC mean':>10}{'sd':>7}{'pooled MCC':>12}  pooled recall ("
             + ", ".join(classes) + ")"]  # type: ignore[arg-type]
    for r in result["arms"]:  # type: ignore[attr-defined]
        rec = " ".join("-" if v is None else f"{v:.2f}" for v in r["pooled_recall"].values())
        lines.append(f"{r['arm']:<13}{r['mcc_mean']:>10.3f}{r['mcc_sd']:>7.3f}{r['pooled_mcc']:>12.3f}  {rec}")
    lines.append("")
    lines.append(f"{'paired difference of MCC':<28}{'pairs':>6}{'mean':>9}{'SE':>8}  95% interval over cows")
    for c in result["comparisons"]:  # type: ignore[attr-defined]
        lo, hi = c["ci95_over_cows"]
        lines.append(f"{c['comparison']:<28}{c['n_pairs']:>6}{c['mean']:>+9.3f}{c['paired_se']:>8.3f}  "
                     f"[{lo:+.3f}, {hi:+.3f}]  ({c['what']})")
    return "\n".join(lines)
