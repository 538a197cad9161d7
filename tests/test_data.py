"""Recordings loader, windowing, calibration and the fixture format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import CATTLE, FIXTURES, SHARED_DATA, needs_shared_data
from hypothesis import given
from hypothesis import strategies as st

from harness.data.fixtures import build_fixtures, load_fixtures, write_npz
from harness.data.recordings import (
    COUNTS_PER_G,
    STANDARD_GRAVITY,
    RecordingError,
    load_bout,
    load_recordings,
    to_counts,
)
from harness.data.windows import (
    estimate_rotation_q14,
    leave_one_cow_out,
    make_windows,
    rotate_xy_q14,
)

HEADER = "Time,MPU9250_AX,MPU9250_AY,MPU9250_AZ\n"


def _write(root: Path, rel: str, rows: list[str], header: str = HEADER) -> str:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(header + "".join(r + "\n" for r in rows))
    return rel


def _rows(n: int, z: float = -9.8) -> list[str]:
    return [f"2024-01-01 00:00:{i / 10:04.1f},0.1,0.2,{z}" for i in range(n)]


def test_counts_are_scaled_rounded_and_saturated() -> None:
    got = to_counts(np.array([[STANDARD_GRAVITY, -STANDARD_GRAVITY, 0.0], [1e3, -1e3, 0.5]]))
    assert got.dtype == np.int16
    assert got.tolist() == [[COUNTS_PER_G, -COUNTS_PER_G, 0], [32767, -32768, 418]]


def test_missing_column_names_file_and_line(tmp_path: Path) -> None:
    rel = _write(tmp_path, "Grazing/1_Grazing_7_20240101_000000.csv", _rows(3),
                 header="Time,MPU9250_AX,MPU9250_AZ\n")
    with pytest.raises(RecordingError, match=r"1_Grazing_7_20240101_000000\.csv:1: missing column\(s\) MPU9250_AY"):
        load_bout(tmp_path, rel)


def test_non_numeric_value_names_file_line_and_column(tmp_path: Path) -> None:
    rows = _rows(5)
    rows[3] = "t,0.1,abc,-9.8"
    rel = _write(tmp_path, "Walking/2_Walking_7_20240101_000000.csv", rows)
    with pytest.raises(RecordingError, match=r"csv:5: non-numeric value 'abc' in column MPU9250_AY"):
        load_bout(tmp_path, rel)


def test_unknown_label_folder_is_an_error(tmp_path: Path) -> None:
    rel = _write(tmp_path, "Sleeping/3_Sleeping_7_20240101_000000.csv", _rows(60))
    with pytest.raises(RecordingError, match="unknown label folder 'Sleeping'"):
        load_bout(tmp_path, rel)


def test_missing_folder_and_missing_file_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="recordings folder not found"):
        load_recordings(tmp_path / "nope")
    with pytest.raises(RecordingError, match="cannot open"):
        load_bout(tmp_path, "Grazing/4_Grazing_7_20240101_000000.csv")


def test_short_bout_is_skipped_with_reason_and_faulty_bout_excluded(tmp_path: Path) -> None:
    _write(tmp_path, "Grazing/1_Grazing_7_20240101_000000.csv", _rows(120))
    _write(tmp_path, "Walking/2_Walking_7_20240101_000000.csv", _rows(20))
    _write(tmp_path, "Resting/3_Resting_8_20240101_000000.csv", _rows(80, z=-75.0))
    bouts, excluded = load_recordings(tmp_path)
    assert [e[0] for e in excluded] == ["Resting/3_Resting_8_20240101_000000.csv"]
    assert "offset fault" in excluded[0][1]
    ws, skipped = make_windows(bouts, 50, 25)
    assert skipped == [("Walking/2_Walking_7_20240101_000000.csv",
                        "bout has 20 samples, shorter than one window of 50")]
    assert len(ws) == 3 and ws.x.shape == (3, 50, 3)
    assert ws.start.tolist() == [0, 25, 50] and set(ws.cow.tolist()) == {"7"}


@needs_shared_data
def test_real_recordings_exclude_exactly_the_known_faulty_bouts() -> None:
    _, excluded = load_recordings(SHARED_DATA)
    assert len(excluded) == 17
    assert all("_1319_20240517_" in p for p, _ in excluded)


def test_rotation_is_integer_and_recovers_a_mirrored_collar() -> None:
    rng = np.random.default_rng(1)
    # A cow whose head-down windows put gravity along -Y, and the same cow with the collar mirrored.
    g = np.concatenate([np.tile([0, -5000, -6000], (40, 1)), np.tile([0, -1000, -8000], (60, 1))])
    x = (g[:, None, :] + rng.integers(-200, 200, (100, 50, 3))).astype(np.int16)
    mirrored = x.copy()
    mirrored[..., :2] *= -1
    for data in (x, mirrored):
        rot = estimate_rotation_q14(data)
        out = rotate_xy_q14(data, rot)
        assert out.dtype == np.int16
        assert abs(out[:40, :, 1].mean() + 5000) < 150 and abs(out[:40, :, 0].mean()) < 150


@given(st.integers(-32768, 32767), st.integers(-32768, 32767), st.floats(-np.pi, np.pi))
def test_rotation_saturates_and_matches_the_rounding_rule(x: int, y: int, theta: float) -> None:
    c, s = round(np.cos(theta) * 16384), round(np.sin(theta) * 16384)
    out = rotate_xy_q14(np.array([[x, y, 7]], dtype=np.int16), (c, s))
    want_x = max(-32768, min(32767, (c * x - s * y + 8192) >> 14))
    want_y = max(-32768, min(32767, (s * x + c * y + 8192) >> 14))
    assert out.tolist() == [[want_x, want_y, 7]]


def test_leave_one_cow_out_never_splits_a_cow() -> None:
    folds = leave_one_cow_out(["b", "a", "c", "a", "d"], groups=2)
    assert folds == [["a", "c"], ["b", "d"]]
    assert leave_one_cow_out(["b", "a"]) == [["a"], ["b"]]


def test_npz_writer_is_byte_reproducible(tmp_path: Path) -> None:
    arrays = {"x": np.arange(12, dtype=np.int16).reshape(2, 2, 3), "cow": np.array(["1", "2"])}
    write_npz(tmp_path / "a.npz", arrays)
    write_npz(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as z:
        assert z["x"].tolist() == arrays["x"].tolist()


def test_committed_fixtures_load_and_hold_held_out_cows_of_all_classes() -> None:
    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    assert fx.windows.x.dtype == np.int16 and fx.windows.x.shape[1:] == (50, 3)
    assert sorted(fx.windows.cows) == sorted(fx.meta["cows"])  # type: ignore[arg-type]
    for cow in fx.windows.cows:
        assert set(fx.windows.y[fx.windows.cow == cow].tolist()) == {0, 1, 2, 3}
    assert fx.calibrated_x().shape == fx.windows.x.shape


def test_tampered_fixture_is_refused(tmp_path: Path) -> None:
    for name in ("windows.npz", "meta.json"):
        (tmp_path / name).write_bytes((FIXTURES / "recordings" / name).read_bytes())
    raw = bytearray((tmp_path / "windows.npz").read_bytes())
    raw[-40] ^= 0xFF
    (tmp_path / "windows.npz").write_bytes(bytes(raw))
    with pytest.raises(RecordingError, match="does not match"):
        load_fixtures(tmp_path, CATTLE)
    with pytest.raises(FileNotFoundError, match="hil fixtures build"):
        load_fixtures(tmp_path / "missing", CATTLE)


@needs_shared_data
def test_fixtures_build_reproduces_the_committed_bytes(tmp_path: Path) -> None:
    """`hil fixtures build` with its defaults, which are the options meta.json records."""
    import json

    made = json.loads((FIXTURES / "recordings" / "meta.json").read_text())["generated_by"]
    assert made == "hil fixtures build --cows 1217,2016 --max-per-class 75"
    from harness.cli import main

    assert main(["fixtures", "build", "--data", str(SHARED_DATA), "--out", str(tmp_path)]) == 0  # the defaults
    for name in ("windows.npz", "meta.json", "bouts.npz"):
        assert (tmp_path / name).read_bytes() == (FIXTURES / "recordings" / name).read_bytes(), name


@needs_shared_data
def test_fixtures_build_takes_other_cows_and_keeps_every_window_unless_capped(tmp_path: Path) -> None:
    from harness.data.recordings import RecordingError

    meta = build_fixtures(SHARED_DATA, tmp_path, CATTLE, cows=("4119",))
    fx = load_fixtures(tmp_path, CATTLE)
    assert set(fx.windows.cow.tolist()) == {"4119"}
    assert meta["n_windows"] == meta["windows_before_cap"] == len(fx.windows)
    assert (fx.windows.y == 2).sum() > 0  # the restored Resting excerpts of cow 4119
    with pytest.raises(RecordingError, match="no windows of cow"):
        build_fixtures(SHARED_DATA, tmp_path / "x", CATTLE, cows=("9999",))


def test_a_stratified_sample_holds_every_class_of_every_animal_and_is_fixed_by_its_seed() -> None:
    from harness.data.fixtures import stratified_indices

    y = np.array([0] * 50 + [1] * 5 + [2] * 3 + [0] * 30 + [3] * 2)
    cow = np.array(["a"] * 58 + ["b"] * 32)
    idx = stratified_indices(y, cow, 10)
    assert len(idx) == 10 and len(set(idx.tolist())) == 10 and list(idx) == sorted(idx)
    assert {(cow[i], y[i]) for i in idx} == {("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 3)}
    assert list(stratified_indices(y, cow, 10)) == list(idx)
    assert list(stratified_indices(y, cow, 10, seed=1)) != list(idx)
    assert list(stratified_indices(y, cow, 90)) == list(range(90))
