"""QEMU target: the emulated collar (lm3s6965evb, Cortex-M3) and ear tag (mps2-an386, Cortex-M4F).

Deterministic time: ``-icount shift=N,align=off``; the UART is a TCP server with ``wait=on`` (the
VM starts only when the harness connects, so no byte is lost) and ``nodelay=on``. The process is
always reaped: on stop(), on garbage collection, at interpreter exit, and by the kernel when the
harness dies (PR_SET_PDEATHSIG, so also after ``kill -9``). QEMU's stderr goes to a log file whose
tail is in every error about the device.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import IO

from harness.config.boards import board as board_facts
from harness.device.targets.base import (
    Target,
    TargetUnavailable,
    build_firmware,
    check_image,
    die_with_parent,
    log_tail,
)

__all__ = ["QemuTarget", "free_port", "qemu_command"]

QEMU = "qemu-system-arm"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def qemu_command(board: str, elf: Path, port: int) -> list[str]:
    q = board_facts(board).qemu_machine()
    return [QEMU, "-M", q.machine, "-cpu", q.cpu, "-nographic", "-monitor", "none", "-nodefaults",
            "-kernel", str(elf), "-icount", f"shift={q.icount_shift},align=off",
            "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"]


def _kill(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class QemuTarget(Target):
    kind = "qemu"

    def __init__(self, board: str, variant: str, elf: Path | None = None, build: bool = True) -> None:
        super().__init__(board, variant)
        board_facts(board).qemu_machine()  # an unknown board, or one QEMU cannot run: refused here
        self.elf = elf
        self.build = build
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._finalizer: weakref.finalize | None = None
        self._atexit = functools.partial(_kill, None)
        self.log_path: Path | None = None
        self._log: IO[bytes] | None = None

    @property
    def image_board(self) -> str:
        return f"{self.board}-qemu"

    def start(self) -> str:
        if shutil.which(QEMU) is None:
            raise TargetUnavailable(f"{QEMU} not found on PATH (apt-get install qemu-system-arm)")
        if self.elf is None:
            if shutil.which("arm-none-eabi-gcc") is None:
                raise TargetUnavailable("arm-none-eabi-gcc not found: cannot build the firmware image")
            self.elf = build_firmware(self.image_board, self.variant)
        check_image(self.elf, self.board, self.image_board)
        self.port = free_port()
        cmd = qemu_command(self.board, self.elf, self.port)
        fd, name = tempfile.mkstemp(prefix=f"qemu-{self.board}-{self.variant}-", suffix=".log")
        self.log_path = Path(name)
        self._log = os.fdopen(fd, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)
        self._finalizer = weakref.finalize(self, _kill, self.proc)
        self._atexit = functools.partial(_kill, self.proc)
        atexit.register(self._atexit)
        self._wait_listening(cmd)
        return f"socket://127.0.0.1:{self.port}"

    def _wait_listening(self, cmd: list[str], timeout: float = 10.0) -> None:
        """Wait until QEMU listens, without connecting (a connection would start the VM)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        needle = f":{self.port:04X} 00000000:0000 0A"  # LISTEN on our port in /proc/net/tcp
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"QEMU exited with status {self.proc.returncode} before listening: "
                                   f"{' '.join(cmd)}{self.diagnostics()}")
            try:
                if needle in Path("/proc/net/tcp").read_text():
                    return
            except OSError:
                time.sleep(0.5)
                return
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"QEMU did not listen on 127.0.0.1:{self.port} within {timeout} s")

    def diagnostics(self) -> str:
        parts = []
        if self.proc is not None and self.proc.poll() is not None:
            parts.append(f"QEMU exited with status {self.proc.returncode}")
        tail = log_tail(self.log_path)
        if tail:
            parts.append(f"QEMU log ({self.log_path}), last lines:\n{tail}")
        return "".join(f"\n{p}" for p in parts)

    def reset(self) -> str:
        self.stop()
        return self.start()

    def stop(self) -> None:
        if self.proc is not None:
            _kill(self.proc)
            atexit.unregister(self._atexit)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
