"""The acceptance suite: run unchanged against QEMU in CI (--hil-target qemu, the default) and
against an attached board before release (--hil-target board --hil-port ... --hil-probe ...).

Each test reads the one device run of its (board, variant) case; see harness.pytest_plugin.
"""

from __future__ import annotations

from harness.evaluate import DeviceRun
from harness.metrics import BitExact, FloatAgreement


def _check(run: DeviceRun, name: str) -> None:
    found = [(ok, detail) for n, ok, detail in run.checks if n == name]
    assert found, f"no {name!r} check for {run.board}/{run.variant}"
    ok, detail = found[0]
    assert ok, f"{run.board}/{run.variant} {name}: {detail}"


def test_every_window_gets_exactly_one_result(hil_run: DeviceRun) -> None:
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


def test_accuracy_meets_the_acceptance_floor(hil_run: DeviceRun) -> None:
    _check(hil_run, "accuracy")


def test_latency_within_budget(hil_run: DeviceRun) -> None:
    _check(hil_run, "latency")


def test_energy_within_budget(hil_run: DeviceRun) -> None:
    _check(hil_run, "energy")


def test_image_fits_the_real_parts_flash_and_ram(hil_run: DeviceRun) -> None:
    if hil_run.flash_bytes is None:
        import pytest

        pytest.skip("image size unknown (no arm-none-eabi-size, or a board target without a local ELF)")
    _check(hil_run, "flash")
    _check(hil_run, "RAM")


def test_device_did_not_reset_during_the_run(hil_run: DeviceRun) -> None:
    _check(hil_run, "no reset")
    assert hil_run.link["retries"] == 0 and hil_run.link["bad_frames"] == 0, hil_run.link
