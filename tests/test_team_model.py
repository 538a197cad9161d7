"""A team's own model on the real firmware under QEMU: references from an expected-outputs file,
and a device whose hello describes another case refused before any window is sent."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CATTLE, FIXTURES, needs_qemu
from test_cli import _fixture_copy, _hil

from harness.config.descriptor import PACKAGED_DESCRIPTOR
from harness.data.fixtures import load_fixtures
from harness.reference import load_reference

LIMIT = 24


def _descriptor(tmp: Path, *edits: tuple[str, str]) -> Path:
    text = PACKAGED_DESCRIPTOR.read_text().replace('"packaged:', f'"{FIXTURES}/')
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    p = tmp / "team.toml"
    p.write_text(text)
    return p


def _expected(tmp: Path, n_extra_classes: int = 0, bump: tuple[str, int] | None = None,
              model_hash: str | None = None) -> Path:
    """The w8a16 DQ reference's outputs for every fixture window, written as a team's toolchain
    would write them; ``bump``: (bout, start) of a window whose first score is raised by 1."""
    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    ws = fx.windows
    ref = load_reference(CATTLE, "w8a16", fx.calibrated_x())
    scores = np.concatenate([ref.logits, np.full((len(ws), n_extra_classes), -(1 << 20), np.int64)], axis=1)
    if bump is not None:
        row = int(np.flatnonzero((ws.bout == bump[0]) & (ws.start == bump[1]))[0])
        scores[row, 0] += 1
    p = tmp / "expected_w8a16.npz"
    np.savez(p, bout=ws.bout, start=ws.start, classes=ref.classes, scores=scores, out_frac=np.int64(ref.out_frac),
             model_hash=np.str_(model_hash or ref.model_hash.hex()))
    return p


def _run(tmp: Path, descriptor: Path, capsys: pytest.CaptureFixture[str], budgets_only: Path,
         *extra: str) -> tuple[int, str, dict]:
    report = tmp / "report"
    code, err = _hil(["run", "--board", "eartag", "--variant", "w8a16", "--limit", str(LIMIT), "--quiet",
                      "--descriptor", str(descriptor), "--thresholds", str(budgets_only), "--report", str(report),
                      *extra], capsys)
    return code, err, json.loads((report / "report.json").read_text())


def _first_sampled_window() -> tuple[str, int]:
    ws = load_fixtures(FIXTURES / "recordings", CATTLE).sample(LIMIT).windows
    return str(ws.bout[0]), int(ws.start[0])


@needs_qemu
def test_the_quantized_firmware_against_an_expected_outputs_file_is_bit_exact_and_one_changed_score_is_a_mismatch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], budgets_only: Path) -> None:
    exp = _expected(tmp_path)
    d = _descriptor(tmp_path, ('reference = "dq"\nfile = "student_w8a16"', f'reference = "expected"\nfile = "{exp}"'))
    code, err, rep = _run(tmp_path, d, capsys, budgets_only)
    run = rep["runs"][0]
    assert code == 0, err
    assert run["reference"] == f"expected {exp}"
    assert run["n_verified"] == LIMIT and run["versus_reference"] == {"n": LIMIT, "n_exact": LIMIT,
                                                                     "first_mismatch": None, "kind": "bit_exact"}
    bout, start = _first_sampled_window()
    (tmp_path / "report").rename(tmp_path / "report_clean")
    _expected(tmp_path, bump=(bout, start))
    code, err, rep = _run(tmp_path, d, capsys, budgets_only)
    run = rep["runs"][0]
    assert code == 1
    assert run["n_mismatches"] == 1 and run["n_verified"] == LIMIT - 1 and run["mismatches"][0]["window"] == 0
    got, want = run["mismatches"][0]["got"], run["mismatches"][0]["want"]  # integer scores stay integers
    assert all(type(v) is int for v in got + want) and sum(g != w for g, w in zip(got, want, strict=True)) == 1
    failed = {name: detail for name, ok, detail in run["checks"] if not ok}
    assert set(failed) == {"every window verified", "bit-exact"}, failed
    assert "1 mismatched (an intact reply that differs from the reference)" in failed["every window verified"]
    assert failed["bit-exact"].startswith(f"{LIMIT - 1}/{LIMIT} verified windows bit-exact; first mismatch window 0")


@needs_qemu
@pytest.mark.parametrize("case", ["window", "classes", "model hash"])
def test_a_device_whose_hello_describes_another_case_is_refused_before_any_window_naming_both_sides(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], budgets_only: Path) -> None:
    def cut(a: dict[str, np.ndarray]) -> None:
        a["x"] = np.ascontiguousarray(a["x"][:, :40])

    if case == "window":
        fx = _fixture_copy(tmp_path, edit_meta=lambda m: m.update(window_samples=40), edit_npz=cut)
        d = _descriptor(tmp_path, ("window = 50", "window = 40"), ("hop = 25", "hop = 20"))
        want = "window 50 (device) vs 40 (model.window of team.toml)"
    elif case == "classes":
        names = [*CATTLE.classes, "ruminating"]
        fx = _fixture_copy(tmp_path, edit_meta=lambda m: m.update(label_map={str(i): n for i, n in enumerate(names)}))
        exp = _expected(tmp_path, n_extra_classes=1)
        d = _descriptor(tmp_path, ('"other"]', '"other", "ruminating"]'),
                        ('reference = "dq"\nfile = "student_w8a16"', f'reference = "expected"\nfile = "{exp}"'))
        want = "classes 4 (device) vs 5 (model.classes of team.toml)"
    else:
        fx = _fixture_copy(tmp_path)
        exp = _expected(tmp_path, model_hash="00" * 8)
        d = _descriptor(tmp_path,
                        ('reference = "dq"\nfile = "student_w8a16"', f'reference = "expected"\nfile = "{exp}"'))
        want = f"(device) vs 0000000000000000 (the reference, expected {exp})"
    shutil.copy(FIXTURES / "recordings" / "bouts.npz", fx / "bouts.npz")
    t0 = time.monotonic()
    code, err, rep = _run(tmp_path, d, capsys, budgets_only, "--fixtures", str(fx))
    took = time.monotonic() - t0
    run = rep["runs"][0]
    assert code == 1
    assert want in run["aborted"] and "the device's hello does not match the case w8a16" in run["aborted"]
    assert "hil: eartag/w8a16: CaseMismatch: qemu:eartag/w8a16: the device's hello" in err
    assert run["n_replied"] == 0 and run["link"] == {}  # refused before any window went out
    assert took < 60, took


@needs_qemu
def test_a_five_class_model_exported_to_a_team_folder_runs_on_both_boards_with_its_own_firmware(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], budgets_only: Path) -> None:
    """Nothing of the package edited: a 5-class student (seeded weights: a cost of nothing to train,
    the verdict is about the device matching its reference) saved, quantized and exported into a
    team folder, images built from that folder with MODEL_GEN, and run with a descriptor that says
    5 classes: every window verified, bit-exact for w8a16, the confusion matrix 5 x 5."""
    import subprocess

    import torch

    from harness.quant.calibrate import quantize_student
    from harness.quant.model_io import save_quant
    from harness.training.models import GruStudent
    from harness.training.train import save_model

    names = [*CATTLE.classes, "ruminating"]
    fx_src = load_fixtures(FIXTURES / "recordings", CATTLE)
    x = fx_src.calibrated_x()
    torch.manual_seed(3)
    student = GruStudent(CATTLE.window, 16, len(names))
    student.norm.fit(torch.from_numpy(x.astype(np.float32)))
    models, gen, build = tmp_path / "models", tmp_path / "gen", tmp_path / "build"
    save_model(student, models / "student", {"class_names": names})
    save_quant(quantize_student(student, x[::3], "w8a16"), models / "student_w8a16", {"calibration": "test"})
    assert _hil(["export", "--models", str(models), "--out", str(gen)], capsys)[0] == 0
    assert "#define NN_CLASSES 5" in (gen / "model_dims.h").read_text()
    fw = FIXTURES.parent / "device_fw"
    images = {("collar", "float32"): build / "fw/collar-qemu/float32/fw.elf",
              ("eartag", "w8a16"): build / "fw/eartag-qemu/w8a16/fw.elf"}
    r = subprocess.run(["make", "-s", "-C", str(fw), f"MODEL_GEN={gen}", f"BUILD={build}",
                        *map(str, images.values())], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    fx = _fixture_copy(tmp_path, edit_meta=lambda m: m.update(label_map={str(i): n for i, n in enumerate(names)}))
    shutil.copy(FIXTURES / "recordings" / "bouts.npz", fx / "bouts.npz")
    d = _descriptor(tmp_path, ('"other"]', '"other", "ruminating"]'), (f'"{FIXTURES}/models"', f'"{models}"'),
                    (f'"{FIXTURES}/recordings"', f'"{fx}"'))
    for (board, variant), elf in images.items():
        report = tmp_path / f"report_{board}"
        code, err = _hil(["run", "--board", board, "--variant", variant, "--image", str(elf), "--limit", str(LIMIT),
                          "--quiet", "--descriptor", str(d), "--thresholds", str(budgets_only), "--report",
                          str(report)], capsys)
        run = json.loads((report / "report.json").read_text())["runs"][0]
        assert code == 0, err
        assert run["info"]["n_classes"] == 5 and run["class_names"] == names
        assert run["n_verified"] == LIMIT and len(run["labels"]["confusion"]) == 5
        if variant == "w8a16":
            assert run["versus_reference"]["n_exact"] == LIMIT
        assert run["info"]["model_hash"] == json.loads((gen / "models.json").read_text())[variant]["model_hash"]


@needs_qemu
def test_a_third_board_defined_only_in_a_team_boards_file_runs_the_cattle_model_on_qemu(
        tmp_path: Path, budgets_only: Path) -> None:
    """A Cortex-M4F tag at 32 MHz on QEMU's mps2-an386, with 512 KB / 128 KB: our firmware built for
    it from the boards file alone (the ear tag's board support, its own name, flags and memory
    map); its latency is converted at its own clock."""
    import subprocess
    import sys

    from harness.config.boards import BOARDS_FILE

    body = "[eartag]" + BOARDS_FILE.read_text().split("\n[eartag]", 1)[1]
    team = (body.replace("[eartag", "[acme-tag").replace('part = "Nordic nRF52840"', 'part = "Acme M4F tag"')
            .replace("clock_hz = 64_000_000", "clock_hz = 32_000_000")
            .replace("flash_bytes = 1048576", "flash_bytes = 524288")
            .replace("ram_bytes = 262144", "ram_bytes = 131072"))
    boards = tmp_path / "boards.toml"
    boards.write_text(team)
    report = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--boards", str(boards), "--variant", "w8a16",
                        "--limit", str(LIMIT), "--quiet", "--thresholds", str(_acme_thresholds(tmp_path, budgets_only)),
                        "--report", str(report)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    run = json.loads((report / "report.json").read_text())["runs"][0]
    assert run["board"] == "acme-tag" and run["info"]["board"] == "acme-tag-qemu"
    assert run["n_verified"] == LIMIT and run["versus_reference"]["n_exact"] == LIMIT
    assert "acme-tag" in r.stdout.splitlines()[2]  # the summary table's first row
    instr = np.array(run["cycles"]) / 3.2  # 25 MHz SysTick, 2^7 ns per instruction
    assert np.allclose(np.array(run["device_ms"]), instr / 32e3, rtol=1e-3)  # at the tag's 32 MHz
    assert run["ram_bytes"] < 131072 and run["flash_bytes"] < 524288


def _acme_thresholds(tmp: Path, budgets_only: Path) -> Path:
    raw = json.loads(budgets_only.read_text())
    raw["thresholds"]["acme-tag"] = raw["thresholds"]["eartag"]
    out = tmp / "acme_thresholds.json"
    out.write_text(json.dumps(raw))
    return out
