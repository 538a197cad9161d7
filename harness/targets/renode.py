"""Renode target: the ear tag on Renode's nRF52840 model (legacy UART, a DWT added) and a collar
composed from a Cortex-M3 of the CC2650's sizes with a PL011 UART and the PRCM status it polls.

Time base: Renode's DWT counts virtual time x clock, where virtual time is instructions /
PerformanceInMips advanced in quanta. The target sets PerformanceInMips to the clock in MHz, so
the figure approximates an instruction count, and reports it as Renode virtual time with those
settings, never as cycles. Renode's output goes to a log file whose tail is in every error.

Renode is not installable in CI: :meth:`start` raises TargetUnavailable when no ``renode`` is on
PATH. Everything else (platform description, .resc script, command line) is generated here and
tested without Renode.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import IO

from harness.boards import BOARDS
from harness.targets.base import Target, TargetUnavailable, build_firmware, check_image, die_with_parent, log_tail
from harness.targets.qemu import free_port

__all__ = ["RenodeTarget", "render_repl", "render_resc"]


def render_repl(board: str) -> str:
    """Renode platform description for ``board``, from the board table."""
    b = BOARDS[board]
    if board == "eartag":
        return (
            f"// {b.part}: Renode's nRF52840 platform, its uart0 redeclared without EasyDMA (the firmware\n"
            "// drives the legacy UART registers TXD/RXD, which the UARTE model leaves unhandled), plus the\n"
            "// DWT the platform lacks (its CYCCNT counts virtual time x clock).\n"
            "using \"platforms/cpus/nrf52840.repl\"\n\n"
            "uart0: UART.NRF52840_UART @ sysbus 0x40002000\n    easyDMA: false\n    -> nvic@2\n\n"
            f"dwt: Miscellaneous.DWT @ sysbus 0xE0001000\n    frequency: {b.clock_hz}\n"
        )
    return (
        f"// {b.part}: no Renode model exists; a Cortex-M3 with the part's memory sizes, a PL011 UART\n"
        "// at the CC2650's UART0 address (IRQ 5), a DWT for cycle counts, and the PRCM status registers\n"
        "// the firmware polls answering 'ready' (PDSTAT0SERIAL/PERIPH = 1, CLKLOADCTL = 2). IOC, GPIO and\n"
        "// the watchdog are tagged: writes are accepted and ignored (the watchdog never fires here).\n"
        f"cpu: CPU.CortexM @ sysbus\n    cpuType: \"cortex-m3\"\n    nvic: nvic\n\n"
        f"nvic: IRQControllers.NVIC @ sysbus 0xE000E000\n    -> cpu@0\n\n"
        f"flash: Memory.MappedMemory @ sysbus 0x{b.flash_origin:08X}\n    size: 0x{b.flash_bytes:X}\n\n"
        f"sram: Memory.MappedMemory @ sysbus 0x{b.ram_origin:08X}\n    size: 0x{b.ram_bytes:X}\n\n"
        "uart0: UART.PL011 @ sysbus 0x40001000\n    -> nvic@5\n\n"
        f"dwt: Miscellaneous.DWT @ sysbus 0xE0001000\n    frequency: {b.clock_hz}\n\n"
        "sysbus:\n    init:\n"
        "        Tag <0x40082000, 0x40082FFF> \"PRCM\"\n"
        "        Tag <0x40082148, 0x4008214B> \"PRCM_PDSTAT0SERIAL\" 0x1\n"
        "        Tag <0x4008214C, 0x4008214F> \"PRCM_PDSTAT0PERIPH\" 0x1\n"
        "        Tag <0x40082028, 0x4008202B> \"PRCM_CLKLOADCTL\" 0x2\n"
        "        Tag <0x40081000, 0x40081FFF> \"IOC\"\n"
        "        Tag <0x40022000, 0x40022FFF> \"GPIO\"\n"
        "        Tag <0x40080000, 0x40080FFF> \"WDT\"\n"
    )


def render_resc(board: str, repl: Path, elf: Path, port: int, mips: int = 100, quantum_s: float = 100e-6) -> str:
    """Renode script: load the platform and the image, set the time base (PerformanceInMips and the
    global quantum), and put the UART on a raw TCP socket (third argument false: not telnet mode,
    which would inject bytes into the binary stream)."""
    uart = "uart0"
    return (
        f"mach create \"{board}\"\n"
        f"machine LoadPlatformDescription @{repl}\n"
        f"cpu PerformanceInMips {mips}\n"
        f"emulation SetGlobalQuantum \"{quantum_s:.6f}\"\n"
        f"emulation CreateServerSocketTerminal {port} \"hil-uart\" false\n"
        f"connector Connect sysbus.{uart} hil-uart\n"
        f"sysbus LoadELF @{elf}\n"
        "start\n"
    )


RENODE_START_TIMEOUT_S = 20.0
"""Renode takes about 3 s from launch to a running machine; this is the deadline for the UART socket."""


def _listening(port: int) -> bool:
    """True when some process listens on TCP ``port`` (IPv4 or IPv6), read from /proc/net."""
    needle = f":{port:04X} "
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            for line in Path(name).read_text().splitlines()[1:]:
                cols = line.split()
                if len(cols) > 3 and cols[1].endswith(needle.strip()) and cols[3] == "0A":
                    return True
        except OSError:
            continue
    return False


class RenodeTarget(Target):
    kind = "renode"
    performance_mips: int | None = None
    """Renode's instructions per virtual microsecond; default: the board clock in MHz, so virtual
    time x clock approximates an instruction count."""
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
        return self.performance_mips or BOARDS[self.board].clock_hz // 1_000_000

    def time_base_note(self) -> str:
        return (f"PerformanceInMips {self.mips}, quantum {self.quantum_s * 1e6:g} us; virtual time advances in "
                "whole quanta, so a figure is rounded to them")

    def command(self, resc: Path) -> list[str]:
        return ["renode", "--disable-xwt", "--console", "--plain", "-e", f"include @{resc}"]

    def prepare(self, port: int) -> Path:
        """Write the .repl and .resc files; return the .resc path."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        repl = self.workdir / f"{self.board}.repl"
        repl.write_text(render_repl(self.board))
        elf = self.elf or Path("device_fw/build/fw") / self.board / self.variant / "fw.elf"
        resc = self.workdir / f"{self.board}.resc"
        resc.write_text(render_resc(self.board, repl.resolve(), elf.resolve(), port, self.mips, self.quantum_s))
        return resc

    def start(self) -> str:
        if shutil.which("renode") is None:
            raise TargetUnavailable("renode not found on PATH (Renode is not packaged for Debian or PyPI)")
        if self.elf is None:
            self.elf = build_firmware(self.board, self.variant)
        check_image(self.elf, self.board)
        port = free_port()
        resc = self.prepare(port)
        self.log_path = self.workdir / f"renode-{self.variant}.log"
        self._log = self.log_path.open("wb")
        # stdin stays an open pipe: Renode's --console monitor quits at end of input.
        self.proc = subprocess.Popen(self.command(resc), stdin=subprocess.PIPE, stdout=self._log,
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        deadline = time.monotonic() + RENODE_START_TIMEOUT_S
        while not _listening(port):
            if self.proc.poll() is not None:
                msg = f"Renode exited with status {self.proc.returncode} before its UART socket opened"
                self.stop()
                raise RuntimeError(msg + self.diagnostics())
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"Renode did not open its UART socket 127.0.0.1:{port} within "
                                   f"{RENODE_START_TIMEOUT_S:g} s{self.diagnostics()}")
            time.sleep(0.05)
        return f"socket://127.0.0.1:{port}"

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
