"""Firmware: host builds of kernels and models under ASan/UBSan, the images for every board and
variant, and the images running on QEMU."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CATTLE, FIXTURES, REPO, needs_qemu

from harness.config.boards import BOARDS
from harness.data.fixtures import load_fixtures
from harness.device.client import DeviceClient, ModelMismatch, open_transport
from harness.device.run import read_journal
from harness.device.targets import QemuTarget
from harness.device.targets.base import build_firmware, firmware_image
from harness.verdict.evaluate import image_size, run_device
from protocol import Counters, Deframer, Error, ErrorCode, Frame, Infer, Log, Result, encode_frame

FW = REPO / "device_fw"
VARIANTS = ("float32", "w8a16", "w16a16", "w8a8")
GENERATED = json.loads((FW / "generated" / "models.json").read_text())


def _make(*targets: str) -> None:
    r = subprocess.run(["make", "-s", "-j2", "-C", str(FW), *targets], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.mark.parametrize("variant", VARIANTS)
def test_host_kernels_and_model_match_the_reference_under_asan_and_ubsan(variant: str) -> None:
    binary = f"build/host/test_nn_{variant}"
    _make(binary)
    r = subprocess.run([str(FW / binary), str(FW / "tests" / "vectors")], capture_output=True, text=True, cwd=FW,
                       env={**os.environ, "ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "halt_on_error=1"})
    assert r.returncode == 0, r.stdout + r.stderr
    n = len(load_fixtures(FIXTURES / "recordings", CATTLE).windows.x)
    want = "model float32 (1e-3)" if variant == "float32" else f"model {variant} (bit-exact)"
    assert f"{want:<22} {n:6d} vectors ok" in r.stdout, r.stdout
    assert "0 failed suite(s)" in r.stdout


@needs_qemu
def test_every_image_builds_and_fits_the_real_part() -> None:
    _make("fw")
    for board in ("collar-qemu", "eartag-qemu", "collar", "eartag"):
        b = BOARDS[board.split("-")[0]]
        for v in VARIANTS:
            sizes = image_size(firmware_image(board, v))
            assert sizes is not None
            flash, ram = sizes
            assert flash <= b.flash_bytes and ram + 4096 <= b.ram_bytes, (board, v, flash, ram)


@needs_qemu
@pytest.mark.parametrize("board", ["collar", "eartag"])
def test_qemu_time_base_counts_the_board_tables_ticks_per_instruction(board: str) -> None:
    """A loop of exactly 2,000,000 instructions must read as 2e6 x ticks_per_instruction ticks."""
    _make(f"build/fw/{board}-qemu/calib/fw.elf")
    with QemuTarget(board, "calib", elf=firmware_image(f"{board}-qemu", "calib")) as t:
        ser = open_transport(t.start(), timeout=0.5)
        d, events, deadline = Deframer(), [], time.monotonic() + 20
        while not events and time.monotonic() < deadline:
            events = d.feed(ser.read(256))
        ser.close()
    assert events and isinstance(events[0], Frame), events
    text = events[0].msg.text  # type: ignore[union-attr]
    ticks = int(text.split("ticks=")[1].split()[0])
    want = 2_000_000 * BOARDS[board].qemu.ticks_per_instruction
    assert abs(ticks - want) < 64, (text, want)  # a few instructions of measurement overhead
    assert BOARDS[board].qemu.ticks_per_instruction > 2  # what makes round(ticks / tpi) exact


@pytest.fixture(scope="module")
def collar_q() -> DeviceClient:
    """A running collar w8a16 image on QEMU, helloed."""
    if needs_qemu.args[0]:
        pytest.skip(needs_qemu.kwargs["reason"])
    t = QemuTarget("collar", "w8a16")
    c = DeviceClient(open_transport(t.start()), t.description)
    c.hello()
    yield c  # type: ignore[misc]
    c.close()
    t.stop()


@needs_qemu
@pytest.mark.parametrize("board", ["collar", "eartag"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_each_qemu_image_boots_and_reports_the_exported_model(board: str, variant: str) -> None:
    with QemuTarget(board, variant) as t:
        c = DeviceClient(open_transport(t.start()), t.description)
        info = c.hello()
        c.close()
    assert info.board == f"{board}-qemu" and info.window_len == 50 and info.n_classes == 4
    assert info.model_hash.hex() == GENERATED[variant]["model_hash"]
    assert info.boot_counter == 1 and info.fault_flags == 0
    assert c.stats.logs == ["boot"]


def _raw_frames(c: DeviceClient, deadline: float, want: int = 1) -> list[Frame]:
    """Valid frames read straight off the client's port (bypassing the client), Log frames left out."""
    d, out = Deframer(), []
    while len(out) < want and time.monotonic() < deadline:
        out += [e for e in d.feed(c.ser.read(max(1, c.ser.in_waiting or 1)))
                if isinstance(e, Frame) and not isinstance(e.msg, Log)]
    return out


@needs_qemu
def test_a_retry_with_the_same_sequence_number_replays_the_cached_result(collar_q: DeviceClient) -> None:
    x = load_fixtures(FIXTURES / "recordings", CATTLE).calibrated_x()[7]
    wire = encode_frame(Infer(7, 50, 3, tuple(int(v) for v in x.ravel())), 4242)
    collar_q._write(wire)
    first = _raw_frames(collar_q, time.monotonic() + 10)[0]
    collar_q._write(wire)
    again = _raw_frames(collar_q, time.monotonic() + 10)[0]
    assert first.seq == again.seq == 4242
    assert isinstance(first.msg, Result) and again.msg == first.msg  # same cycles too: served from the cache
    counters = collar_q.counters()
    assert counters.frames_ok >= 3


@needs_qemu
def test_garbage_and_bad_frames_get_errors_and_the_link_recovers(collar_q: DeviceClient) -> None:
    before = collar_q.counters()
    frames = (FIXTURES.parent / "fixtures" / "frames")
    for name, code in (("bad_crc", ErrorCode.CRC), ("wrong_version", ErrorCode.VERSION),
                       ("unknown_type", ErrorCode.UNKNOWN_TYPE), ("infer_short_window", ErrorCode.PAYLOAD)):
        collar_q._write((frames / f"{name}.bin").read_bytes())
        seq = json.loads((frames / "index.json").read_text())["frames"][name]["seq"]
        got = _raw_frames(collar_q, time.monotonic() + 10)
        assert got and isinstance(got[0].msg, Error), name
        assert (got[0].msg.code, got[0].msg.offending_seq) == (code, seq), name
    # Garbage at the link's bit rate (115200 baud, 10 bits a byte): QEMU's UART models no baud rate and feeds
    # its FIFO as fast as the host writes, so an unpaced 5000-byte burst can outrun any firmware's RX ring.
    garbage = bytes(np.random.default_rng(3).integers(1, 256, 5000, dtype=np.uint8)) + b"\x00"
    for i in range(0, len(garbage), 128):
        collar_q._write(garbage[i:i + 128])
        time.sleep(128 * 10 / collar_q.baudrate)
    time.sleep(0.5)
    _raw_frames(collar_q, time.monotonic() + 0.5, want=10**6)  # the COBS/length error replies to the garbage
    after = collar_q.counters()
    assert isinstance(after, Counters)
    assert after.crc_errors == before.crc_errors + 1 and after.version_errors == before.version_errors + 1
    assert after.unknown_types == before.unknown_types + 1 and after.payload_errors == before.payload_errors + 1
    assert after.cobs_errors + after.length_errors > before.cobs_errors + before.length_errors
    assert after.rx_overruns == 0
    x = load_fixtures(FIXTURES / "recordings", CATTLE).calibrated_x()
    assert collar_q.infer(1, x[1]).window_id == 1


@needs_qemu
def test_a_window_of_the_wrong_shape_is_refused(collar_q: DeviceClient) -> None:
    from harness.device.client import DeviceError

    with pytest.raises(DeviceError, match="PAYLOAD"):
        collar_q.infer(3, np.zeros((49, 3), np.int16))


@needs_qemu
def test_a_device_with_another_model_is_refused_naming_both_hashes(tmp_path: Path) -> None:
    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    wrong = build_firmware("collar-qemu", "w16a16")
    target = QemuTarget("collar", "w8a16", elf=wrong)
    with pytest.raises(ModelMismatch) as err:
        run_device(target, fx, CATTLE, tmp_path / "j.jsonl", limit=2, log=lambda m: None)
    msg = str(err.value)
    assert GENERATED["w16a16"]["model_hash"] in msg and GENERATED["w8a16"]["model_hash"] in msg
    assert target.proc is None  # QEMU was reaped


@needs_qemu
def test_a_run_killed_with_sigkill_resumes_and_reports_every_window_once(tmp_path: Path, budgets_only: Path) -> None:
    report = tmp_path / "report"
    journal = report / "journals" / "qemu_collar_w8a16.jsonl"
    cmd = [sys.executable, "-m", "harness.cli", "run", "--board", "collar", "--variant", "w8a16", "--limit", "80",
           "--quiet", "--report", str(report), "--thresholds", str(budgets_only)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count("\n") > 30:
            break
        time.sleep(0.05)
    qemus = _qemu_children(proc.pid)
    assert qemus, "the harness runs no QEMU"
    os.kill(proc.pid, signal.SIGKILL)  # the harness only, mid-run: its QEMU must die with it
    proc.wait()
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{q}").exists() for q in qemus) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [q for q in qemus if Path(f"/proc/{q}/cmdline").exists() and Path(f"/proc/{q}/cmdline").read_bytes()]
    assert not alive, f"QEMU {alive} outlived the harness that started it"
    _, partial, _, _ = read_journal(journal)
    assert 0 < len(partial) < 80
    r = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    header, done, failed, torn = read_journal(journal)
    assert not failed
    assert header is not None and sorted(done) == list(range(80)) and torn == 0
    lines = [json.loads(ln) for ln in journal.read_text().splitlines()]
    indices = [ln["result"]["index"] for ln in lines if ln["kind"] == "result"]
    assert len(indices) == len(set(indices)) == 80
    assert json.loads((report / "report.json").read_text())["runs"][0]["n"] == 80


def _qemu_children(parent: int) -> list[int]:
    """Process ids of the qemu-system-arm processes whose parent is ``parent``."""
    out = []
    for p in Path("/proc").iterdir():
        try:
            cmd = (p / "cmdline").read_bytes().split(b"\0")
            ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and cmd and cmd[0].endswith(b"qemu-system-arm"):
            out.append(int(p.name))
    return out


@needs_qemu
@pytest.mark.parametrize("board", ["collar", "eartag"])
def test_a_hardfault_is_recorded_and_reported_by_the_next_boot(board: str) -> None:
    """The fault-injection image executes an undefined instruction on its first boot; the HardFault
    handler saves CFSR, HFSR, PC and LR and resets; the second boot reports them in Info."""
    _make(f"build/fw/{board}-qemu/fault_w8a16/fw.elf")
    with QemuTarget(board, "w8a16", elf=firmware_image(f"{board}-qemu", "fault_w8a16")) as t:
        c = DeviceClient(open_transport(t.start()), t.description)
        info = c.hello()
        c.close()
    assert info.boot_counter == 2 and info.fault_flags == 1
    assert info.fault_cfsr & (1 << 16)  # UFSR.UNDEFINSTR
    assert info.fault_hfsr & (1 << 30)  # HFSR.FORCED: escalated to HardFault
    assert 0 < info.fault_pc < BOARDS[board].flash_bytes  # the faulting instruction, in flash
    assert c.stats.logs == ["boot"]  # only the second boot got as far as its log


@needs_qemu
def test_pipelined_streaming_keeps_results_exact_and_in_order(tmp_path: Path) -> None:
    """Depth 2: the next window waits in the device's receive ring while it computes."""
    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    run = run_device(QemuTarget("eartag", "w8a16"), fx, CATTLE, tmp_path / "j.jsonl", limit=40,
                     log=lambda m: None, depth=2)
    assert run.versus_reference.n_exact == 40  # type: ignore[union-attr]
    assert run.link["retries"] == 0 and run.link["bad_frames"] == 0 and run.link["stale_frames"] == 0


@needs_qemu
@pytest.mark.parametrize("board", ["collar", "eartag"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_kernels_and_model_match_the_reference_on_the_target_core(board: str, variant: str) -> None:
    """The host test suite, built for the board's core and run under QEMU with semihosting: on the
    Cortex-M4 the DSP path of the kernels (SMLALD, SXTB16), on the Cortex-M3 the pure C path."""
    elf = f"build/target-tests/{board}/test_nn_{variant}.elf"
    _make(elf)
    q = BOARDS[board].qemu
    r = subprocess.run(["qemu-system-arm", "-M", q.machine, "-cpu", q.cpu, "-nographic", "-monitor", "none",
                        "-nodefaults", "-semihosting-config", "enable=on,target=native", "-kernel", elf],
                       capture_output=True, text=True, cwd=FW, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    n = len(load_fixtures(FIXTURES / "recordings", CATTLE).windows.x)
    want = "model float32 (1e-3)" if variant == "float32" else f"model {variant} (bit-exact)"
    assert f"{want:<22} {n:6d} vectors ok" in r.stdout and "0 failed suite(s)" in r.stdout, r.stdout


@needs_qemu
def test_the_paper_scale_images_build_and_fit_the_real_parts() -> None:
    """hil bench fw's second workload (H 64, 256-sample windows): every image links against the
    real parts' memory (a missing source in its make rule once broke the benchmark)."""
    from harness.bench.fwbench import build_paper_images

    build_paper_images(load_fixtures(FIXTURES / "recordings", CATTLE), ["collar", "eartag"], log=lambda m: None)
    for board in ("collar", "eartag"):
        for v in ("float32", "w8a16"):
            sizes = image_size(firmware_image(f"{board}-qemu", f"paper_{v}"))
            assert sizes is not None and sizes[0] <= BOARDS[board].flash_bytes, (board, v, sizes)


@needs_qemu
@pytest.mark.parametrize("board", ["collar", "eartag"])
def test_a_hardfault_mid_run_fails_the_window_it_faulted_in_names_it_and_the_run_goes_on(
        board: str, tmp_path: Path) -> None:
    """The mid-run fault image executes an undefined instruction inside its 20th Infer (window 19);
    its boot frame fails that window at once, the reset is named at window 19 with its fault record,
    and every other window is verified bit-exact on the rebooted device."""
    _make(f"build/fw/{board}-qemu/faultmid_w8a16/fw.elf")
    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    target = QemuTarget(board, "w8a16", elf=firmware_image(f"{board}-qemu", "faultmid_w8a16"))
    run = run_device(target, fx, CATTLE, tmp_path / "j.jsonl", limit=30, log=lambda m: None)
    assert [f["index"] for f in run.failures] == [19]
    assert re.search(r"rebooted \(its boot frame arrived\) while (Run|Infer) seq", run.failures[0]["reason"])
    assert len(run.resets) == 1 and run.resets[0].startswith("device reset (boot 1 -> 2) detected at window 19; ")
    assert "HardFault" in run.resets[0] or "CFSR" in run.resets[0]
    assert run.n_verified == 29 and run.versus_reference.n_exact == 29  # type: ignore[union-attr]
