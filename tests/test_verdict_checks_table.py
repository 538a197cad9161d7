"""check_acceptance as a table: every check of a run that passes at every boundary, with its exact
detail text, and then each check on its own, a hair either side of its floor or budget. Also the
run record around it: measured(), per_class(), failed_run() and the as_dict/from_dict round trip."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import CATTLE

from harness.config.thresholds import Thresholds
from harness.verdict.evaluate import DeviceRun, board_family, check_acceptance, failed_run
from harness.verdict.metrics import BitExact, FloatAgreement, Latency, Scores

KEY = ("collar", "w8a16")
# 8 windows: grazing 2/2, walking 2/2, resting 2/2, other 1/2 (one predicted grazing)
CONFUSION = ((2, 0, 0, 0), (0, 2, 0, 0), (0, 0, 2, 0), (1, 0, 0, 1))
LABELS = Scores(n=8, accuracy=0.875, macro_f1=0.85, mcc=0.8, confusion=CONFUSION)


def passing_run(**changes: object) -> DeviceRun:
    """A collar w8a16 run that meets every threshold of THRESHOLDS exactly at its boundary."""
    run = DeviceRun(
        board="collar", variant="w8a16", target="qemu", info={"stack_used": 1000, "board": "collar-qemu"}, n=8,
        labels=LABELS, reference_labels=LABELS, versus_reference=BitExact(8, 8, None),
        time_unit="instructions", device_time=Latency(3_600_123.0, 3_700_000.0, 3_800_456.0, 3_650_000.0),
        device_us=Latency(50_123.456789, 60_000.123456, 75_000.0, 52_000.0),
        rtt_ms=Latency(12.34567, 14.0, 15.5, 12.9), energy_uj_mean=300.5, energy_basis="estimate",
        journal="journals/qemu_collar_w8a16.jsonl", resets=[], link={"windows_sent": 8, "retries": 2},
        flash_bytes=40_000, ram_bytes=9_000, device_classes=[0, 0, 1, 1, 2, 2, 0, 3],
        window_index=list(range(8)), wall_s=4.56789, class_names=list(CATTLE.classes),
    )
    return dataclasses.replace(run, **changes)  # type: ignore[arg-type]


THRESHOLDS = Thresholds(source="test", min_windows=8, min_accuracy=0.875, min_mcc=0.8,
                        min_recall={"grazing": 1.0, "other": 0.5}, max_latency_ms=75.0, max_energy_uj=300.5,
                        max_ram_bytes=10_000, max_retry_rate=0.25)

def _flash(n: int) -> str:
    return f"({100 * n / 131072:.1f} % of the TI CC2650F128's 131072 B)"


def _ram(n: int) -> str:
    return f"({100 * n / 20480:.1f} % of the TI CC2650F128's 20480 B)"


PASSING_CHECKS = [
    ("every window verified", True, "8/8 windows verified"),
    ("no fault at boot", True, "no fault record at the first hello"),
    ("bit-exact", True, "8/8 verified windows bit-exact"),
    ("scores as reference", True, "device MCC 0.8000, reference MCC 0.8000 on the same 8 windows"),
    ("windows", True, "8 verified windows meets the minimum 8"),
    ("accuracy", True, "accuracy 0.875 meets the floor 0.875"),
    ("MCC", True, "MCC 0.800 meets the floor 0.8"),
    ("recall grazing", True, "recall grazing 1.000 (2/2) meets the floor 1"),
    ("recall other", True, "recall other 0.500 (1/2) meets the floor 0.5"),
    ("latency", True, "slowest window (instructions at 48 MHz) 75 ms within the budget 75 ms"),
    ("energy", True, "mean energy per inference (estimate) 300.5 uJ within the budget 300.5 uJ"),
    ("flash", True, f"flash 40000 B {_flash(40_000)} within the budget 131072 B"),
    ("RAM", True, f"static 9000 B + stack 1000 B = 10000 B {_ram(10_000)} within the budget 10000 B"),
    ("retry rate", True, "2 resends over 8 windows: 0.25 resends/window within the budget 0.25 resends/window"),
    ("no reset", True, "boot counter unchanged"),
]


def checks_of(run: DeviceRun, t: Thresholds = THRESHOLDS) -> dict[str, tuple[bool, str]]:
    return {name: (ok, detail) for name, ok, detail in check_acceptance(run, {KEY: t})}


def test_a_run_at_every_boundary_passes_every_check_with_its_detail_in_order() -> None:
    run = passing_run()
    checks = check_acceptance(run, {KEY: THRESHOLDS})
    assert checks == PASSING_CHECKS
    assert run.checks == PASSING_CHECKS and run.passed


def test_thresholds_left_unset_are_not_checked_and_the_board_table_is_the_memory_budget() -> None:
    checks = checks_of(passing_run(), Thresholds(source="test", min_windows=8))
    assert sorted(checks) == sorted(["every window verified", "no fault at boot", "bit-exact", "scores as reference",
                                     "windows", "flash", "RAM", "no reset"])
    assert checks["RAM"] == (True, f"static 9000 B + stack 1000 B = 10000 B {_ram(10_000)} within the budget 20480 B")
    assert checks["flash"] == (True, f"flash 40000 B {_flash(40_000)} within the budget 131072 B")


def test_a_flash_budget_in_the_thresholds_wins_over_the_board_table() -> None:
    t = dataclasses.replace(THRESHOLDS, max_flash_bytes=40_000)
    assert checks_of(passing_run(), t)["flash"] == (True, f"flash 40000 B {_flash(40_000)} within the budget 40000 B")
    assert checks_of(passing_run(flash_bytes=40_001), t)["flash"] == (
        False, f"flash 40001 B {_flash(40_001)} over the budget 40000 B")


def test_no_memory_check_without_both_sizes() -> None:
    for changes in ({"flash_bytes": None}, {"ram_bytes": None}, {"flash_bytes": None, "ram_bytes": None}):
        checks = checks_of(passing_run(**changes))
        assert "flash" not in checks and "RAM" not in checks, changes


def test_the_ram_check_adds_the_stack_the_device_reported_and_none_when_it_reported_none() -> None:
    assert checks_of(passing_run(info={"stack_used": 1001}))["RAM"] == (
        False, f"static 9000 B + stack 1001 B = 10001 B {_ram(10_001)} over the budget 10000 B")
    assert checks_of(passing_run(info={}))["RAM"] == (
        True, f"static 9000 B + stack 0 B = 9000 B {_ram(9_000)} within the budget 10000 B")


@pytest.mark.parametrize(("name", "changes", "detail"), [
    ("windows", {"device_classes": [0, 0, 1, 1, 2, 2, 0], "n": 7}, "7 verified windows below the minimum 8"),
    ("accuracy", {"labels": dataclasses.replace(LABELS, accuracy=float(np.nextafter(0.875, 0)))},
     "accuracy 0.875 below the floor 0.875"),
    ("MCC", {"labels": dataclasses.replace(LABELS, mcc=float(np.nextafter(0.8, 0)))}, "MCC 0.800 below the floor 0.8"),
    ("latency", {"device_us": Latency(50_000.0, 60_000.0, 75_000.001, 52_000.0)},
     "slowest window (instructions at 48 MHz) 75 ms over the budget 75 ms"),
    ("energy", {"energy_uj_mean": float(np.nextafter(300.5, 301))},
     "mean energy per inference (estimate) 300.5 uJ over the budget 300.5 uJ"),
    ("RAM", {"ram_bytes": 9_001}, f"static 9001 B + stack 1000 B = 10001 B {_ram(10_001)} over the budget 10000 B"),
    ("retry rate", {"link": {"windows_sent": 8, "retries": 3}},
     "3 resends over 8 windows: 0.375 resends/window over the budget 0.25 resends/window"),
])
def test_each_floor_and_budget_fails_a_hair_beyond_its_boundary(name: str, changes: dict[str, object],
                                                                detail: str) -> None:
    run = passing_run(**changes)
    if "labels" in changes:
        run.reference_labels = run.labels
    checks = checks_of(run)
    assert checks[name] == (False, detail)
    failed = {n for n, (ok, _) in checks.items() if not ok}
    assert failed == {name}
    assert not run.passed


@pytest.mark.parametrize(("floor", "passed", "word"), [(0.5, True, "meets"), (0.5000001, False, "below")])
def test_a_recall_floor_passes_at_equality_and_fails_just_above_it(floor: float, passed: bool, word: str) -> None:
    t = dataclasses.replace(THRESHOLDS, min_recall={"other": floor})
    want = f"recall other 0.500 (1/2) {word} the floor {floor:g}"
    assert checks_of(passing_run(), t)["recall other"] == (passed, want)


def test_a_recall_floor_of_a_class_with_no_verified_window_fails_saying_it_cannot_be_checked() -> None:
    labels = Scores(4, 1.0, 1.0, 1.0, ((2, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 0)))
    run = passing_run(labels=labels, reference_labels=labels)
    t = dataclasses.replace(THRESHOLDS, min_accuracy=None, min_mcc=None,
                            min_recall={"walking": 1.0, "resting": 1.0, "other": 0.5})
    checks = checks_of(run, t)
    assert checks["recall walking"] == (True, "recall walking 1.000 (1/1) meets the floor 1")
    assert checks["recall resting"] == (True, "recall resting 1.000 (1/1) meets the floor 1")
    assert checks["recall other"] == (
        False, "recall other: no other window among the verified windows, so its floor 0.5 cannot be checked")
    assert "recall grazing" not in checks


def test_failed_windows_are_named_five_at_most_then_counted_with_the_journal() -> None:
    fails = [{"index": i, "window_id": 100 + i, "reason": f"timeout {i}", "resends": 1} for i in range(6)]
    run = passing_run(failures=fails[:5], device_classes=[0, 0, 1])
    ok, detail = checks_of(run)["every window verified"]
    assert not ok
    assert detail == ("3/8 windows verified; 5 failed: window 0: timeout 0; window 1: timeout 1; window 2: timeout 2; "
                      "window 3: timeout 3; window 4: timeout 4")
    run = passing_run(failures=fails, device_classes=[0, 0])
    assert checks_of(run)["every window verified"][1] == (
        "2/8 windows verified; 6 failed: window 0: timeout 0; window 1: timeout 1; window 2: timeout 2; "
        "window 3: timeout 3; window 4: timeout 4; ... (1 more in journals/qemu_collar_w8a16.jsonl)")


def test_a_stopped_stream_fails_every_window_verified_with_the_reason() -> None:
    run = passing_run(aborted="5 failed windows in a row")
    assert checks_of(run)["every window verified"] == (
        False, "8/8 windows verified; stream stopped: 5 failed windows in a row")


def test_mismatches_failures_and_a_stop_all_go_into_one_detail() -> None:
    run = passing_run(n_mismatches=1, failures=[{"index": 7, "reason": "device error"}],
                      device_classes=[0] * 7, aborted="interrupted")
    assert checks_of(run)["every window verified"] == (False, (
        "6/8 windows verified; 1 mismatched (an intact reply that differs from the reference); "
        "1 failed: window 7: device error; stream stopped: interrupted"))


def test_a_fault_record_at_boot_fails_with_the_record() -> None:
    run = passing_run(boot_fault="HardFault CFSR 0x00000400 PC 0x00001234")
    assert checks_of(run)["no fault at boot"] == (
        False, "the device reported a fault record at the first hello: HardFault CFSR 0x00000400 PC 0x00001234")


@pytest.mark.parametrize(("vs", "passed", "detail"), [
    (BitExact(8, 7, "window 3: score 1: got 2, want 1"), False,
     "7/8 verified windows bit-exact; first mismatch window 3: score 1: got 2, want 1"),
    (BitExact(0, 0, None), False, "0/0 verified windows bit-exact"),
    (BitExact(1, 1, None), True, "1/1 verified windows bit-exact"),
])
def test_the_bit_exact_check(vs: BitExact, passed: bool, detail: str) -> None:
    assert checks_of(passing_run(versus_reference=vs))["bit-exact"] == (passed, detail)


AGREE = "class agreement 100.00%, max |dlogit|"


@pytest.mark.parametrize(("vs", "passed", "detail"), [
    (FloatAgreement(8, 1.0, 1e-3, 1e-3, None), True, f"{AGREE} 1.00e-03 (tolerance 0.001)"),
    (FloatAgreement(8, 1.0, 1.5e-3, 1e-3, None), False, f"{AGREE} 1.50e-03 (tolerance 0.001)"),
    (FloatAgreement(8, 0.875, 1e-4, 1e-3, "window 5: device class 1"), False,
     "class agreement 87.50%, max |dlogit| 1.00e-04 (tolerance 0.001); window 5: device class 1"),
    (FloatAgreement(0, 1.0, 0.0, 1e-3, None), False, f"{AGREE} 0.00e+00 (tolerance 0.001)"),
    (FloatAgreement(1, 1.0, 0.0, 1e-3, None), True, f"{AGREE} 0.00e+00 (tolerance 0.001)"),
])
def test_the_float_agreement_check(vs: FloatAgreement, passed: bool, detail: str) -> None:
    run = passing_run(variant="float32", versus_reference=vs)
    got = {n: (ok, d) for n, ok, d in check_acceptance(run, {("collar", "float32"): THRESHOLDS})}
    assert got["float agreement"] == (passed, detail) and "bit-exact" not in got


def test_a_device_that_scores_otherwise_than_its_reference_fails() -> None:
    run = passing_run(reference_labels=dataclasses.replace(LABELS, mcc=0.7))
    assert checks_of(run)["scores as reference"] == (
        False, "device MCC 0.8000, reference MCC 0.7000 on the same 8 windows")


def test_resets_fail_and_are_listed() -> None:
    run = passing_run(resets=["reset after window 3", "reset after window 6"])
    assert checks_of(run)["no reset"] == (False, "reset after window 3; reset after window 6")


def test_the_retry_rate_is_over_the_windows_sent_or_else_the_windows_asked_for_and_never_over_zero() -> None:
    assert checks_of(passing_run(link={"retries": 2}))["retry rate"] == (
        True, "2 resends over 8 windows: 0.25 resends/window within the budget 0.25 resends/window")
    assert checks_of(passing_run(link={}))["retry rate"] == (
        True, "0 resends over 8 windows: 0 resends/window within the budget 0.25 resends/window")
    t = dataclasses.replace(THRESHOLDS, max_retry_rate=1.0)
    assert checks_of(passing_run(link={"windows_sent": 0, "retries": 1}), t)["retry rate"] == (
        True, "1 resends over 1 windows: 1 resends/window within the budget 1 resends/window")


def test_no_thresholds_for_the_case_is_one_failed_check_naming_it() -> None:
    run = passing_run()
    assert check_acceptance(run, {("eartag", "w8a16"): THRESHOLDS}) == [
        ("thresholds", False, "no acceptance thresholds for collar/w8a16")]
    assert not run.passed


def test_a_case_that_never_ran_keeps_its_one_check_and_a_rerun_of_the_checks_uses_the_new_thresholds() -> None:
    never = failed_run("collar", "w8a16", "qemu", 8, "QEMU did not start", CATTLE.classes)
    assert check_acceptance(never, {KEY: THRESHOLDS}) == [("run", False, "QEMU did not start")]
    run = passing_run()
    assert check_acceptance(run, {KEY: THRESHOLDS}) == PASSING_CHECKS
    stricter = dataclasses.replace(THRESHOLDS, min_windows=9)
    assert checks_of(run, stricter)["windows"] == (False, "8 verified windows below the minimum 9")


def test_failed_run_is_a_failing_empty_case_with_its_reason() -> None:
    run = failed_run("eartag", "w16a16", "renode", 12, "no port", CATTLE.classes)
    zero = Latency(0.0, 0.0, 0.0, 0.0)
    empty = Scores(0, 0.0, 0.0, 0.0, ((0, 0, 0, 0),) * 4)
    assert (run.board, run.variant, run.target, run.n, run.info) == ("eartag", "w16a16", "renode", 12, {})
    assert run.labels == empty and run.reference_labels == empty
    assert run.versus_reference == BitExact(0, 0, None)
    assert (run.device_time, run.device_us, run.rtt_ms) == (zero, zero, zero)
    assert (run.time_unit, run.energy_uj_mean, run.energy_basis, run.journal) == ("-", 0.0, "-", "")
    assert (run.resets, run.link, run.aborted) == ([], {}, "no port")
    assert run.checks == [("run", False, "no port")] and not run.passed
    assert (run.n_replied, run.n_verified) == (0, 0)


def test_a_run_with_no_checks_has_not_passed() -> None:
    assert not passing_run().passed


def test_measured_is_every_figure_flat_with_its_unit_rounded() -> None:
    run = passing_run(n_mismatches=1, failures=[{"index": 9, "reason": "x"}], resets=["r"])
    assert run.measured() == {
        "windows": 8, "windows_verified": 7, "windows_mismatched": 1, "windows_failed": 1,
        "accuracy": 0.875, "macro_f1": 0.85, "mcc": 0.8, "device_time_unit": "instructions",
        "device_time_p50": 3_600_123.0, "device_time_max": 3_800_456.0,
        "latency_p50_ms": 50.1235, "latency_p95_ms": 60.0001, "latency_max_ms": 75.0, "rtt_p50_ms": 12.346,
        "energy_uj": 300.5, "energy_basis": "estimate", "flash_bytes": 40_000, "ram_bytes": 9_000,
        "stack_bytes": 1000, "resends": 2, "resets": 1, "device_run_wall_s": 4.568,
        "recall_grazing": 1.0, "recall_walking": 1.0, "recall_resting": 1.0, "recall_other": 0.5,
    }


def test_measured_rounds_scores_to_six_places_and_a_class_without_support_has_no_recall() -> None:
    labels = Scores(3, 2 / 3, 0.1234567891, -0.1234567891, ((1, 1, 0, 0), (0, 1, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0)))
    m = passing_run(labels=labels, link={}, info={}).measured()
    assert (m["accuracy"], m["macro_f1"], m["mcc"]) == (0.666667, 0.123457, -0.123457)
    assert (m["recall_grazing"], m["recall_walking"], m["recall_resting"]) == (0.5, 1.0, None)
    assert (m["resends"], m["stack_bytes"]) == (0, None)


def test_per_class_gives_support_recall_and_precision_and_none_where_undefined() -> None:
    labels = Scores(4, 0.5, 0.5, 0.3, ((1, 1, 0, 0), (0, 1, 0, 0), (1, 0, 0, 0), (0, 0, 0, 0)))
    assert passing_run(labels=labels).per_class() == [
        {"class": "grazing", "support": 2, "recall": 0.5, "precision": 0.5},
        {"class": "walking", "support": 1, "recall": 1.0, "precision": 0.5},
        {"class": "resting", "support": 1, "recall": 0.0, "precision": None},
        {"class": "other", "support": 0, "recall": None, "precision": None},
    ]


@pytest.mark.parametrize("vs", [BitExact(8, 7, "window 3: score 1: got 2, want 1"),
                                FloatAgreement(8, 0.875, 2e-3, 1e-3, "window 5")])
def test_a_run_read_back_from_its_dict_is_the_same_run(vs: BitExact | FloatAgreement) -> None:
    run = passing_run(versus_reference=vs, n_mismatches=1, failures=[{"index": 1, "reason": "timeout"}],
                      resets=["reset after window 2"], boot_fault="HardFault", image="fw.elf", image_sha256="ab")
    check_acceptance(run, {KEY: THRESHOLDS, ("collar", "float32"): THRESHOLDS})
    d = json.loads(json.dumps(run.as_dict()))  # as report.json holds it
    assert d["versus_reference"]["kind"] == ("bit_exact" if isinstance(vs, BitExact) else "float")  # type: ignore[index]
    assert (d["passed"], d["n_verified"], d["n_replied"]) == (False, 7, 8)
    assert d["labels"]["confusion"] == [list(r) for r in CONFUSION]  # type: ignore[index]
    back = DeviceRun.from_dict(d)
    assert back == run
    assert isinstance(back.labels.confusion, tuple) and isinstance(back.labels.confusion[0], tuple)
    assert isinstance(back.reference_labels.confusion[3], tuple)
    assert all(isinstance(c, tuple) for c in back.checks)


def test_a_run_read_back_ignores_keys_it_does_not_know_and_old_reports_without_checks() -> None:
    run = passing_run()
    d = json.loads(json.dumps(run.as_dict()))
    d["from_a_newer_harness"] = 1
    del d["checks"]
    back = DeviceRun.from_dict(d)
    assert back == run and back.checks == []


def test_board_family_is_the_name_without_its_qemu_suffix() -> None:
    assert board_family("collar-qemu") == "collar"
    assert board_family("acme-tag-m4f-qemu") == "acme-tag-m4f"
    assert board_family("eartag") == "eartag"
    assert board_family("qemu-tag") == "qemu-tag"


def test_the_summary_of_cases_that_never_ran_says_nothing_was_measured_not_an_empty_line() -> None:
    from harness.report.summary import summary_table

    text = summary_table([failed_run("eartag", "w8a16", "renode", 406, "target unavailable: renode not found",
                                     CATTLE.classes)])
    assert "device time, energy: none measured (no case ran a window)" in text
    assert "device time: ," not in text and "\nenergy: \n" not in text + "\n"
    assert "FAIL eartag/w8a16 run: target unavailable: renode not found" in text


def test_the_report_names_an_unflashed_image_counts_resend_reasons_and_says_when_the_baseline_ran_another_model(
        ) -> None:
    from dataclasses import replace

    from harness.report.summary import _counts_text, _image_text, baseline_text

    run = passing_run()
    assert _image_text(replace(run, image=None)) == "image: the firmware already on the board (not flashed by this run)"
    assert _image_text(replace(run, image="/x/fw.elf", image_sha256="ab")) == "image /x/fw.elf (sha256 ab)"
    assert _counts_text({}) == "none" and _counts_text(None) == "none"
    assert _counts_text({"crc": 1, "timeout": 3}) == "timeout 3, crc 1"
    same = baseline_text([run], {(run.board, run.variant): run})
    assert "vs baseline: accuracy +0" in same and "another model" not in same
    other = replace(run, info={**run.info, "model_hash": "00" * 8})
    text = baseline_text([run], {(run.board, run.variant): other})
    assert f"the baseline ran another model (hash {'00' * 8}, this run {run.info.get('model_hash')})" in text


def test_a_check_is_shown_once_with_its_name_and_budgets_in_whole_bytes() -> None:
    from harness.report.summary import check_text
    from harness.verdict.evaluate import _budget

    assert check_text("recall walking", "recall walking 0.520 (13/25) below the floor 0.6") == \
        "recall walking 0.520 (13/25) below the floor 0.6"
    assert check_text("run", "target unavailable: renode not found") == "run: target unavailable: renode not found"
    assert _budget("flash", 40_000, 1_048_576, "B") == ("flash", True, "flash 40000 B within the budget 1048576 B")
    assert _budget("flash", 40_000, 1_048_576, "B", part=("nRF52840", 1_048_576)) == (
        "flash", True, "flash 40000 B (3.8 % of the nRF52840's 1048576 B) within the budget 1048576 B")
    assert _budget("latency", 75.25, 75.0, "ms") == ("latency", False, "latency 75.25 ms over the budget 75 ms")
