"""Renode target: the ear tag on Renode's nRF52840 model (with a DWT added for cycle counts) and a
collar composed from a Cortex-M3 of the CC2650's sizes with a PL011 UART.

Renode is not installable in CI: :meth:`start` raises TargetUnavailable when no ``renode`` is on
PATH. Everything else (platform description, .resc script, command line) is generated here and
tested without Renode.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from harness.boards import BOARDS
from harness.targets.base import Target, TargetUnavailable, build_firmware
from harness.targets.qemu import free_port

__all__ = ["RenodeTarget", "render_repl", "render_resc"]


def render_repl(board: str) -> str:
    """Renode platform description for ``board``."""
    b = BOARDS[board]
    if board == "eartag":
        return (
            f"// {b.part}: Renode's nRF52840 platform plus the DWT it lacks (cycle counter at the core clock).\n"
            "using \"platforms/cpus/nrf52840.repl\"\n\n"
            f"dwt: Miscellaneous.DWT @ sysbus 0xE0001000\n    frequency: {b.clock_hz}\n"
        )
    return (
        f"// {b.part}: no Renode model exists; a Cortex-M3 with the part's memory sizes and a PL011 UART\n"
        "// at the CC2650's UART0 address (IRQ 5), plus a DWT for cycle counts.\n"
        f"cpu: CPU.CortexM @ sysbus\n    cpuType: \"cortex-m3\"\n    nvic: nvic\n\n"
        f"nvic: IRQControllers.NVIC @ sysbus 0xE000E000\n    -> cpu@0\n\n"
        f"flash: Memory.MappedMemory @ sysbus 0x{b.flash_origin:08X}\n    size: 0x{b.flash_bytes:X}\n\n"
        f"sram: Memory.MappedMemory @ sysbus 0x{b.ram_origin:08X}\n    size: 0x{b.ram_bytes:X}\n\n"
        "uart0: UART.PL011 @ sysbus 0x40001000\n    -> nvic@5\n\n"
        f"dwt: Miscellaneous.DWT @ sysbus 0xE0001000\n    frequency: {b.clock_hz}\n"
    )


def render_resc(board: str, repl: Path, elf: Path, port: int) -> str:
    """Renode script: load the platform and the image, and put the UART on a raw TCP socket
    (third argument false: not telnet mode, which would inject bytes into the binary stream)."""
    uart = "uart0"
    return (
        f"mach create \"{board}\"\n"
        f"machine LoadPlatformDescription @{repl}\n"
        f"emulation CreateServerSocketTerminal {port} \"hil-uart\" false\n"
        f"connector Connect sysbus.{uart} hil-uart\n"
        f"sysbus LoadELF @{elf}\n"
        "start\n"
    )


class RenodeTarget(Target):
    kind = "renode"

    def __init__(self, board: str, variant: str, workdir: Path | None = None, elf: Path | None = None) -> None:
        super().__init__(board, variant)
        self.workdir = workdir or Path("build") / "renode" / board
        self.elf = elf
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self, resc: Path) -> list[str]:
        return ["renode", "--disable-xwt", "--console", "--plain", "-e", f"include @{resc}"]

    def prepare(self, port: int) -> Path:
        """Write the .repl and .resc files; return the .resc path."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        repl = self.workdir / f"{self.board}.repl"
        repl.write_text(render_repl(self.board))
        elf = self.elf or Path("device_fw/build/fw") / self.board / self.variant / "fw.elf"
        resc = self.workdir / f"{self.board}.resc"
        resc.write_text(render_resc(self.board, repl.resolve(), elf.resolve(), port))
        return resc

    def start(self) -> str:
        if shutil.which("renode") is None:
            raise TargetUnavailable("renode not found on PATH (Renode is not packaged for Debian or PyPI)")
        if self.elf is None:
            self.elf = build_firmware(self.board, self.variant)
        port = free_port()
        resc = self.prepare(port)
        self.proc = subprocess.Popen(self.command(resc), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        time.sleep(2.0)  # Renode opens the socket terminal once the script has run
        return f"socket://127.0.0.1:{port}"

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
        self.proc = None
