"""The verdict's edges: a floor met exactly passes, a hair below fails; a bit-exact comparison
looks at every score, the last included."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CATTLE

from harness.config.thresholds import Thresholds
from harness.verdict.evaluate import _budget, _floor, check_acceptance, failed_run
from harness.verdict.metrics import Scores, compare_bit_exact


def test_a_floor_met_exactly_passes_and_a_hair_below_fails() -> None:
    assert _floor("accuracy", 0.75, 0.75)[1] is True  # type: ignore[index]
    assert _floor("accuracy", np.nextafter(0.75, 0), 0.75)[1] is False  # type: ignore[index]


def test_a_budget_met_exactly_passes_and_a_hair_over_fails() -> None:
    assert _budget("latency", 10.0, 10.0, "ms")[1] is True  # type: ignore[index]
    assert _budget("latency", np.nextafter(10.0, 11), 10.0, "ms")[1] is False  # type: ignore[index]


@pytest.mark.parametrize(("hits", "passed"), [(3, True), (2, False)])
def test_a_recall_floor_is_met_at_equality_only(hits: int, passed: bool) -> None:
    """Walking 3/4 = 0.75 against a floor of 0.75 passes; 2/4 fails."""
    run = failed_run("collar", "w8a16", "qemu", 4, "placeholder", CATTLE.classes)
    run.checks = []
    run.labels = Scores(4, 0.75, 0.75, 0.5, ((0, 0, 0, 0), (4 - hits, hits, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0)))
    t = Thresholds(source="test", min_windows=0, min_recall={"walking": 0.75})
    checks = {name: ok for name, ok, _ in check_acceptance(run, {("collar", "w8a16"): t})}
    assert checks["recall walking"] is passed


def test_a_bit_exact_comparison_that_differs_only_in_the_last_score_is_a_mismatch_naming_it() -> None:
    ref = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    dev = ref.copy()
    dev[1, -1] += 1
    vs = compare_bit_exact(np.array([10, 11]), dev, ref)
    assert vs.n_exact == 1 and not vs.all_exact
    assert vs.first_mismatch == "window 11: score 3: got 9, want 8"


def test_a_bit_exact_comparison_of_other_shapes_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        compare_bit_exact(np.array([0]), np.zeros((1, 5)), np.zeros((1, 4)))


def test_an_intact_reply_that_differs_is_a_mismatch_not_verified_and_fails_the_case() -> None:
    """One word, one meaning: 'verified' counts only replies that match their reference."""
    run = failed_run("collar", "w8a16", "qemu", 4, "placeholder", CATTLE.classes)
    run.checks, run.aborted = [], None
    run.device_classes = [0, 1, 2, 3]
    run.n_mismatches = 1
    assert (run.n_replied, run.n_verified) == (4, 3)
    checks = {name: (ok, detail) for name, ok, detail in check_acceptance(
        run, {("collar", "w8a16"): Thresholds(source="test", min_windows=4)})}
    assert checks["every window verified"] == (
        False, "3/4 windows verified; 1 mismatched (an intact reply that differs from the reference)")
    assert checks["windows"][0] is False
    assert run.measured()["windows_verified"] == 3 and run.measured()["windows_mismatched"] == 1
