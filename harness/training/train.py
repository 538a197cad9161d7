"""Training: hard-label and knowledge-distillation fits with class-balanced sampling, augmentation
by small rotations about the collar axis, and early stopping on a held-out validation cow.

Deterministic for a given seed (single-threaded data path, seeded generators).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from harness.training.models import GruStudent, InputNorm, ResNetTeacher, count_params
from harness.verdict.metrics import score

__all__ = [
    "FitConfig",
    "FitResult",
    "fit",
    "load_model",
    "predict_logits",
    "save_model",
]


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 40
    patience: int = 8
    samples_per_epoch: int = 4096
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    rotate_deg: float = 15.0
    """Augmentation: uniform random rotation about the collar (z) axis, +- this many degrees."""
    gain_jitter: float = 0.1
    alpha: float = 1.0
    """Weight of the hard-label loss; 1 - alpha goes to the soft-label (KD) loss."""
    temperature: float = 4.0
    seed: int = 0


@dataclass(frozen=True)
class FitResult:
    best_epoch: int
    epochs_run: int
    val_mcc: float


def _augment(x: torch.Tensor, cfg: FitConfig, gen: torch.Generator) -> torch.Tensor:
    b = x.shape[0]
    theta = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(cfg.rotate_deg)
    c, s = torch.cos(theta)[:, None], torch.sin(theta)[:, None]
    out = x.clone()
    out[..., 0] = c * x[..., 0] - s * x[..., 1]
    out[..., 1] = s * x[..., 0] + c * x[..., 1]
    gain = 1 + (torch.rand(b, 1, 1, generator=gen) * 2 - 1) * cfg.gain_jitter
    return out * gain


def _n_classes(model: nn.Module) -> int:
    n = getattr(model, "n_classes", None)
    if not isinstance(n, int):
        raise TypeError(f"{type(model).__name__} does not state its class count (n_classes)")
    return n


def predict_logits(model: nn.Module, x_counts: np.ndarray, batch: int = 512) -> np.ndarray:
    """Float logits for int16 counts [N, T, 3]."""
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(x_counts), batch):
            outs.append(model(torch.from_numpy(x_counts[i : i + batch].astype(np.float32))))
    return torch.cat(outs).numpy() if outs else np.zeros((0, _n_classes(model)), np.float32)


def fit(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    cfg: FitConfig,
    soft_logits: np.ndarray | None = None,
    teacher: nn.Module | None = None,
    feat_target: np.ndarray | None = None,
    feat_weight: float = 1.0,
    class_weight: np.ndarray | None = None,
) -> FitResult:
    """Train ``model`` in place; restores the weights of the epoch with the best validation MCC.

    Args:
        x, y: calibrated training counts int16[N, T, 3] and labels.
        x_val, y_val: windows of the validation cow(s), never of a test cow.
        soft_logits: teacher logits float[N, 4] for KD, computed once on the unaugmented windows.
        teacher: alternatively the teacher itself, run on every augmented batch, so teacher and
            student always see the same view ("consistent" distillation).
        feat_target: teacher features float[N, F] (e.g. ResNetTeacher.features) to match
            (FitNets-style): a linear map of the student's features (GruStudent.features), trained
            with it, is pulled towards the per-dimension standardised targets by mean squared error,
            weighted ``feat_weight``, on top of the other losses. The map is not part of the model.
        class_weight: float[n_classes] weights of the hard-label cross-entropy per class (on top of the
            class-balanced sampling); None (the default recipe): unweighted.
    """
    if cfg.alpha < 1.0 and soft_logits is None and teacher is None:
        raise ValueError("alpha < 1 needs teacher logits (or the teacher) for the soft-label loss")
    if teacher is not None:
        teacher.eval()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    norm = model.norm
    if not isinstance(norm, InputNorm):
        raise TypeError(f"{type(model).__name__} has no InputNorm: cannot fit its normalisation")
    norm.fit(torch.from_numpy(x.astype(np.float32)))
    xt = torch.from_numpy(x.astype(np.float32))
    yt = torch.from_numpy(y.astype(np.int64))
    st = torch.from_numpy(soft_logits.astype(np.float32)) if soft_logits is not None else None
    cw = torch.from_numpy(np.asarray(class_weight, np.float32)) if class_weight is not None else None
    # Class-balanced sampling: every class drawn equally often, whatever its window count.
    n_classes = _n_classes(model)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts[y] > 0, 1.0 / np.maximum(counts[y], 1), 0.0)
    weights = torch.from_numpy(w / w.sum())
    params = list(model.parameters())
    ft: torch.Tensor | None = None
    proj: nn.Linear | None = None
    if feat_target is not None:
        f = torch.from_numpy(feat_target.astype(np.float32))
        ft = (f - f.mean(0)) / f.std(0).clamp_min(1e-6)
        proj = nn.Linear(int(model.hidden), ft.shape[1])  # type: ignore[arg-type]
        params += list(proj.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    best = (-2.0, 0, {k: v.clone() for k, v in model.state_dict().items()})
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        idx = torch.multinomial(weights, cfg.samples_per_epoch, replacement=True, generator=gen)
        for i in range(0, len(idx), cfg.batch):
            bi = idx[i : i + cfg.batch]
            xb = _augment(xt[bi], cfg, gen)
            if proj is not None:
                feats = model.features(xb)  # type: ignore[operator]
                logits = model.head(feats)  # type: ignore[operator]
            else:
                logits = model(xb)
            loss = cfg.alpha * F.cross_entropy(logits, yt[bi], weight=cw) if cfg.alpha > 0 else logits.new_zeros(())
            if (st is not None or teacher is not None) and cfg.alpha < 1.0:
                t = cfg.temperature
                if teacher is not None:
                    with torch.no_grad():
                        target = teacher(xb)
                else:
                    assert st is not None
                    target = st[bi]
                kd = F.kl_div(F.log_softmax(logits / t, dim=1), F.softmax(target / t, dim=1), reduction="batchmean")
                loss = loss + (1 - cfg.alpha) * t * t * kd
            if proj is not None and ft is not None:
                loss = loss + feat_weight * F.mse_loss(proj(feats), ft[bi])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        sched.step()
        val_mcc = score(y_val, predict_logits(model, x_val).argmax(1), n_classes).mcc
        if val_mcc > best[0]:
            best = (val_mcc, epoch, {k: v.clone() for k, v in model.state_dict().items()})
        elif epoch - best[1] >= cfg.patience:
            break
    model.load_state_dict(best[2])
    return FitResult(best_epoch=best[1], epochs_run=epoch, val_mcc=best[0])


def save_model(model: nn.Module, path: Path, extra: dict[str, object]) -> None:
    """Write ``<path>.pt`` (state dict) and ``<path>.json`` (architecture + metrics)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arch: dict[str, object] = {"kind": model.kind, "window": model.window,  # type: ignore[attr-defined]
                               "n_classes": model.n_classes}
    if isinstance(model, GruStudent):
        arch["hidden"] = model.hidden
    sd = {k: v.detach().clone().contiguous() for k, v in sorted(model.state_dict().items())}
    torch.save(sd, path.with_suffix(".pt"))
    meta = {"arch": arch, "params": count_params(model), "macs_per_window": model.macs(), **extra}  # type: ignore[operator]
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(o: object) -> object:
    if isinstance(o, FitConfig | FitResult):
        return asdict(o)
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def load_model(path: Path) -> nn.Module:
    """Load a model written by :func:`save_model` (``path`` with or without suffix)."""
    path = Path(path)
    meta_path, pt_path = path.with_suffix(".json"), path.with_suffix(".pt")
    for p in (meta_path, pt_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: model file missing; train with `hil train`")
    try:
        arch = json.loads(meta_path.read_text())["arch"]
        kind, window = str(arch["kind"]), int(arch["window"])
        hidden = int(arch["hidden"]) if kind == "gru" else 0
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{meta_path}: not a model description written by `hil train` "
                         f"({type(exc).__name__}: {exc})") from None
    try:
        sd = torch.load(pt_path, weights_only=True)
        # the class and channel counts are the weights' own shapes: nothing to assume
        out_w = sd["head2.weight" if kind == "gru" else "fc.weight"]
        n_classes, channels = int(out_w.shape[0]), int(sd["norm.mean"].shape[0])
    except Exception as exc:  # torch raises many kinds on a damaged file
        raise ValueError(f"{pt_path}: not a model state written by `hil train` ({type(exc).__name__}: {exc})") from None
    model: nn.Module
    if kind == "gru":
        model = GruStudent(window, hidden, n_classes, channels)
    elif kind == "resnet":
        model = ResNetTeacher(window, n_classes, channels)
    else:
        raise ValueError(f"{meta_path}: unknown model kind {kind!r}")
    try:
        model.load_state_dict(sd)
    except RuntimeError as exc:
        raise ValueError(f"{pt_path}: the weights do not fit {meta_path}'s architecture: {exc}") from None
    model.eval()
    return model
