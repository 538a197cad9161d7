"""The acceptance suite: run unchanged against QEMU in CI (--hil-target qemu, the default), against
Renode, and against an attached board before release (--hil-target board --hil-port ... --hil-probe
...). Floors and budgets come from the thresholds file (--hil-thresholds; default the packaged one).

Each test reads the one device run of its (board, variant) case and asserts checks computed by
harness.verdict.evaluate.check_acceptance: the same rule `hil run` applies.
"""

from __future__ import annotations

import pytest

from harness.verdict.evaluate import DeviceRun
from harness.verdict.metrics import BitExact, FloatAgreement


def _check(run: DeviceRun, prefix: str) -> None:
    found = [(n, ok, detail) for n, ok, detail in run.checks if n == prefix or n.startswith(prefix + " ")]
    if not found:
        pytest.skip(f"no {prefix!r} check for {run.board}/{run.variant}: the thresholds file sets none")
    bad = [f"{n}: {detail}" for n, ok, detail in found if not ok]
    assert not bad, f"{run.board}/{run.variant} " + "; ".join(bad)


def test_every_window_is_verified_and_none_failed(hil_run: DeviceRun) -> None:
    _check(hil_run, "every window verified")
    assert len(hil_run.device_classes) == hil_run.n > 0


def test_device_output_matches_its_reference(hil_run: DeviceRun) -> None:
    """Quantized: bit-exact with the integer reference. Float: same class, logits within tolerance."""
    vs = hil_run.versus_reference
    if isinstance(vs, BitExact):
        assert vs.all_exact, f"{vs.n - vs.n_exact} of {vs.n} windows differ; first: {vs.first_mismatch}"
    else:
        assert isinstance(vs, FloatAgreement)
        assert vs.within_tolerance, (f"class agreement {vs.class_agreement:.2%}, max |dlogit| {vs.max_abs_err:.2e} > "
                                     f"{vs.tolerance:g}; {vs.first_disagreement}")


def test_device_scores_exactly_what_its_reference_scores(hil_run: DeviceRun) -> None:
    _check(hil_run, "scores as reference")


def test_enough_windows_for_a_verdict(hil_run: DeviceRun) -> None:
    _check(hil_run, "windows")


def test_accuracy_meets_the_acceptance_floor(hil_run: DeviceRun) -> None:
    _check(hil_run, "accuracy")


def test_mcc_meets_the_acceptance_floor(hil_run: DeviceRun) -> None:
    _check(hil_run, "MCC")


def test_every_class_recall_meets_its_floor(hil_run: DeviceRun) -> None:
    _check(hil_run, "recall")


def test_latency_within_budget(hil_run: DeviceRun) -> None:
    _check(hil_run, "latency")


def test_energy_within_budget(hil_run: DeviceRun) -> None:
    _check(hil_run, "energy")


def test_image_fits_the_real_parts_flash_and_ram(hil_run: DeviceRun) -> None:
    if hil_run.flash_bytes is None:
        pytest.skip("image size unknown (no arm-none-eabi-size, or a board target without a local ELF)")
    _check(hil_run, "flash")
    _check(hil_run, "RAM")


def test_link_retries_within_budget(hil_run: DeviceRun) -> None:
    _check(hil_run, "retry rate")


def test_no_fault_at_boot_and_no_reset_during_the_run(hil_run: DeviceRun) -> None:
    _check(hil_run, "no fault at boot")
    _check(hil_run, "no reset")
