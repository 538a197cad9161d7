"""The Renode target in a real Renode (``$HIL_RENODE``, else ``renode`` on PATH): the generated
platforms load and run on both boards and variants, in window and stream mode; a broken platform
file and a missing image fail fast with the reason; nothing the target starts listens beyond
loopback. Skipped, with the reason, when no Renode is found."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CATTLE, FIXTURES, needs_qemu

from harness.config.boards import BOARDS
from harness.data.fixtures import load_fixtures
from harness.device.targets import RenodeTarget
from harness.device.targets.base import ImageError, build_firmware
from harness.device.targets.renode import non_loopback, process_listening, renode_executable
from harness.verdict.metrics import BitExact, FloatAgreement

pytestmark = [
    pytest.mark.renode,
    needs_qemu,  # the firmware images are built with arm-none-eabi-gcc
    pytest.mark.skipif(renode_executable() is None,
                       reason="no Renode: set HIL_RENODE or put renode on PATH (not packaged for Debian or PyPI)"),
]

WINDOWS = 6


@pytest.mark.parametrize("board", ["eartag", "collar"])
@pytest.mark.parametrize("variant", ["float32", "w8a16"])
def test_both_boards_and_variants_classify_on_renode(board: str, variant: str, tmp_path: Path) -> None:
    from harness.verdict.evaluate import run_device

    run = run_device(RenodeTarget(board, variant, workdir=tmp_path), load_fixtures(FIXTURES / "recordings", CATTLE),
                     CATTLE, tmp_path / "j.jsonl", limit=WINDOWS, log=lambda m: None)
    assert run.n == WINDOWS and run.link.get("retries", 0) == 0
    v = run.versus_reference
    if isinstance(v, BitExact):
        assert v.n_exact == WINDOWS, v.first_mismatch
    else:
        assert isinstance(v, FloatAgreement) and v.first_disagreement is None
    assert "executed instructions" in run.time_unit and "not exact" not in run.time_unit


@pytest.mark.parametrize("board", ["eartag", "collar"])
def test_renode_counts_the_instructions_qemu_counts(board: str, tmp_path: Path) -> None:
    """The time base: per window, Renode's figure (instructions between the two CYCCNT reads) against
    QEMU's exact -icount figure for the same image and windows, at the default depth 1: equal to
    within 0.01 % (measured: 7 instructions of 438,930 on the ear tag, w8a16)."""
    from harness.device.run import read_journal
    from harness.device.targets import QemuTarget
    from harness.verdict.evaluate import run_device

    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    counts = []
    for t in (RenodeTarget(board, "w8a16", workdir=tmp_path), QemuTarget(board, "w8a16")):
        run_device(t, fx, CATTLE, tmp_path / f"{t.kind}.jsonl", limit=WINDOWS, log=lambda m: None)
        _, results, failures, _ = read_journal(tmp_path / f"{t.kind}.jsonl")
        assert not failures and sorted(results) == list(range(WINDOWS))
        counts.append(np.array([results[i].cycles for i in range(WINDOWS)], dtype=float))
    renode, qemu_ticks = counts
    qemu = qemu_ticks / BOARDS[board].qemu.ticks_per_instruction
    assert np.abs(renode / qemu - 1).max() < 1e-4, (renode, qemu)


def test_stream_mode_on_renode(tmp_path: Path) -> None:
    from harness.verdict.stream import run_stream

    s = run_stream(RenodeTarget("eartag", "w8a16", workdir=tmp_path), load_fixtures(FIXTURES / "recordings", CATTLE),
                   CATTLE, limit_streams=1)
    assert s.windows_verified == s.windows_expected > 0 and not s.mismatches and not s.missing


def test_uart_is_a_pty_and_nothing_listens_beyond_loopback(tmp_path: Path) -> None:
    from harness.device.client import DeviceClient, open_transport

    t = RenodeTarget("collar", "w8a16", workdir=tmp_path)
    try:
        url = t.start()
        assert Path(url).is_symlink() and Path(url).resolve().as_posix().startswith("/dev/pts/")
        client = DeviceClient(open_transport(url), t.description)
        assert client.hello().board
        assert t.proc is not None
        listening = process_listening(t.proc.pid)
        assert non_loopback(listening) == [], listening
        client.close()
    finally:
        t.stop()


class _BrokenPlatform(RenodeTarget):
    def prepare(self) -> Path:
        resc = super().prepare()
        repl = self.workdir / f"{self.board}.repl"
        repl.write_text(repl.read_text() + "\nuart0: UART.NRF52840_UART @ sysbus 0x40002000\n")
        return resc


def test_a_broken_platform_file_fails_within_5_s_with_renodes_log(tmp_path: Path) -> None:
    t = _BrokenPlatform("eartag", "w8a16", workdir=tmp_path)
    t.elf = build_firmware("eartag", "w8a16")  # built before the clock starts
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"There was an error executing command|Error E") as exc:
        t.start()
    assert time.monotonic() - t0 < 5.0
    assert "Renode log" in str(exc.value)
    assert t.proc is None


def test_a_missing_image_fails_at_once(tmp_path: Path) -> None:
    t = RenodeTarget("eartag", "w8a16", workdir=tmp_path, elf=tmp_path / "missing" / "fw.elf")
    t0 = time.monotonic()
    with pytest.raises(ImageError, match="firmware image not found"):
        t.start()
    assert time.monotonic() - t0 < 1.0 and t.proc is None


class _ImageGoneAtLoad(RenodeTarget):
    """The image passes the harness's check, then is gone when Renode's LoadELF reads it."""

    def prepare(self) -> Path:
        resc = super().prepare()
        assert self.elf is not None
        resc.write_text(resc.read_text().replace(str(self.elf.resolve()), str(self.workdir.resolve() / "gone.elf")))
        return resc


def test_an_image_renode_cannot_load_fails_within_5_s_with_renodes_log(tmp_path: Path) -> None:
    t = _ImageGoneAtLoad("eartag", "w8a16", workdir=tmp_path, elf=build_firmware("eartag", "w8a16"))
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="Renode failed to start") as exc:
        t.start()
    assert time.monotonic() - t0 < 5.0
    assert "gone.elf" in str(exc.value) and t.proc is None
