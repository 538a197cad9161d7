"""harness.training.others: the leave-one-cow-out breakdown of the held-out "other" windows (issue 23)."""

from __future__ import annotations

import collections
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, needs_shared_data

from harness.training.bench import BenchConfig, load_dataset
from harness.training.others import (
    OTHER,
    WALKING,
    Lever,
    _cow_balanced,
    _dyn_scaled,
    _training_labels,
    format_others,
    lever_presets,
    run_others,
)
from harness.training.train import FitConfig

COWS = ["1219", "2016", "6019"]
"""1219 and 2016 have Trotting and five other Others behaviours between them; 6019 most Others"""
TINY = replace(BenchConfig(), teacher=FitConfig(epochs=1, patience=1, samples_per_epoch=256),
               student=FitConfig(epochs=1, patience=1, samples_per_epoch=256))


def _other_windows(data_root: Path, test_cows: list[str]) -> collections.Counter[tuple[str, str]]:
    ds = load_dataset(data_root)
    beh = {b.path: b.behaviour for b in ds.bouts}
    m = np.isin(ds.test.cow, test_cows) & (ds.test.y == OTHER)
    return collections.Counter((beh[p], c) for p, c in zip(ds.test.bout[m].tolist(), ds.test.cow[m].tolist(),
                                                           strict=True))


@pytest.fixture(scope="module")
def two_arms() -> object:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared recordings not found at {SHARED_DATA}")
    levers = [Lever(), lever_presets()["other-w4"], lever_presets()["trot-walking"]]
    return run_others(SHARED_DATA, levers, cows=COWS, max_folds=2, cfg=TINY, log=lambda m: None)


@needs_shared_data
def test_every_held_out_other_window_is_counted_once_under_its_behaviour_and_cow(two_arms) -> None:  # type: ignore[no-untyped-def]
    res = two_arms
    assert res.folds == [["1219"], ["2016"]]
    want = _other_windows(SHARED_DATA, ["1219", "2016"])
    assert sum(want.values()) > 0
    for arm in res.arms:
        got = {(b, c): sum(v) for b, per in arm.breakdown.items() for c, v in per.items()}
        assert got == dict(want), arm.name
        assert {b for b, _ in want} == set(arm.breakdown)
        assert "Trotting" in arm.breakdown and "Standing" in arm.breakdown
        n_other = sum(n for _, n in arm.fold_other)
        assert n_other == sum(want.values()) == int(np.asarray(arm.confusion)[OTHER].sum())
        # the breakdown's predictions are the confusion matrix's "other" row
        pred = np.sum([v for per in arm.breakdown.values() for v in per.values()], axis=0)
        assert pred.tolist() == np.asarray(arm.confusion)[OTHER].tolist()
        assert len(arm.fold_mcc) == 2 and all(-1 <= m <= 1 for m in arm.fold_mcc)
        assert all(0 <= r <= 1 for r in arm.pooled_recall)
        assert set(arm.motion) >= {"Standing", "<Walking>"}


@needs_shared_data
def test_the_default_arm_does_not_depend_on_the_other_arms_beside_it(two_arms) -> None:  # type: ignore[no-untyped-def]
    alone = run_others(SHARED_DATA, [Lever()], cows=COWS, max_folds=2, cfg=TINY, log=lambda m: None)
    assert alone.arms[0].confusion == two_arms.arms[0].confusion
    assert alone.arms[0].fold_mcc == two_arms.arms[0].fold_mcc


@needs_shared_data
def test_the_tables_name_every_behaviour_arm_and_fold(two_arms) -> None:  # type: ignore[no-untyped-def]
    text = format_others(two_arms, breakdown=[a.name for a in two_arms.arms])
    for arm in two_arms.arms:
        assert f"[{arm.name}]" in text
        for b in arm.breakdown:
            assert b in text
    assert "paired per-fold differences against 'default'" in text
    assert "1219" in text and "2016" in text


@needs_shared_data
def test_trotting_relabelling_touches_only_trotting_windows() -> None:
    ds = load_dataset(SHARED_DATA)
    beh = {b.path: b.behaviour for b in ds.bouts}
    trot = np.array([beh[p] == "Trotting" for p in ds.train.bout.tolist()])
    assert trot.sum() > 0
    y, keep = _training_labels(ds, Lever(trotting="as-walking"), "train")
    assert (y[trot] == WALKING).all() and (y[~trot] == ds.train.y[~trot]).all() and keep.all()
    y, keep = _training_labels(ds, Lever(trotting="drop"), "train")
    assert (keep == ~trot).all() and (y == ds.train.y).all()


def test_cow_balancing_repeats_the_small_groups_up_to_the_cap() -> None:
    y = np.array([0] * 10 + [0] * 2 + [1] * 3)
    cow = np.array(["a"] * 10 + ["b"] * 2 + ["a"] * 3)
    rows = _cow_balanced(y, cow, cap=3)
    c = collections.Counter(zip(y[rows].tolist(), cow[rows].tolist(), strict=True))
    assert c == {(0, "a"): 10, (0, "b"): 6, (1, "a"): 3}
    assert collections.Counter(zip(y[_cow_balanced(y, cow, 8)].tolist(), cow[_cow_balanced(y, cow, 8)].tolist(),
                                   strict=True))[(0, "b")] == 10


def test_dynamic_scaling_keeps_each_window_mean_and_bounds_the_factor() -> None:
    rng = np.random.default_rng(1)
    x = (rng.normal(0, 800, (64, 50, 3)) + np.array([0, -8000, 3000])).astype(np.int16)
    out = _dyn_scaled(x, 0.5, seed=3)
    assert out.shape == x.shape and out.dtype == np.int16
    assert np.abs(out.mean(1) - x.mean(1)).max() < 1.0
    ratio = out.std(1).mean(1) / x.std(1).mean(1)
    assert ratio.min() >= 1 / 1.5 - 0.01 and ratio.max() <= 1.5 + 0.01 and ratio.std() > 0.05
    assert np.array_equal(out, _dyn_scaled(x, 0.5, seed=3))


def test_bad_levers_are_refused_before_any_training() -> None:
    with pytest.raises(ValueError, match="trotting"):
        run_others(Path("/nonexistent"), [Lever(trotting="other")])
    with pytest.raises(ValueError, match="repeat"):
        run_others(Path("/nonexistent"), [Lever(), Lever()])
    with pytest.raises(ValueError, match="at least one"):
        run_others(Path("/nonexistent"), [])
