"""Renode target without Renode: the generated .repl and .resc parsed as Renode reads them (entries,
update-only entries, command order), the log check that ends a failed start, the listening-socket
check, and the skips when no Renode is found."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO

from harness.config.boards import BOARDS
from harness.device.targets import RenodeTarget, TargetUnavailable
from harness.device.targets.renode import (
    DWT_SCRIPT,
    listening_sockets,
    log_failure,
    non_loopback,
    render_repl,
    render_resc,
    renode_executable,
)


@dataclass
class Entry:
    name: str
    type: str | None  # None: an update-only entry (`name:` alone)
    at: str | None
    props: dict[str, str] = field(default_factory=dict)
    init: list[str] = field(default_factory=list)


def parse_repl(text: str) -> tuple[list[str], list[Entry]]:
    """The `using` lines and the entries of a Renode platform description (the subset we generate:
    `name: Type @ where`, `name:`, indented `key: value`, `-> irq`, and an `init:` block)."""
    usings: list[str] = []
    entries: list[Entry] = []
    in_init = False
    script: list[str] | None = None  # lines of a `key: '''` multi-line string being read
    for raw in text.splitlines():
        if script is not None:
            if raw.strip() == "'''":
                entries[-1].props["script"] = "".join(line + "\n" for line in script)
                script = None
            else:
                script.append(raw)
            continue
        line = raw.split("//", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line.startswith(" "):
            in_init = False
            if line.startswith("using "):
                usings.append(line[len("using "):].strip().strip('"'))
                continue
            name, _, rest = line.partition(":")
            rest = rest.strip()
            typ, _, at = rest.partition("@")
            entries.append(Entry(name.strip(), typ.strip() or None, at.strip() or None))
            continue
        cur = entries[-1]
        stripped = line.strip()
        if in_init and raw.startswith(" " * 8):
            cur.init.append(stripped)
        elif stripped == "init:":
            in_init = True
        elif stripped.startswith("->"):
            cur.props.setdefault("->", stripped[2:].strip())
        else:
            key, _, value = stripped.partition(":")
            if value.strip() == "'''":
                script = []
                continue
            cur.props[key.strip()] = value.strip()
    assert script is None, "a multi-line string is not closed"
    return usings, entries


def parse_resc(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_eartag_platform_updates_the_stock_uart0_and_adds_a_dwt() -> None:
    usings, entries = parse_repl(render_repl("eartag"))
    assert usings == ["platforms/cpus/nrf52840.repl"]
    names = [e.name for e in entries]
    assert len(names) == len(set(names)), "an entry declared twice (Renode refuses it: E02)"
    by = {e.name: e for e in entries}
    uart = by["uart0"]
    assert uart.type is None and uart.at is None, "uart0 is in the included platform: update-only entry"
    assert uart.props == {"easyDMA": "false"}
    _assert_instruction_counting_dwt(by["dwt"])


def _assert_instruction_counting_dwt(dwt: Entry) -> None:
    assert dwt.type == "Python.PythonPeripheral" and dwt.at == "sysbus 0xE0001000"
    assert dwt.props["size"] == "0x1000" and dwt.props["initable"] == "true"
    assert dwt.props["script"] == DWT_SCRIPT


def test_eartag_platform_downloads_nothing() -> None:
    text = render_repl("eartag")
    _, entries = parse_repl(text)
    sysbus = {e.name: e for e in entries}["sysbus"]
    assert sysbus.type is None and sysbus.init, "sysbus: update-only, its init replaced"
    assert not any(cmd.startswith("ApplySVD") for cmd in sysbus.init)
    assert "http" not in text


def test_collar_platform_declares_each_part_once_with_the_real_sizes() -> None:
    usings, entries = parse_repl(render_repl("collar"))
    assert usings == []
    by = {e.name: e for e in entries}
    assert len(by) == len(entries)
    assert all(e.type for e in entries if e.name != "sysbus")
    assert by["cpu"].type == "CPU.CortexM" and by["cpu"].props["cpuType"] == '"cortex-m3"'
    b = BOARDS["collar"]
    assert by["flash"].at == f"sysbus 0x{b.flash_origin:08X}" and by["flash"].props["size"] == f"0x{b.flash_bytes:X}"
    assert by["sram"].at == f"sysbus 0x{b.ram_origin:08X}" and by["sram"].props["size"] == f"0x{b.ram_bytes:X}"
    assert by["uart0"].type == "UART.PL011" and by["uart0"].at == "sysbus 0x40001000"
    _assert_instruction_counting_dwt(by["dwt"])


class _Request:
    """What Renode's Python peripheral engine gives the script as ``request``."""

    def __init__(self, kind: str, offset: int = 0, value: int = 0) -> None:
        self.isInit, self.isRead, self.isWrite = kind == "init", kind == "read", kind == "write"
        self.offset, self.value = offset, value


class _Cpu:
    ExecutedInstructions = 0


class _Bus:
    def __init__(self, cpu: _Cpu) -> None:
        self.cpu = cpu

    def TryGetCurrentCPU(self) -> tuple[bool, _Cpu]:  # noqa: N802 (Renode's name; IronPython returns `out` as a tuple)
        return True, self.cpu


class _Machine:
    def __init__(self, bus: _Bus) -> None:
        self.SystemBus = bus


class _Peripheral:
    def __init__(self, machine: _Machine) -> None:
        self.machine = machine

    def GetMachine(self) -> _Machine:  # noqa: N802 (Renode's name)
        return self.machine


def test_the_dwt_script_counts_executed_instructions_as_the_firmware_uses_it() -> None:
    """The script run as Renode's engine runs it (one scope, ``request`` and ``self`` set, the code
    executed per access), against a CPU whose instruction count we move: CYCCNT holds while
    CYCCNTENA is clear, takes a written value, then counts executed instructions from it, wrapping
    at 2^32; timer_dwt.c's sequence (CYCCNT = 0, CTRL |= 1, two reads) gives the instructions between
    the reads."""
    cpu = _Cpu()
    scope: dict[str, object] = {"self": _Peripheral(_Machine(_Bus(cpu)))}
    code = compile(DWT_SCRIPT, "dwt", "exec")

    def access(kind: str, offset: int = 0, value: int = 0) -> int:
        scope["request"] = req = _Request(kind, offset, value)
        exec(code, scope)
        return req.value

    access("init")
    cpu.ExecutedInstructions = 1000
    assert access("read", 4) == 0 and access("read", 0) == 0, "disabled: CYCCNT holds"
    access("write", 4, 0)
    access("write", 0, access("read", 0) | 1)
    assert access("read", 0) == 1
    cpu.ExecutedInstructions = 1500
    start = access("read", 4)
    cpu.ExecutedInstructions = 1500 + 438_923
    assert access("read", 4) - start == 438_923
    access("write", 0, 0)
    held = access("read", 4)
    cpu.ExecutedInstructions += 10_000
    assert access("read", 4) == held, "CYCCNTENA cleared: CYCCNT stops"
    access("write", 0, 1)
    cpu.ExecutedInstructions += 7
    assert access("read", 4) == held + 7, "enabled again: counts on from where it stopped"
    access("write", 4, 0xFFFF_FFFE)
    cpu.ExecutedInstructions += 5
    assert access("read", 4) == 3, "CYCCNT wraps at 2^32"
    assert access("read", 8) == 0, "every other register reads 0"


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_resc_says_using_sysbus_and_connects_the_uart_only_after_start(board: str, tmp_path: Path) -> None:
    cmds = parse_resc(render_resc(board, tmp_path / "p.repl", tmp_path / "fw.elf", tmp_path / "u.pty",
                                  tmp_path / "ready.log", mips=64, quantum_s=100e-6))
    words = [" ".join(c[:2]) for c in cmds]
    first = {w: i for i, w in reversed(list(enumerate(words)))}
    assert words[0] == "mach create" and "machine LoadPlatformDescription" in first
    assert first["using sysbus"] < first["cpu PerformanceInMips"], "cpu is unknown before `using sysbus`"
    assert first["sysbus LoadELF"] < first["start"] < first["emulation CreateUartPtyTerminal"]
    assert first["emulation CreateUartPtyTerminal"] < first["connector Connect"] == len(cmds) - 2
    assert cmds[-1] == ["logFile", f"@{tmp_path / 'ready.log'}"], "the ready marker is written last"
    assert cmds[words.index("emulation CreateUartPtyTerminal")][2:] == ['"hil-uart"', f'"{tmp_path / "u.pty"}"', "true"]
    assert cmds[words.index("connector Connect")][2:] == ["sysbus.uart0", "hil-uart"]
    assert not any("Socket" in c[1] for c in cmds if len(c) > 1), "no network terminal"


def test_renode_target_files_command_and_time_base_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIL_RENODE", raising=False)
    t = RenodeTarget("eartag", "w8a16", workdir=tmp_path, elf=tmp_path / "fw.elf")
    resc = t.prepare()
    assert resc.exists() and (tmp_path / "eartag.repl").exists()
    assert t.command(resc)[:2] == ["renode", "--disable-xwt"]
    assert str(t.pty_path) in resc.read_text() and str(t.ready_path) in resc.read_text()
    note = t.time_base_note()
    assert "executed instructions" in note and f"PerformanceInMips {RenodeTarget.performance_mips}" in note
    assert "virtual time only" in note
    monkeypatch.setenv("HIL_RENODE", "/opt/r/renode")
    assert t.command(resc)[0] == "/opt/r/renode"


LOG_OK = """\
Renode, version 1.15.3.2046 (03756cb5-202409161059)
15:01:02.1234 [INFO] Loaded monitor commands from: /r/scripts/monitor.py
15:01:03.0001 [INFO] eartag: Machine started.
15:01:03.0100 [WARNING] eartag/clock: Unhandled write to offset 0x524, value 0x1.
"""


@pytest.mark.parametrize("line", [
    "There was an error executing command 'machine LoadPlatformDescription @/w/eartag.repl'",
    "Error E02: Variable 'uart0' was already defined. At /w/eartag.repl:8:1:",
    "Could not find file '/w/missing/fw.elf'.",
    "No such command or device: cpu",
])
def test_a_failed_command_in_renodes_log_is_found(line: str) -> None:
    assert log_failure(LOG_OK) is None
    found = log_failure(LOG_OK + line + "\n(monitor) ")
    if line.startswith("No such command"):
        assert found is None or "No such command" in found
    else:
        assert found == line


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0
   1: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0
   2: 0100007F:1F90 0100007F:C000 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0
"""
PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st ... inode
   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 444
   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 555
"""


def test_listening_sockets_are_read_from_proc_net_and_loopback_is_told_apart() -> None:
    tables = {"tcp": PROC_NET_TCP, "tcp6": PROC_NET_TCP6}
    socks = listening_sockets(tables)
    assert socks == [("127.0.0.1", 8080), ("0.0.0.0", 2024), ("::1", 22), ("::", 80)]
    assert non_loopback(socks) == [("0.0.0.0", 2024), ("::", 80)]
    assert listening_sockets(tables, inodes={"111", "444"}) == [("127.0.0.1", 8080), ("::1", 22)]
    assert non_loopback(listening_sockets(tables, inodes={"111", "444"})) == []


def test_renode_target_is_unavailable_without_renode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HIL_RENODE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert renode_executable() is None
    with pytest.raises(TargetUnavailable, match="renode not found"):
        RenodeTarget("eartag", "w8a16", workdir=tmp_path).start()
    monkeypatch.setenv("HIL_RENODE", str(tmp_path / "no-such-renode"))
    assert renode_executable() is None


def test_acceptance_suite_skips_rather_than_errors_without_renode(tmp_path: Path) -> None:
    """With --hil-target renode and no Renode, every device test of the acceptance suite skips with
    the reason (none errors)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HIL_RENODE", "HIL_TARGET")}
    bindir = Path(sys.executable).parent
    env["PATH"] = os.pathsep.join(p for p in (str(bindir), "/usr/bin", "/bin")
                                  if not (Path(p) / "renode").exists())
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                        "tests/acceptance", "--hil-target", "renode"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert " error" not in out.splitlines()[-1] and "skipped" in out.splitlines()[-1], out[-3000:]
    assert "renode target unavailable: renode not found" in out
