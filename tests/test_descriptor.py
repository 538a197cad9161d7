"""The model descriptor, the boards file and the expected-outputs reference: what a team brings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import CATTLE, FIXTURES

from harness.config.boards import BOARDS, BOARDS_FILE, PACKAGED_BOARDS, BoardsError, load_boards, render_board_files
from harness.config.descriptor import PACKAGED_DESCRIPTOR, DescriptorError, load_descriptor
from harness.data.fixtures import load_fixtures
from harness.reference import ReferenceError, load_expected, load_reference


def test_the_packaged_descriptor_states_what_the_cattle_loader_and_the_models_are() -> None:
    from harness.data.recordings import CLASS_NAMES, COUNTS_PER_G, FULL_SCALE_G, SAMPLE_RATE_HZ
    from harness.data.windows import DEFAULT_HOP, DEFAULT_WINDOW
    from harness.training.train import load_model

    assert CATTLE.source == PACKAGED_DESCRIPTOR
    assert CATTLE.classes == CLASS_NAMES and CATTLE.sample_rate_hz == SAMPLE_RATE_HZ
    assert (CATTLE.window, CATTLE.hop) == (DEFAULT_WINDOW, DEFAULT_HOP)
    assert (CATTLE.full_scale_g, CATTLE.counts_per_g) == (FULL_SCALE_G, COUNTS_PER_G)
    assert CATTLE.models_dir == (FIXTURES / "models").resolve()
    assert CATTLE.fixtures_dir == (FIXTURES / "recordings").resolve()
    student = load_model(CATTLE.reference_path("float32"))
    assert (student.window, student.n_classes) == (CATTLE.window, CATTLE.n_classes)  # type: ignore[union-attr]
    assert CATTLE.variant("float32").tolerance == pytest.approx(1e-3)
    assert {v: s.reference for v, s in CATTLE.variants.items()} == {
        "float32": "torch", "w8a16": "dq", "w16a16": "dq", "w8a8": "dq"}


def test_a_descriptor_without_a_variant_names_itself_and_what_it_has(tmp_path: Path) -> None:
    with pytest.raises(DescriptorError, match=r"cattle\.toml: variants: no variant 'w4a4' \(it has float32, w8a16"):
        CATTLE.variant("w4a4")
    moved = CATTLE.with_models_dir(tmp_path)
    assert moved.reference_path("w8a16") == tmp_path / "student_w8a16"


@pytest.mark.parametrize(("edit", "message"), [
    (("[sensor]", "[sensr]"), "sensr: unknown table"),
    (("window = 50", "window = 0"), "model.window: 0 outside 1..65535"),
    (("window = 50", "window = 50.5"), "model.window: must be a whole number, got 50.5"),
    (("sample_rate_hz = 10.0", "sample_rate_hz = -1"), "model.sample_rate_hz: must be a number above 0"),
    (('calibration = "rotation-z"', 'calibration = "gyro"'), "input.calibration: 'gyro' unknown"),
    (("channels = 3", "channels = 2"), "rotation-z needs 3 channels"),
    (('classes = ["grazing", "walking", "resting", "other"]', 'classes = ["grazing"]'),
     "model.classes: 1 classes; a classifier has 2..8"),
    (("[variants.w8a16]\nreference = \"dq\"", "[variants.w8a16]\nreference = \"torch\""),
     "variants.w8a16.reference: torch is a float reference"),
    (('[variants.w8a16]\nreference = "dq"\nfile = "student_w8a16"',
      '[variants.w8a16]\nreference = "dq"\nfile = "student_w8a16"\ntolerance = 0.1'),
     "variants.w8a16.tolerance: only a float variant has a tolerance"),
    (("[variants.w8a8]", "[variants.w4a4]"), "variants.w4a4: unknown variant"),
    (("[variants.w8a16]\nreference = \"dq\"", "[variants.w8a16]\nreference = \"onnx\""),
     "variants.w8a16.reference: onnx is a float reference"),
])
def test_every_descriptor_error_names_the_file_the_key_and_the_problem(
        tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = PACKAGED_DESCRIPTOR.read_text()
    assert edit[0] in text
    p = tmp_path / "team.toml"
    p.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(DescriptorError) as err:
        load_descriptor(p)
    assert str(err.value).startswith(f"{p}: ") and message in str(err.value)


def test_the_packaged_boards_file_holds_the_board_facts_the_firmware_was_generated_from() -> None:
    assert PACKAGED_BOARDS == ("collar", "eartag")
    b = BOARDS["collar"]
    assert (b.core, b.clock_hz, b.flash_bytes, b.ram_bytes, b.fpu) == ("cortex-m3", 48_000_000, 131072, 20480, False)
    assert b.qemu is not None and b.qemu.machine == "lm3s6965evb" and b.pyocd_target == "cc2650f128"
    assert BOARDS["eartag"].renode == "nrf52840" and b.renode == "composed-cortex-m3"
    gen = FIXTURES.parent / "device_fw" / "generated" / "boards"
    for name, text in render_board_files().items():
        assert (gen / name).read_text() == text, f"{gen / name} is stale: run `hil gen all`"


def test_a_team_board_is_data_and_a_board_without_qemu_says_so(tmp_path: Path) -> None:
    body = "[eartag]" + BOARDS_FILE.read_text().split("\n[eartag]", 1)[1]
    team = body.replace("[eartag", "[acmetag-m4f").replace("64_000_000", "32_000_000")
    team = team.split("[acmetag-m4f.qemu]")[0]  # no QEMU machine
    p = tmp_path / "boards.toml"
    p.write_text(team)
    boards = load_boards(p)
    assert list(boards) == ["acmetag-m4f"] and boards["acmetag-m4f"].clock_hz == 32_000_000
    assert boards["acmetag-m4f"].source == str(p)
    with pytest.raises(ValueError, match=r"board 'acmetag-m4f' \(.*boards.toml\) has no \[acmetag-m4f.qemu\] table"):
        boards["acmetag-m4f"].qemu_machine()
    p.write_text("")
    with pytest.raises(BoardsError, match="no board in the file"):
        load_boards(p)


def _expected_from_dq(tmp_path: Path, variant: str = "w8a16", order: np.ndarray | None = None) -> tuple[Path, object]:
    """An expected-outputs file holding the DQ reference's outputs for every fixture window: what
    a team's toolchain would write."""
    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    ws = fx.windows
    ref = load_reference(CATTLE, variant, fx.calibrated_x())
    idx = np.arange(len(ws)) if order is None else order
    p = tmp_path / f"expected_{variant}.npz"
    np.savez(p, bout=ws.bout[idx], start=ws.start[idx], classes=ref.classes[idx], scores=ref.logits[idx],
             out_frac=np.int64(ref.out_frac), model_hash=np.str_(ref.model_hash.hex()))
    return p, (fx, ref)


def test_an_expected_outputs_file_is_looked_up_by_window_in_any_row_order(tmp_path: Path) -> None:
    order = np.random.default_rng(0).permutation(406)
    p, (fx, ref) = _expected_from_dq(tmp_path, order=order)  # type: ignore[misc]
    ws = fx.windows
    keys = list(zip(ws.bout.tolist(), ws.start.tolist(), strict=True))
    got = load_expected(p, CATTLE, "w8a16", keys, None)
    assert got.exact and got.model_hash == ref.model_hash and got.out_frac == ref.out_frac
    assert np.array_equal(got.logits, ref.logits) and np.array_equal(got.classes, ref.classes)
    assert got.source == f"expected {p}"


def test_an_expected_outputs_file_that_does_not_cover_the_windows_or_is_malformed_is_refused(tmp_path: Path) -> None:
    p, (fx, _) = _expected_from_dq(tmp_path, order=np.arange(405))  # type: ignore[misc]
    ws = fx.windows
    keys = list(zip(ws.bout.tolist(), ws.start.tolist(), strict=True))
    with pytest.raises(ReferenceError, match=r"no row for window \(bout, start\)"):
        load_expected(p, CATTLE, "w8a16", keys, None)
    dup, _ = _expected_from_dq(tmp_path, order=np.r_[np.arange(406), 3])
    with pytest.raises(ReferenceError, match=r"appears twice \(rows 3 and 406\)"):
        load_expected(dup, CATTLE, "w8a16", keys, None)
    with np.load(dup) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(tmp_path / "float.npz", **{**arrays, "scores": arrays["scores"].astype(np.float64)})
    with pytest.raises(ReferenceError, match=r"float scores, but .* gives variants\.w8a16 no tolerance"):
        load_expected(tmp_path / "float.npz", CATTLE, "w8a16", keys, None)
    np.savez(tmp_path / "wide.npz", **{**arrays, "scores": np.zeros((407, 5), np.int64)})
    with pytest.raises(ReferenceError, match=r"scores must be \[N, 4\]"):
        load_expected(tmp_path / "wide.npz", CATTLE, "w8a16", keys, None)
    del arrays["model_hash"]
    np.savez(tmp_path / "nohash.npz", **arrays)
    with pytest.raises(ReferenceError, match="arrays model_hash missing"):
        load_expected(tmp_path / "nohash.npz", CATTLE, "w8a16", keys, None)


def test_the_readme_tables_of_reference_kinds_and_expected_arrays_are_the_declared_ones() -> None:
    from harness.config.descriptor import REFERENCE_KINDS
    from harness.reference import EXPECTED_ARRAYS

    readme = (FIXTURES.parent / "README.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): line.split("|")[2].strip()
            for line in readme.splitlines() if line.startswith("| `")}
    for kind, meaning in REFERENCE_KINDS.items():
        assert rows.get(kind, "").startswith(meaning), kind
    for name, meaning in EXPECTED_ARRAYS.items():
        assert rows.get(name) == meaning, name


def test_the_example_boards_file_of_hil_init_loads_and_adds_a_board_on_qemu() -> None:
    from harness.cli import EXAMPLE_BOARDS

    boards = load_boards(EXAMPLE_BOARDS)
    assert list(boards) == ["team-tag"] and not set(boards) & set(PACKAGED_BOARDS)
    b = boards["team-tag"]
    assert (b.clock_hz, b.flash_bytes, b.ram_bytes, b.firmware) == (32_000_000, 524288, 131072, "eartag")
    assert b.qemu_machine().machine == "mps2-an386"


def test_hil_init_lays_out_a_team_folder_and_refuses_to_overwrite_one(tmp_path: Path) -> None:
    import subprocess
    import sys

    from harness.cli import INIT_FILES
    from harness.config.thresholds import load_thresholds

    team = tmp_path / "team"
    r = subprocess.run([sys.executable, "-m", "harness.cli", "init", str(team)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name + ("/" if p.is_dir() else "") for p in team.iterdir()) == sorted(INIT_FILES)
    model = load_descriptor(team / "model.toml")
    assert model.classes == CATTLE.classes and model.models_dir == CATTLE.models_dir
    load_thresholds(team / "thresholds.json", model.classes)
    assert "hil_descriptor = model.toml" in (team / "pytest.ini").read_text()
    (team / "conftest.py").unlink()
    r = subprocess.run([sys.executable, "-m", "harness.cli", "init", str(team)], capture_output=True, text=True)
    assert r.returncode == 2 and "already has model.toml, thresholds.json, boards.toml, pytest.ini, tests/" in r.stderr
    assert not (team / "conftest.py").exists()


def test_the_readme_table_of_hil_init_is_the_declared_one() -> None:
    from conftest import REPO

    from harness.cli import INIT_FILES

    readme = (REPO / "README.md").read_text()
    block = readme.split("`hil init DIR` lays out", 1)[1].split("\n\n", 2)[1]
    rows = {line.split("|")[1].strip().strip("`"): line.split("|")[2].strip()
            for line in block.splitlines() if line.startswith("| `")}
    assert rows == INIT_FILES
