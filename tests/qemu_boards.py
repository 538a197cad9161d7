"""QEMU boards that run on their own, as a board on a desk does: started with our firmware, their
UART a TCP server (``wait=off``: the board runs whether anyone is connected) or a pseudo-terminal
(``-serial pty``: a tty that pyserial opens as it opens a USB-serial port). For the labgrid farm
(tests/labgrid_farm.py) and the board target on a real tty (tests/test_board_pty.py).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.device.targets.base import build_firmware, die_with_parent
from harness.device.targets.qemu import _kill, free_port, qemu_command


@dataclass
class QemuBoard:
    board: str
    variant: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int | None = None
    """TCP port of the UART (serial='tcp')"""
    pty: str | None = None
    """the pseudo-terminal of the UART (serial='pty'), e.g. /dev/pts/5"""
    qmp: Path | None = None
    """QEMU's QMP socket (a unix socket), for :meth:`reset`"""

    def reset(self) -> None:
        """Reset the board as its reset button would (QMP ``system_reset``): the firmware boots again,
        the UART stays where it is."""
        import json
        import socket

        assert self.qmp is not None
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.qmp))
            f = s.makefile("rw")
            json.loads(f.readline())  # the greeting
            for cmd in ("qmp_capabilities", "system_reset"):
                f.write(json.dumps({"execute": cmd}) + "\n")
                f.flush()
                while True:
                    reply = json.loads(f.readline())
                    if "return" in reply:
                        break
                    if "error" in reply:
                        raise RuntimeError(f"QMP {cmd}: {reply['error']}")


def _serial_arg(cmd: list[str], value: str) -> list[str]:
    i = cmd.index("-serial")
    return [*cmd[: i + 1], value, *cmd[i + 2:]]


@contextmanager
def qemu_board(board: str, variant: str, serial: str = "tcp") -> Iterator[QemuBoard]:
    """A QEMU ``board`` running our ``variant`` firmware, its UART on a TCP port of 127.0.0.1 or on
    a pty; killed at the end whatever happens."""
    elf = build_firmware(f"{board}-qemu", variant)
    port = free_port() if serial == "tcp" else None
    cmd = qemu_command(board, elf, port or 0)
    cmd = _serial_arg(cmd, f"tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on" if serial == "tcp" else "pty")
    log = Path(tempfile.mkstemp(prefix=f"qemu-{board}-{variant}-", suffix=".log")[1])
    qmp = log.with_suffix(".qmp")
    i = cmd.index("-monitor")
    cmd = [*cmd[:i], "-qmp", f"unix:{qmp},server=on,wait=off", *cmd[i + 2:]]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent)
    try:
        b = QemuBoard(board, variant, proc, log, port=port, qmp=qmp)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"QEMU exited with {proc.returncode}: {log.read_text(errors='replace')}")
            if serial == "pty":
                m = re.search(r"char device redirected to (/dev/pts/\d+)", log.read_text(errors="replace"))
                if m:
                    b.pty = m.group(1)
                    break
            elif f":{port:04X} 00000000:0000 0A" in Path("/proc/net/tcp").read_text():
                break
            time.sleep(0.02)
        else:
            raise TimeoutError(f"QEMU {board} did not open its UART within 10 s: {log.read_text(errors='replace')}")
        yield b
    finally:
        _kill(proc)
        log.unlink(missing_ok=True)
        qmp.unlink(missing_ok=True)
