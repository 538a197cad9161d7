"""Stream mode pieces that run without an emulator: the device's rotation against the Python one
on a sweep of int16 inputs, and how streams are cut from the fixtures."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
from conftest import CATTLE, FIXTURES, needs_qemu
from cproto import FW, build_host

from harness.data.fixtures import load_fixtures
from harness.data.windows import rotate_xy_q14
from harness.verdict.stream import STREAM_SLOTS, _windows, check_hop, fixture_streams


def test_the_device_rotation_is_bit_exact_with_rotate_xy_q14_on_an_int16_sweep() -> None:
    build_host()
    lib = ctypes.CDLL(str(FW / "build" / "host" / "libproto_host.so"))
    i16p = ctypes.POINTER(ctypes.c_int16)
    lib.calib_rotate_xy_q14.argtypes = [ctypes.c_int16, ctypes.c_int16, i16p, i16p]
    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    rotations = [*fx.rotations.values(), (16384, 0), (-16384, 0), (0, 16384), (11585, -11585), (16547, 0)]
    rng = np.random.default_rng(1)
    edges = np.array([-32768, -32767, -1, 0, 1, 32766, 32767], dtype=np.int16)
    xs = np.concatenate([np.arange(-32768, 32768, 97, dtype=np.int16), edges])
    sweep = np.stack([xs, rng.permutation(xs), rng.integers(-32768, 32768, len(xs)).astype(np.int16)], axis=1)
    sweep = np.concatenate([sweep, np.array(np.meshgrid(edges, edges, [0])).reshape(3, -1).T.astype(np.int16)])
    out = np.zeros(3, dtype=np.int16)
    for rot in rotations:
        want = rotate_xy_q14(sweep, rot)
        for i in range(len(sweep)):
            v = np.ascontiguousarray(sweep[i])
            lib.calib_rotate_xy_q14(rot[0], rot[1], v.ctypes.data_as(i16p), out.ctypes.data_as(i16p))
            assert (out == want[i]).all(), (f"rotation {rot}, sample {v.tolist()}: got {out.tolist()}, "
                                            f"want {want[i].tolist()}")


def test_streams_are_whole_bouts_and_cover_every_fixture_window() -> None:
    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    streams = fixture_streams(fx)
    assert fx.bouts is not None and len(streams) > 0
    by_bout = {s.bout: s for s in streams}
    ws = fx.windows
    for i in range(len(ws)):
        s = by_bout[str(ws.bout[i])]
        start = int(ws.start[i])
        assert (s.x[start:start + ws.x.shape[1]] == ws.x[i]).all()


@needs_qemu
def test_a_lost_sample_frame_is_detected_its_windows_reported_lost_and_the_stream_resynchronises() -> None:
    from harness.device.targets import QemuTarget
    from harness.verdict.stream import run_stream

    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    clean = run_stream(QemuTarget("eartag", "w8a16"), fx, CATTLE, limit_streams=3)
    lossy = run_stream(QemuTarget("eartag", "w8a16"), fx, CATTLE, limit_streams=3, drop_frames=[30])
    assert clean.passed and clean.windows_lost == 0
    # frame 30 holds samples 150..154 of a stream: the windows starting at 125 and 150 overlap it
    assert lossy.passed and lossy.windows_lost == 2
    assert lossy.windows_verified == clean.windows_verified - 2 and lossy.frames == clean.frames - 1
    states = [w["state"] for w in lossy.windows]
    assert states.count("lost") == 2 and states.count("verified") == lossy.windows_verified == len(states) - 2
    lost = [w for w in lossy.windows if w["state"] == "lost"]
    assert [w["start"] for w in lost] == [125, 150] and all(w["device_class"] is None for w in lost)
    assert all(w["label"] == fx.bouts.label[0] for w in lossy.windows if w["stream"] == 0)  # type: ignore[union-attr]
    assert all(w["last_to_result"] is not None for w in lossy.windows if w["state"] == "verified")


@needs_qemu
def test_the_stream_report_is_a_page_with_a_timeline_per_case(tmp_path: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--mode", "stream", "--board", "eartag",
                        "--variant", "w8a16", "--stream-limit", "3", "--drop-frame", "30", "--report",
                        str(tmp_path / "rep")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "eartag / w8a16 on qemu: PASS" in page and "2 lost to dropped frames" in page
    assert "eartag_w8a16_timeline.png" in page and (tmp_path / "rep" / "eartag_w8a16_timeline.png").stat().st_size > 0
    assert (tmp_path / "rep" / "eartag_w8a16_last_to_result.png").is_file() and "stream.json" in page


def test_window_starts_reach_exactly_the_last_full_window() -> None:
    assert _windows(49, 50, 25) == []
    assert _windows(50, 50, 25) == [0]
    assert _windows(74, 50, 25) == [0]
    assert _windows(75, 50, 25) == [0, 25]


def test_the_host_knows_the_device_slot_count_and_refuses_a_hop_that_needs_more() -> None:
    model_h = (FW / "src" / "app" / "model.h").read_text()
    assert f"#define MODEL_STREAM_SLOTS {STREAM_SLOTS}\n" in model_h
    check_hop(50, 13)  # ceil(50 / 13) = 4 slots: the most the device holds
    for hop, why in ((12, "in progress 5 at a time"), (0, "must be 1..50"), (51, "must be 1..50")):
        try:
            check_hop(50, hop)
        except ValueError as exc:
            assert why in str(exc)
        else:
            raise AssertionError(f"hop {hop} accepted")


@needs_qemu
def test_a_hop_that_fills_every_slot_keeps_every_window_bit_exact() -> None:
    """Hop 13 on a 50-sample window: four windows in progress at once, the device's every slot,
    so a slot is reused the moment its window ends; every window must still match."""
    from harness.device.targets import QemuTarget
    from harness.verdict.stream import run_stream

    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    r = run_stream(QemuTarget("eartag", "w8a16"), fx, CATTLE, hop=13, samples_per_frame=1, limit_streams=1)
    assert r.passed and r.windows_lost == 0 and r.windows_verified == r.windows_expected > 20


@needs_qemu
def test_the_device_itself_refuses_a_hop_that_needs_a_fifth_slot() -> None:
    """Past the host's check: StreamStart(12) straight to the firmware is refused, 13 gets 4 slots."""
    import pytest

    from harness.device.client import DeviceClient, DeviceError, open_transport
    from harness.device.targets import QemuTarget

    target = QemuTarget("collar", "w8a16")
    try:
        c = DeviceClient(open_transport(target.start()), "collar")
        c.hello()
        with pytest.raises(DeviceError, match="PAYLOAD"):
            c.stream_start(12)
        assert c.stream_start(13).slots == STREAM_SLOTS
        c.close()
    finally:
        target.stop()
