"""A TCP proxy that injects seeded link faults between the harness and a device's socket.

``hil bench link --proxy`` and ``hil run --link-proxy`` put it between the harness and the
emulator's serial socket, so the faults meet the real transport path (pyserial's socket URL, the
kernel's TCP stack, QEMU's character device) instead of a wrapper inside the harness process. It
runs as its own process (``python -m harness.device.linkproxy``), takes one connection, forwards
both ways through the same fault engine as :class:`harness.device.linkfaults.FaultyPort`, and on
exit writes what it injected as JSON to ``--stats``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType, TracebackType

from harness.device.linkfaults import DIRECTIONS, UNITS, FaultEngine, LinkFaults, injected_summary
from harness.device.targets.base import die_with_parent

__all__ = ["LinkProxy", "main"]


def _host_port(url: str) -> tuple[str, int]:
    if not url.startswith("socket://"):
        raise ValueError(f"the link proxy forwards to a socket:// URL, got {url!r}")
    host, _, port = url[len("socket://"):].rpartition(":")
    return host or "127.0.0.1", int(port)


class LinkProxy:
    """The proxy process for one device: ``start(upstream_url)`` gives the URL the harness opens
    instead; ``stop()`` ends it and returns what it injected (by direction and kind)."""

    def __init__(self, faults: LinkFaults, stats: Path) -> None:
        self.faults = faults
        self.stats = stats
        self.proc: subprocess.Popen[str] | None = None
        self.injected: dict[str, dict[str, int]] = {}

    def start(self, upstream_url: str) -> str:
        host, port = _host_port(upstream_url)
        cmd = [sys.executable, "-m", "harness.device.linkproxy", "--upstream", f"{host}:{port}",
               "--faults", self.faults.spec(), "--unit", self.faults.unit, "--seed", str(self.faults.seed),
               "--direction", self.faults.direction, "--stall-s", repr(self.faults.stall), "--stats", str(self.stats)]
        if self.faults.poison_window is not None:
            cmd += ["--poison-window", str(self.faults.poison_window)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening "):
            self.stop()
            raise ConnectionError(f"link proxy to {host}:{port} did not start (said {line!r})")
        return f"socket://127.0.0.1:{int(line.split()[1])}"

    def stop(self) -> dict[str, dict[str, int]]:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                self.injected = json.loads(self.stats.read_text())
        return self.injected

    def injected_summary(self) -> str:
        return f"proxy: {injected_summary(self.injected)}" if self.injected else "proxy: no record"

    def __enter__(self) -> LinkProxy:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _serve(upstream: tuple[str, int], faults: LinkFaults, stats: Path) -> int:
    engine = FaultEngine(faults)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    print(f"listening {lsock.getsockname()[1]}", flush=True)
    stop = False

    def on_term(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    lsock.settimeout(30.0)
    try:
        client, _ = lsock.accept()
        dev = socket.create_connection(upstream, timeout=30.0)
    except OSError as exc:
        print(f"link proxy: {exc}", file=sys.stderr)
        return 1
    for s in (client, dev):
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sel = selectors.DefaultSelector()
    sel.register(client, selectors.EVENT_READ, engine.tx)
    sel.register(dev, selectors.EVENT_READ, engine.rx)
    dest = {id(engine.tx): dev, id(engine.rx): client}
    try:
        while not stop:
            now = time.monotonic()
            for d in (engine.tx, engine.rx):
                out = engine.due(d, now)
                if out:
                    dest[id(d)].setblocking(True)
                    dest[id(d)].sendall(out)
                    dest[id(d)].setblocking(False)
            waits = [t - now for t in (engine.next_due(engine.tx), engine.next_due(engine.rx)) if t is not None]
            timeout = max(0.0, min([0.2, *waits]))
            for key, _ in sel.select(timeout):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    stop = True
                    break
                engine.feed(key.data, data, time.monotonic())
    finally:
        stats.write_text(json.dumps(engine.injected()))
        for s in (client, dev, lsock):
            s.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.device.linkproxy",
                                description="a TCP proxy that injects seeded link faults (one connection)")
    p.add_argument("--upstream", required=True, help="HOST:PORT of the device's socket")
    p.add_argument("--faults", required=True, help="KIND:RATE[,...] (harness.device.linkfaults)")
    p.add_argument("--unit", choices=UNITS, default="frame")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--direction", choices=DIRECTIONS, default="both")
    p.add_argument("--stall-s", type=float, default=None)
    p.add_argument("--poison-window", type=int, default=None)
    p.add_argument("--stats", required=True, help="write what was injected here (JSON) on exit")
    a = p.parse_args(argv)
    host, _, port = a.upstream.rpartition(":")
    faults = LinkFaults.parse(a.faults, a.seed, a.direction, a.unit, a.stall_s)
    if a.poison_window is not None:
        faults = LinkFaults(faults.rates, faults.direction, faults.seed, faults.stall_s, a.poison_window, faults.unit)
    return _serve((host or "127.0.0.1", int(port)), faults, Path(a.stats))


if __name__ == "__main__":
    raise SystemExit(main())
