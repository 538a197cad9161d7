"""Renode target: the ear tag on Renode's nRF52840 model (legacy UART, a DWT added) and a collar
composed from a Cortex-M3 of the CC2650's sizes with a PL011 UART and the PRCM status it polls.
Written against Renode v1.15.3.

Time base: the DWT is a Renode Python peripheral (:data:`DWT_SCRIPT`) whose CYCCNT is the CPU's
executed-instruction count read at the very access, so a figure is the instruction count between
two reads, as QEMU's ``-icount`` gives (Renode's own DWT model counts virtual time, which a CYCCNT
read does not bring up to date: in v1.15.3 its figures lag by up to a quantum). PerformanceInMips
and the quantum set how fast virtual time runs, so the UART's timing, never the figures.

The UART is a pty (``emulation CreateUartPtyTerminal``), not a socket: nothing listens on the
network while a run lasts. The terminal is created and connected only after ``LoadELF`` and
``start``, and the script then writes a marker file: the harness opens the pty only once that
marker exists, so no byte it sends reaches the UART before the firmware runs. Renode's output goes
to a log file; a failed monitor command in it ends :meth:`RenodeTarget.start` at once with the
log's tail.

:meth:`RenodeTarget.start` raises TargetUnavailable when no Renode is found (``HIL_RENODE``, else
``renode`` on PATH). Everything else (platform description, .resc script, command line, the log
check) is generated here and tested without Renode.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import IO

from harness.config.boards import BOARDS
from harness.device.targets.base import (
    Target,
    TargetUnavailable,
    build_firmware,
    check_image,
    die_with_parent,
    log_tail,
)

__all__ = ["RenodeTarget", "listening_sockets", "log_failure", "non_loopback", "process_listening", "render_repl",
           "render_resc", "renode_executable"]

UART_TERMINAL = "hil-uart"


DWT_SCRIPT = """\
if request.isInit:
    ctrl = 0
    base = 0
    held = 0
    bus = self.GetMachine().SystemBus
def instructions():
    found, cpu = bus.TryGetCurrentCPU()
    return cpu.ExecutedInstructions if found else 0
if request.isRead:
    if request.offset == 0:
        request.value = ctrl
    elif request.offset == 4:
        request.value = ((instructions() - base) if ctrl & 1 else held) & 0xFFFFFFFF
    else:
        request.value = 0
elif request.isWrite:
    if request.offset == 0:
        if (ctrl & 1) and not (request.value & 1):
            held = (instructions() - base) & 0xFFFFFFFF
        elif not (ctrl & 1) and (request.value & 1):
            base = instructions() - held
        ctrl = request.value
    elif request.offset == 4:
        held = request.value
        base = instructions() - request.value
"""
"""The DWT as a Renode Python peripheral: CTRL (bit 0 CYCCNTENA) and CYCCNT; every other register
reads 0. CYCCNT counts the CPU's executed instructions (``ExecutedInstructions``, read at the very
access), so a figure is the instruction count between two reads, the time base QEMU's icount gives.
Renode's own DWT model counts virtual time, which a CYCCNT read does not bring up to date (in
v1.15.3 figures lag by up to a quantum)."""


def _dwt_entry() -> str:
    return ("dwt: Python.PythonPeripheral @ sysbus 0xE0001000\n    size: 0x1000\n    initable: true\n"
            "    script: '''\n" + DWT_SCRIPT + "'''\n\n")


def render_repl(board: str) -> str:
    """Renode platform description for ``board``, from the board table."""
    b = BOARDS[board]
    if b.renode is None:
        raise ValueError(f"board {board!r} ({b.source}) names no Renode platform (renode = "
                         "\"nrf52840\" or \"composed-cortex-m3\" in its boards file)")
    if b.renode == "nrf52840":
        return (
            f"// {b.part}: Renode's nRF52840 platform with update-only entries: uart0 without EasyDMA (the\n"
            "// firmware drives the legacy UART registers TXD/RXD, which the UARTE model leaves unhandled),\n"
            "// and sysbus's init replaced by the stock one's tags without its ApplySVD (which downloads an SVD\n"
            "// file at every start). Plus the DWT the platform lacks (its CYCCNT counts executed instructions).\n"
            "using \"platforms/cpus/nrf52840.repl\"\n\n"
            "uart0:\n    easyDMA: false\n\n"
            + _dwt_entry() +
            "sysbus:\n    init:\n"
            "        Tag <0x10000000, 0x10000FFF> \"FICR\"\n"
            "        Tag <0x100000a0, 0x100000a3> \"DEVICEADDRTYPE\" 0x1\n"
            "        Tag <0x100000a4, 0x100000a7> \"DEVICEADDR[0]\" 0xAABBCCDD\n"
            "        Tag <0x10001200, 0x10001203> \"PSELRESET\"\n"
        )
    return (
        f"// {b.part}: no Renode model exists; a Cortex-M3 with the part's memory sizes, a PL011 UART\n"
        "// at the CC2650's UART0 address (IRQ 5), a DWT counting instructions, and the PRCM status registers\n"
        "// the firmware polls answering 'ready' (PDSTAT0SERIAL/PERIPH = 1, CLKLOADCTL = 2). IOC, GPIO and\n"
        "// the watchdog are tagged: writes are accepted and ignored (the watchdog never fires here).\n"
        f"cpu: CPU.CortexM @ sysbus\n    cpuType: \"cortex-m3\"\n    nvic: nvic\n\n"
        f"nvic: IRQControllers.NVIC @ sysbus 0xE000E000\n    -> cpu@0\n\n"
        f"flash: Memory.MappedMemory @ sysbus 0x{b.flash_origin:08X}\n    size: 0x{b.flash_bytes:X}\n\n"
        f"sram: Memory.MappedMemory @ sysbus 0x{b.ram_origin:08X}\n    size: 0x{b.ram_bytes:X}\n\n"
        "uart0: UART.PL011 @ sysbus 0x40001000\n    -> nvic@5\n\n"
        + _dwt_entry() +
        "sysbus:\n    init:\n"
        "        Tag <0x40082000, 0x40082FFF> \"PRCM\"\n"
        "        Tag <0x40082148, 0x4008214B> \"PRCM_PDSTAT0SERIAL\" 0x1\n"
        "        Tag <0x4008214C, 0x4008214F> \"PRCM_PDSTAT0PERIPH\" 0x1\n"
        "        Tag <0x40082028, 0x4008202B> \"PRCM_CLKLOADCTL\" 0x2\n"
        "        Tag <0x40081000, 0x40081FFF> \"IOC\"\n"
        "        Tag <0x40022000, 0x40022FFF> \"GPIO\"\n"
        "        Tag <0x40080000, 0x40080FFF> \"WDT\"\n"
    )


def render_resc(board: str, repl: Path, elf: Path, pty: Path, ready: Path, mips: int = 5000,
                quantum_s: float = 100e-6) -> str:
    """Renode script: load the platform and the image, set the time base (PerformanceInMips and the
    global quantum), start the machine, and only then put the UART on a pty terminal (``pty`` is
    the symlink Renode makes to it) and write the ``ready`` marker file (Renode's ``logFile``)."""
    return (
        f"mach create \"{board}\"\n"
        f"machine LoadPlatformDescription @{repl}\n"
        "using sysbus\n"
        f"cpu PerformanceInMips {mips}\n"
        f"emulation SetGlobalQuantum \"{quantum_s:.6f}\"\n"

        f"sysbus LoadELF @{elf}\n"
        "start\n"
        f"emulation CreateUartPtyTerminal \"{UART_TERMINAL}\" \"{pty}\" true\n"
        f"connector Connect sysbus.uart0 {UART_TERMINAL}\n"
        f"logFile @{ready}\n"
    )


LOG_FAILURES = (
    re.compile(r"There was an error executing command"),
    re.compile(r"\bError E\d+:"),
    re.compile(r"Could not find file|No such file or directory|does not exist"),
    re.compile(r"Unhandled Exception|Exception of type|\[ERROR\]"),
)
"""Lines of Renode's log that mean a command of the start script failed (Renode then stays at its
prompt instead of exiting)."""


def log_failure(text: str) -> str | None:
    """The first line of Renode's log ``text`` that reports a failure, or None."""
    for line in text.splitlines():
        if any(p.search(line) for p in LOG_FAILURES):
            return line.strip()
    return None


def renode_executable() -> str | None:
    """Renode to run: ``$HIL_RENODE`` when set (a path or a command name), else ``renode`` when it is
    on PATH; None when neither is found."""
    exe = os.environ.get("HIL_RENODE") or "renode"
    return exe if shutil.which(exe) is not None else None


def _proc_net_address(hexaddr: str) -> str:
    """An address of /proc/net/tcp{,6} (little-endian hex words) as text, e.g. '127.0.0.1' or '::1'."""
    import ipaddress

    raw = bytes.fromhex(hexaddr)
    host = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(host))


def listening_sockets(tables: dict[str, str], inodes: set[str] | None = None) -> list[tuple[str, int]]:
    """The (address, port) of every listening TCP socket in ``tables`` (the text of /proc/net/tcp
    and /proc/net/tcp6, by name); only sockets whose inode is in ``inodes`` when given."""
    found: list[tuple[str, int]] = []
    for text in tables.values():
        for line in text.splitlines()[1:]:
            cols = line.split()
            if len(cols) < 10 or cols[3] != "0A":  # 0A: TCP_LISTEN
                continue
            if inodes is not None and cols[9] not in inodes:
                continue
            addr, port = cols[1].rsplit(":", 1)
            found.append((_proc_net_address(addr), int(port, 16)))
    return found


def non_loopback(sockets: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The sockets of ``sockets`` reachable from beyond this host (any address but loopback)."""
    import ipaddress

    out = []
    for addr, port in sockets:
        ip = ipaddress.ip_address(addr)
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if not (mapped or ip).is_loopback:
            out.append((addr, port))
    return out


def process_listening(pid: int) -> list[tuple[str, int]]:
    """The listening TCP sockets of process ``pid`` and its children, read from /proc."""
    pids = {pid}
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        pids.update(int(c) for c in task.read_text().split())
    inodes: set[str] = set()
    for p in pids:
        for fd in Path(f"/proc/{p}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    tables = {}
    for name in ("tcp", "tcp6"):
        try:
            tables[name] = Path(f"/proc/{pid}/net/{name}").read_text()
        except OSError:
            continue
    return listening_sockets(tables, inodes)


RENODE_START_TIMEOUT_S = 20.0
"""Renode takes about 3 s from launch to a running machine; the deadline for the ready marker."""


class RenodeTarget(Target):
    kind = "renode"
    performance_mips: int = 5000
    """Renode's instructions per virtual microsecond. The figures count instructions, so this sets
    only how fast virtual time runs against them. Renode keeps virtual time from running ahead of
    the host's and synchronises once a quantum, so at the board clock in MHz (48) the CPU is held to
    about that many million instructions a second, in quanta of 4,800 instructions: the collar's
    float32 window took 0.76 s (round trip, host time) at 48, 0.10 s at 4800."""
    quantum_s: float = 100e-6

    def __init__(self, board: str, variant: str, workdir: Path | None = None, elf: Path | None = None) -> None:
        super().__init__(board, variant)
        self.workdir = workdir or Path("build") / "renode" / board
        self.elf = elf
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._log: IO[bytes] | None = None

    @property
    def mips(self) -> int:
        return self.performance_mips

    @property
    def pty_path(self) -> Path:
        return (self.workdir / f"uart-{self.variant}.pty").absolute()

    @property
    def ready_path(self) -> Path:
        return (self.workdir / f"ready-{self.variant}.log").absolute()

    def time_base_note(self) -> str:
        return ("Renode: the CPU's executed instructions, read at each DWT CYCCNT access; "
                f"PerformanceInMips {self.mips} and quantum {self.quantum_s * 1e6:g} us set the virtual time only")

    def command(self, resc: Path) -> list[str]:
        return [os.environ.get("HIL_RENODE") or "renode", "--disable-xwt", "--console", "--plain",
                "-e", f"include @{resc}"]

    def prepare(self) -> Path:
        """Write the .repl and .resc files; return the .resc path."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        repl = self.workdir / f"{self.board}.repl"
        repl.write_text(render_repl(self.board))
        elf = self.elf or Path("device_fw/build/fw") / self.board / self.variant / "fw.elf"
        resc = self.workdir / f"{self.board}.resc"
        resc.write_text(render_resc(self.board, repl.resolve(), elf.resolve(), self.pty_path, self.ready_path,
                                    self.mips, self.quantum_s))
        return resc

    def start(self) -> str:
        if renode_executable() is None:
            raise TargetUnavailable("renode not found (set HIL_RENODE or put renode on PATH; Renode is not "
                                    "packaged for Debian or PyPI)")
        if self.elf is None:
            self.elf = build_firmware(self.board, self.variant)
        check_image(self.elf, self.board)
        resc = self.prepare()
        for stale in (self.pty_path, self.ready_path):
            stale.unlink(missing_ok=True)
        self.log_path = self.workdir / f"renode-{self.variant}.log"
        self._log = self.log_path.open("wb")
        # stdin stays an open pipe: Renode's --console monitor quits at end of input.
        self.proc = subprocess.Popen(self.command(resc), stdin=subprocess.PIPE, stdout=self._log,
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        deadline = time.monotonic() + RENODE_START_TIMEOUT_S
        while True:
            failed = log_failure(self.log_path.read_text(errors="replace"))
            if failed is not None:
                self.stop()
                raise RuntimeError(f"Renode failed to start {self.description}: {failed}{self.diagnostics()}")
            if self.ready_path.exists() and self.pty_path.exists():
                return str(self.pty_path)
            if self.proc.poll() is not None:
                msg = f"Renode exited with status {self.proc.returncode} before its UART was connected"
                self.stop()
                raise RuntimeError(msg + self.diagnostics())
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"Renode did not connect its UART within {RENODE_START_TIMEOUT_S:g} s"
                                   f"{self.diagnostics()}")
            time.sleep(0.05)

    def diagnostics(self) -> str:
        tail = log_tail(self.log_path)
        return f"\nRenode log ({self.log_path}), last lines:\n{tail}" if tail else ""

    def reset(self) -> str:
        self.stop()
        return self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
