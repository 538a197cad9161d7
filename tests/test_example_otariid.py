"""The second real dataset end to end, from a copy of examples/otariid/ exactly as a team would use
it: its descriptor (5 classes, 25 Hz, 64-sample windows), its loader plug-in, its fixtures of two
held-out animals, its trained and quantized student, its thresholds. `hil export` writes the C
sources into the folder the descriptor names (paths.generated), `hil run` builds our firmware for
both boards from them and runs every board x variant on QEMU; then the float firmware against an
ONNX export through onnxruntime and the quantized one against an expected-outputs file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, needs_qemu

EXAMPLE = REPO / "examples" / "otariid"
CASES = [(b, v) for b in ("collar", "eartag") for v in ("float32", "w8a16")]


def _hil(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example folder outside the checkout, its model exported into its gen/."""
    team = tmp_path_factory.mktemp("team") / "otariid"
    shutil.copytree(EXAMPLE, team, ignore=shutil.ignore_patterns("gen", "__pycache__"))
    r = _hil("export", "--descriptor", "otariid.toml", cwd=team)
    assert r.returncode == 0, r.stderr
    written = {p.name for p in (team / "gen").iterdir()}
    assert {"model_float.c", "model_w8a16.c", "model_dims.h", "models.json"} <= written
    return team


def _run(team: Path, report: Path, descriptor: str, board: str, variant: str) -> dict[str, object]:
    r = _hil("run", "--descriptor", descriptor, "--board", board, "--variant", variant, "--thresholds",
             "thresholds.json", "--quiet", "--report", str(report), cwd=team)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads((report / "report.json").read_text())["runs"][0]  # type: ignore[no-any-return]


@needs_qemu
@pytest.mark.parametrize(("board", "variant"), CASES)
def test_the_otariid_model_passes_on_both_boards_from_its_own_folder(
        board: str, variant: str, team: Path, tmp_path: Path) -> None:
    run = _run(team, tmp_path / "report", "otariid.toml", board, variant)
    n = run["n"]
    assert n == 368 and run["n_verified"] == n and run["passed"]
    assert run["info"]["window_len"] == 64 and run["info"]["n_classes"] == 5  # type: ignore[index]
    assert run["class_names"] == ["travelling", "resting", "foraging", "grooming", "other"]
    if variant == "w8a16":
        assert run["versus_reference"]["n_exact"] == n  # type: ignore[index]
    assert np.array(run["labels"]["confusion"]).shape == (5, 5)  # type: ignore[index]
    assert (team / "gen" / "build" / "fw" / f"{board}-qemu" / variant / "fw.elf").is_file()


def _descriptor_with(team: Path, old: str, new: str) -> str:
    """A copy of the team's descriptor with one variant's reference replaced."""
    text = (team / "otariid.toml").read_text()
    assert old in text
    name = f"otariid_{abs(hash(new)) % 10**8}.toml"
    (team / name).write_text(text.replace(old, new))
    return name


@needs_qemu
def test_the_quantized_firmware_against_an_expected_outputs_file_from_the_example_script(
        team: Path, tmp_path: Path) -> None:
    exp = tmp_path / "expected.npz"
    r = subprocess.run([sys.executable, "write_expected.py", str(exp)], capture_output=True, text=True, cwd=team)
    assert r.returncode == 0, r.stderr
    d = _descriptor_with(team, 'reference = "dq"\nfile = "student_w8a16"', f'reference = "expected"\nfile = "{exp}"')
    run = _run(team, tmp_path / "report", d, "eartag", "w8a16")
    assert run["reference"] == f"expected {exp}"
    assert run["versus_reference"]["n_exact"] == run["n"] == 368  # type: ignore[index]


@needs_qemu
def test_the_float_firmware_against_an_onnx_export_of_the_float_student_through_onnxruntime(
        team: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'cattle-hil[onnx]')")
    onnx_file = tmp_path / "student.onnx"
    r = _hil("onnx", "--student", "models/student", "--out", str(onnx_file), cwd=team)
    assert r.returncode == 0, r.stderr
    d = _descriptor_with(team, 'reference = "torch"\nfile = "student"', f'reference = "onnx"\nfile = "{onnx_file}"')
    run = _run(team, tmp_path / "report", d, "eartag", "float32")
    assert run["reference"] == f"onnx {onnx_file}" and run["n_verified"] == run["n"] == 368
    vs = run["versus_reference"]
    assert vs["class_agreement"] == 1.0 and vs["max_abs_err"] <= 1e-3  # type: ignore[index]


def test_a_descriptor_whose_generated_folder_was_never_exported_says_so(tmp_path: Path) -> None:
    team = tmp_path / "otariid"
    shutil.copytree(EXAMPLE, team, ignore=shutil.ignore_patterns("gen", "__pycache__"))
    r = _hil("run", "--descriptor", "otariid.toml", "--board", "eartag", "--variant", "w8a16", "--quiet",
             "--report", str(tmp_path / "report"), cwd=team)
    assert r.returncode != 0
    assert f"{team / 'gen'}: no models.json" in r.stdout + r.stderr and "hil export" in r.stdout + r.stderr
