"""A real labgrid farm on loopback for the tests: a labgrid coordinator (gRPC), one exporter that
exports each QEMU board's UART socket as a ``NetworkSerialPort`` (protocol raw), and one place per
board matching it. Everything it starts is stopped at the end, whatever happens.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from qemu_boards import QemuBoard, qemu_board

from harness.device.targets.qemu import _kill, free_port

BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def labgrid_missing() -> str:
    """'' when labgrid (client, coordinator, exporter) is installed in this environment, else why not."""
    from harness.device.targets.labgrid import labgrid_available

    why = labgrid_available()
    if why:
        return why
    for t in ("labgrid-coordinator", "labgrid-exporter", "labgrid-client"):
        if not (BIN / t).exists() and shutil.which(t) is None:
            return f"{t} not found (pip install 'cattle-hil[labgrid]')"
    return ""


needs_labgrid = pytest.mark.skipif(bool(labgrid_missing()), reason=labgrid_missing() or "labgrid installed")


@dataclass
class Farm:
    coordinator: str
    workdir: Path
    places: dict[str, QemuBoard] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def client(self, *args: str, user: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """labgrid-client against this farm's coordinator (as ``user`` when given: LG_USERNAME)."""
        env = dict(os.environ)
        if user is not None:
            env["LG_USERNAME"] = user
        r = subprocess.run([_tool("labgrid-client"), "-x", self.coordinator, *args], capture_output=True, text=True,
                           env=env, timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError(f"labgrid-client {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def who(self) -> str:
        """``labgrid-client who``: the places acquired now, by whom."""
        return self.client("who").stdout


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"labgrid-coordinator exited with {proc.returncode}: {log.read_text(errors='replace')}")
        try:  # it listens on an IPv6 socket (::ffff:127.0.0.1); a connection does it no harm
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"labgrid-coordinator did not listen on port {port} within {timeout} s")


@contextmanager
def labgrid_farm(boards: Sequence[tuple[str, str, str]]) -> Iterator[Farm]:
    """A coordinator, QEMU boards and an exporter on loopback; ``boards`` are (place, board,
    variant). Each place matches its board's NetworkSerialPort; waits until every place has its
    resource online."""
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hil-labgrid-")))
        port = free_port()
        coord_log = workdir / "coordinator.log"
        with coord_log.open("wb") as fh:
            coord = subprocess.Popen([_tool("labgrid-coordinator"), "--listen", f"127.0.0.1:{port}"], cwd=workdir,
                                     stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT)
        stack.callback(_kill, coord)
        farm = Farm(f"127.0.0.1:{port}", workdir)
        farm.procs.append(coord)
        _wait_port(port, coord, coord_log)
        lines = []
        for place, board, variant in boards:
            qb = stack.enter_context(qemu_board(board, variant, "tcp"))
            farm.places[place] = qb
            lines += [f"{place}:", "  NetworkSerialPort:", "    host: 127.0.0.1", f"    port: {qb.port}",
                      "    speed: 115200", "    protocol: raw"]
        (workdir / "exporter.yaml").write_text("\n".join(lines) + "\n")
        exp_log = workdir / "exporter.log"
        with exp_log.open("wb") as fh:
            exp = subprocess.Popen([_tool("labgrid-exporter"), "-c", farm.coordinator, "-n", "qemu-desk",
                                    "--hostname", "127.0.0.1", str(workdir / "exporter.yaml")], cwd=workdir,
                                   stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT)
        stack.callback(_kill, exp)
        farm.procs.append(exp)
        for place, _board, _variant in boards:
            farm.client("-p", place, "create")
            farm.client("-p", place, "add-match", f"qemu-desk/{place}/NetworkSerialPort")
        deadline = time.monotonic() + 30
        while True:
            r = farm.client("resources", check=False)
            if all(f"qemu-desk/{p}/NetworkSerialPort" in r.stdout for p, _b, _v in boards):
                break
            if exp.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the exporter's resources did not reach the coordinator: {r.stdout}{r.stderr}\n"
                                   f"{exp_log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield farm
