"""Renode and board targets: everything that can run without Renode or a board, and the skips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.boards import BOARDS
from harness.targets import BoardTarget, HardwareMap, RenodeTarget, TargetUnavailable
from harness.targets.qemu import qemu_command
from harness.targets.renode import render_repl, render_resc


def test_eartag_platform_adds_a_dwt_at_the_core_clock() -> None:
    repl = render_repl("eartag")
    assert 'using "platforms/cpus/nrf52840.repl"' in repl
    assert "dwt: Miscellaneous.DWT @ sysbus 0xE0001000" in repl and f"frequency: {BOARDS['eartag'].clock_hz}" in repl


def test_collar_platform_has_the_real_parts_memory_sizes() -> None:
    repl = render_repl("collar")
    assert 'cpuType: "cortex-m3"' in repl and f"size: 0x{BOARDS['collar'].flash_bytes:X}" in repl
    assert f"size: 0x{BOARDS['collar'].ram_bytes:X}" in repl and "UART.PL011 @ sysbus 0x40001000" in repl


def test_resc_uses_a_raw_socket_terminal_not_telnet(tmp_path: Path) -> None:
    resc = render_resc("eartag", tmp_path / "e.repl", tmp_path / "fw.elf", 4321)
    assert 'emulation CreateServerSocketTerminal 4321 "hil-uart" false' in resc
    assert "sysbus LoadELF @" in resc and resc.strip().endswith("start")


def test_renode_target_writes_its_files_and_command_line(tmp_path: Path) -> None:
    t = RenodeTarget("eartag", "w8a16", workdir=tmp_path, elf=tmp_path / "fw.elf")
    resc = t.prepare(5555)
    assert resc.exists() and (tmp_path / "eartag.repl").exists()
    assert t.command(resc)[:2] == ["renode", "--disable-xwt"]


@pytest.mark.renode
@pytest.mark.skipif(shutil.which("renode") is not None, reason="renode is installed: the skip path does not apply")
def test_renode_target_is_unavailable_without_renode() -> None:
    with pytest.raises(TargetUnavailable, match="renode not found"):
        RenodeTarget("eartag", "w8a16").start()


@pytest.mark.renode
@pytest.mark.skipif(shutil.which("renode") is None, reason="renode not on PATH (not packaged for Debian or PyPI)")
def test_eartag_on_renode_classifies_bit_exact(tmp_path: Path) -> None:
    from conftest import FIXTURES

    from harness.data.fixtures import load_fixtures
    from harness.evaluate import run_device

    run = run_device(RenodeTarget("eartag", "w8a16", workdir=tmp_path), load_fixtures(FIXTURES / "recordings"),
                     FIXTURES / "models", tmp_path / "j.jsonl", limit=20, log=lambda m: None)
    assert run.versus_reference.n_exact == 20  # type: ignore[union-attr]


def test_qemu_command_has_deterministic_time_and_a_binary_safe_socket() -> None:
    cmd = " ".join(qemu_command("eartag", Path("fw.elf"), 1234))
    assert "-M mps2-an386" in cmd and "-icount shift=7,align=off" in cmd
    assert "-serial tcp:127.0.0.1:1234,server=on,wait=on,nodelay=on" in cmd


def test_hardware_map_binds_boards_and_refuses_ambiguity(tmp_path: Path) -> None:
    p = tmp_path / "hw.json"
    p.write_text(json.dumps({"boards": {"tag1": {"board": "eartag", "probe": "P1", "usb_serial": "S1"},
                                        "col1": {"board": "collar", "probe": "P2", "port": "/dev/ttyACM3"}}}))
    hw = HardwareMap.load(p)
    assert hw.for_board("collar").port == "/dev/ttyACM3" and hw.for_board("eartag").probe == "P1"
    p.write_text(json.dumps({"boards": {"a": {"board": "eartag", "probe": "P1"}, "b": {"board": "collar",
                                                                                        "probe": "P1"}}}))
    with pytest.raises(ValueError, match="same probe id"):
        HardwareMap.load(p)
    p.write_text("{not json")
    with pytest.raises(ValueError, match=r"hw\.json:1: not valid JSON"):
        HardwareMap.load(p)
    p.write_text(json.dumps({"boards": {"a": {"board": "toaster"}}}))
    with pytest.raises(ValueError, match="board must be one of"):
        HardwareMap.load(p)


@pytest.mark.board
def test_board_target_without_port_or_probe_is_unavailable() -> None:
    t = BoardTarget("eartag", "w8a16")
    with pytest.raises(TargetUnavailable, match="no port and no usb_serial"):
        t.find_port()
    with pytest.raises(TargetUnavailable, match="no probe id"):
        t._session()


@pytest.mark.board
def test_board_target_with_an_unknown_usb_serial_is_unavailable() -> None:
    from harness.targets.board import BoardEntry

    t = BoardTarget("eartag", "w8a16", entry=BoardEntry("x", "eartag", "P", None, "NO-SUCH-SERIAL"))
    with pytest.raises(TargetUnavailable, match="NO-SUCH-SERIAL"):
        t.find_port()
