"""The second real dataset end to end, from examples/otariid/ exactly as a team would use it: its
descriptor (5 classes, 25 Hz, 64-sample windows), its loader plug-in, its fixtures of two held-out
animals, its trained and quantized student, its thresholds; C sources exported into a folder of its
own, images of both boards built from it, and `hil run` of every board x variant on QEMU."""

from __future__ import annotations

import json
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
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """The example's model exported and built, outside the checkout."""
    team = tmp_path_factory.mktemp("team")
    r = _hil("export", "--models", str(EXAMPLE / "models"), "--out", str(team / "gen"), cwd=team)
    assert r.returncode == 0, r.stderr
    elfs = {(b, v): team / "build" / "fw" / f"{b}-qemu" / v / "fw.elf" for b, v in CASES}
    r2 = subprocess.run(["make", "-s", "-C", str(REPO / "device_fw"), f"MODEL_GEN={team / 'gen'}",
                         f"BUILD={team / 'build'}", *map(str, elfs.values())], capture_output=True, text=True)
    assert r2.returncode == 0, r2.stderr[-3000:]
    return elfs


@needs_qemu
@pytest.mark.parametrize(("board", "variant"), CASES)
def test_the_otariid_model_passes_on_both_boards_from_its_own_folder(
        board: str, variant: str, images: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    r = _hil("run", "--descriptor", str(EXAMPLE / "otariid.toml"), "--board", board, "--variant", variant,
             "--image", str(images[(board, variant)]), "--thresholds", str(EXAMPLE / "thresholds.json"),
             "--quiet", "--report", str(tmp_path / "report"), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    run = json.loads((tmp_path / "report" / "report.json").read_text())["runs"][0]
    n = run["n"]
    assert n == 368 and run["n_verified"] == n and run["passed"]
    assert run["info"]["window_len"] == 64 and run["info"]["n_classes"] == 5
    assert run["class_names"] == ["travelling", "resting", "foraging", "grooming", "other"]
    if variant == "w8a16":
        assert run["versus_reference"]["n_exact"] == n
    assert np.array(run["labels"]["confusion"]).shape == (5, 5)


@needs_qemu
def test_the_quantized_firmware_against_an_expected_outputs_file_from_the_example_script(
        images: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    exp = tmp_path / "expected.npz"
    r = subprocess.run([sys.executable, str(EXAMPLE / "write_expected.py"), str(exp)], capture_output=True,
                       text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = _descriptor_with(tmp_path, 'reference = "dq"\nfile = "student_w8a16"',
                         f'reference = "expected"\nfile = "{exp}"')
    r = _hil("run", "--descriptor", str(d), "--board", "eartag", "--variant", "w8a16", "--image",
             str(images[("eartag", "w8a16")]), "--thresholds", str(EXAMPLE / "thresholds.json"), "--quiet",
             "--report", str(tmp_path / "report"), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    run = json.loads((tmp_path / "report" / "report.json").read_text())["runs"][0]
    assert run["reference"] == f"expected {exp}" and run["versus_reference"]["n_exact"] == run["n"] == 368


def _descriptor_with(tmp_path: Path, old: str, new: str) -> Path:
    """The example's descriptor with one variant's reference replaced, its folders absolute."""
    text = (EXAMPLE / "otariid.toml").read_text()
    assert old in text
    d = tmp_path / "otariid.toml"
    d.write_text(text.replace(old, new)
                 .replace('models = "models"', f'models = "{EXAMPLE / "models"}"')
                 .replace('fixtures = "fixtures"', f'fixtures = "{EXAMPLE / "fixtures"}"'))
    return d


@needs_qemu
def test_the_float_firmware_against_an_onnx_export_of_the_float_student_through_onnxruntime(
        images: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    onnx_file = tmp_path / "student.onnx"
    r = _hil("onnx", "--student", str(EXAMPLE / "models" / "student"), "--out", str(onnx_file), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = _descriptor_with(tmp_path, 'reference = "torch"\nfile = "student"',
                         f'reference = "onnx"\nfile = "{onnx_file}"')
    r = _hil("run", "--descriptor", str(d), "--board", "eartag", "--variant", "float32", "--image",
             str(images[("eartag", "float32")]), "--thresholds", str(EXAMPLE / "thresholds.json"), "--quiet",
             "--report", str(tmp_path / "report"), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    run = json.loads((tmp_path / "report" / "report.json").read_text())["runs"][0]
    assert run["reference"] == f"onnx {onnx_file}" and run["n_verified"] == run["n"] == 368
    vs = run["versus_reference"]
    assert vs["class_agreement"] == 1.0 and vs["max_abs_err"] <= 1e-3
