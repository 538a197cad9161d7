"""Seeded link-fault injection between the harness and a device: a pyserial-like port wrapper
(:class:`FaultyPort`) and the fault engine it shares with the TCP proxy (harness.device.linkproxy).

Faults are drawn per frame (``unit`` "frame": per 0x00-delimited unit of bytes, as the frames are
on the wire) or per byte (``unit`` "byte": what a noisy UART does), in each direction the spec
enables, independently for each kind, from a seeded generator, so a run with the same spec and
seed injects the same faults into the same bytes:

- ``drop``: one byte of the frame is lost (per byte: that byte);
- ``flip``: one bit of one byte is inverted (per byte: of that byte);
- ``dup``: the whole frame arrives twice (per byte: that byte);
- ``garbage``: a burst of 1-16 random bytes (zeros included) is inserted into the frame (per
  byte: before that byte);
- ``stall``: the frame (per byte: that byte), and everything after it, is delayed by
  ``stall_s`` (default 2 s per frame, 0.2 s per byte).

``poison_window`` damages (one bit flipped) every transmission of the Infer of that window id, so
that window fails after its retry budget: it proves a failed window is reported and the run goes
on (``hil run --poison-window N``). Only this option decodes frames (with the protocol package).

Used by ``hil run --link-faults SPEC``, ``hil bench link`` and the tests.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DIRECTIONS", "FAULT_KINDS", "UNITS", "FaultEngine", "FaultyPort", "LinkFaults", "parse_rate"]

FAULT_KINDS = ("drop", "flip", "dup", "garbage", "stall")


def parse_rate(text: str) -> float:
    """A fault rate written as a fraction (``0.01``) or a percentage (``1%``); ValueError if it is
    not a number (the range is checked where the rate is used)."""
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise ValueError(f"rate {text!r} is not a number") from None
DIRECTIONS = ("both", "to-device", "from-device")
UNITS = ("frame", "byte")
STALL_S = {"frame": 2.0, "byte": 0.2}
"""Default stall length per unit: a per-byte stall is a short hiccup, a per-frame one a long one."""


@dataclass(frozen=True)
class LinkFaults:
    """What to inject: probability per frame or per byte (``unit``) of each fault kind, direction(s),
    seed. ``stall_s`` None: the unit's default (STALL_S)."""

    rates: dict[str, float]
    direction: str = "both"
    seed: int = 0
    stall_s: float | None = None
    poison_window: int | None = None
    unit: str = "frame"

    def __post_init__(self) -> None:
        for k, r in self.rates.items():
            if k not in FAULT_KINDS:
                raise ValueError(f"link fault kind {k!r} unknown; known: {', '.join(FAULT_KINDS)}")
            if not 0.0 <= r <= 1.0:
                raise ValueError(f"link fault rate {k}:{r} outside 0..1")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"link fault direction {self.direction!r} unknown; known: {', '.join(DIRECTIONS)}")
        if self.unit not in UNITS:
            raise ValueError(f"link fault unit {self.unit!r} unknown; known: {', '.join(UNITS)}")
        if self.stall_s is not None and not 0.0 < self.stall_s <= 60.0:
            raise ValueError(f"link fault stall {self.stall_s} s outside (0, 60]")

    @property
    def stall(self) -> float:
        """The stall length in seconds."""
        return STALL_S[self.unit] if self.stall_s is None else self.stall_s

    @classmethod
    def parse(cls, spec: str, seed: int = 0, direction: str = "both", unit: str = "frame",
              stall_s: float | None = None) -> LinkFaults:
        """``KIND:RATE[,KIND:RATE...]``, KIND one of FAULT_KINDS or ``all``; RATE per ``unit`` (frame
        or byte), 0..1 (``1%`` is accepted too). Example: ``flip:0.01,drop:0.005`` or ``all:1%``."""
        rates: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            kind, sep, rate_s = part.partition(":")
            if not sep:
                raise ValueError(f"link faults {spec!r}: {part!r} is not KIND:RATE")
            try:
                rate = parse_rate(rate_s)
            except ValueError as e:
                raise ValueError(f"link faults {spec!r}: {e}") from None
            for k in FAULT_KINDS if kind == "all" else (kind,):
                rates[k] = rate
        if not rates:
            raise ValueError(f"link faults {spec!r}: no KIND:RATE given")
        return cls(rates, direction, seed, stall_s, unit=unit)

    def spec(self) -> str:
        """The ``KIND:RATE,...`` text that parses back to these rates."""
        return ",".join(f"{k}:{r!r}" for k, r in self.rates.items())

    def describe(self) -> str:
        kinds = ",".join(f"{k}:{r:g}" for k, r in self.rates.items()) or "none"
        poison = f"; every Infer of window {self.poison_window} damaged" if self.poison_window is not None else ""
        stall = f", stalls {self.stall:g} s" if self.rates.get("stall") else ""
        return f"{kinds} per {self.unit}, {self.direction}, seed {self.seed}{stall}{poison}"


@dataclass
class _Direction:
    name: str
    rng: random.Random
    enabled: bool
    partial: bytearray = field(default_factory=bytearray)
    queue: deque[tuple[float, bytes]] = field(default_factory=deque)
    hold_until: float = 0.0
    frames: int = 0
    bytes: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    stalled_s: float = 0.0
    """stall time injected into this direction"""
    countdown: dict[str, int] = field(default_factory=dict)
    """per-byte unit: bytes until the next fault of each kind (geometric gaps, same law as a draw
    per byte)"""


class FaultEngine:
    """The fault model of both directions: bytes in (``feed``), damaged bytes out when due
    (``due``). Time is the caller's ``time.monotonic()``; nothing here does I/O."""

    def __init__(self, faults: LinkFaults) -> None:
        self.faults = faults
        both = faults.direction == "both"
        self.tx = _Direction("to-device", random.Random(f"{faults.seed}:to-device"),
                             both or faults.direction == "to-device")
        self.rx = _Direction("from-device", random.Random(f"{faults.seed}:from-device"),
                             both or faults.direction == "from-device")

    # ---- fault model
    def _poisoned(self, frame: bytes) -> bool:
        from protocol import Infer, Part, decode_frame
        from protocol.cobs import cobs_decode

        try:
            f = decode_frame(cobs_decode(frame.rstrip(b"\x00")))
        except ValueError:
            return False
        return isinstance(f.msg, Infer | Part) and f.msg.window_id == self.faults.poison_window

    def _gap(self, d: _Direction, rate: float) -> int:
        """Bytes before the next fault of a kind with this per-byte rate (0: this byte)."""
        if rate >= 1.0:
            return 0
        return int(math.log(1.0 - d.rng.random()) / math.log(1.0 - rate))

    def _count(self, d: _Direction, kind: str) -> None:
        d.injected[kind] = d.injected.get(kind, 0) + 1

    def _per_frame(self, d: _Direction, out: bytearray, now: float) -> int:
        copies = 1
        for kind in FAULT_KINDS:
            rate = self.faults.rates.get(kind, 0.0)
            if rate <= 0.0 or d.rng.random() >= rate:
                continue
            self._count(d, kind)
            if kind == "drop" and out:
                del out[d.rng.randrange(len(out))]
            elif kind == "flip" and out:
                out[d.rng.randrange(len(out))] ^= 1 << d.rng.randrange(8)
            elif kind == "dup":
                copies = 2
            elif kind == "garbage":
                pos = d.rng.randrange(len(out) + 1)
                out[pos:pos] = bytes(d.rng.randrange(256) for _ in range(d.rng.randint(1, 16)))
            elif kind == "stall":
                d.hold_until = max(d.hold_until, now) + self.faults.stall
                d.stalled_s += self.faults.stall
        return copies

    def _per_byte(self, d: _Direction, frame: bytes, now: float) -> list[tuple[float, bytes]]:
        """Each byte of the frame meets each kind with its rate; a stall holds that byte and
        everything after it."""
        kinds = [k for k in FAULT_KINDS if self.faults.rates.get(k, 0.0) > 0.0]
        for k in kinds:
            if k not in d.countdown:
                d.countdown[k] = self._gap(d, self.faults.rates[k])
        out: list[tuple[float, bytes]] = []
        run = bytearray()
        pos = 0
        while pos < len(frame):
            nearest = min((d.countdown[k] for k in kinds), default=len(frame))
            step = min(nearest, len(frame) - pos)
            run += frame[pos:pos + step]
            for k in kinds:
                d.countdown[k] -= step
            pos += step
            if pos >= len(frame):
                break
            piece = bytearray(frame[pos:pos + 1])
            hit = [k for k in kinds if d.countdown[k] == 0]
            for k in kinds:
                if k in hit:
                    d.countdown[k] = self._gap(d, self.faults.rates[k])  # clean bytes after this one
                else:
                    d.countdown[k] -= 1
            for k in hit:
                self._count(d, k)
                if k == "drop":
                    piece = bytearray()
                elif k == "flip" and piece:
                    piece[-1] ^= 1 << d.rng.randrange(8)
                elif k == "dup" and piece:
                    piece = piece + piece[-1:]
                elif k == "garbage":
                    piece[0:0] = bytes(d.rng.randrange(256) for _ in range(d.rng.randint(1, 16)))
                elif k == "stall":
                    out.append((max(now, d.hold_until), bytes(run)))
                    run = bytearray()
                    d.hold_until = max(d.hold_until, now) + self.faults.stall
                    d.stalled_s += self.faults.stall
            run += piece
            pos += 1
        out.append((max(now, d.hold_until), bytes(run)))
        return out

    def _damage(self, d: _Direction, frame: bytes, now: float) -> None:
        d.frames += 1
        d.bytes += len(frame)
        out = bytearray(frame)
        if d is self.tx and self.faults.poison_window is not None and self._poisoned(frame):
            self._count(d, "poison")
            out[len(out) // 2] ^= 0x01 if out[len(out) // 2] != 0x01 else 0x02  # never makes a 0x00
        if not d.enabled:
            d.queue.append((max(now, d.hold_until), bytes(out)))
        elif self.faults.unit == "byte":
            d.queue.extend(self._per_byte(d, bytes(out), now))
        else:
            copies = self._per_frame(d, out, now)
            for _ in range(copies):
                d.queue.append((max(now, d.hold_until), bytes(out)))

    def feed(self, d: _Direction, data: bytes, now: float) -> None:
        """Bytes written into direction ``d``; whole frames (up to each 0x00) are damaged and queued."""
        d.partial += data
        while True:
            end = d.partial.find(0)
            if end < 0:
                return
            frame = bytes(d.partial[: end + 1])
            del d.partial[: end + 1]
            self._damage(d, frame, now)

    @staticmethod
    def due(d: _Direction, now: float) -> bytes:
        """The bytes of direction ``d`` whose time has come, in order."""
        out = bytearray()
        while d.queue and d.queue[0][0] <= now:
            out += d.queue.popleft()[1]
        return bytes(out)

    @staticmethod
    def next_due(d: _Direction) -> float | None:
        return d.queue[0][0] if d.queue else None

    # ---- what was done
    def injected(self) -> dict[str, dict[str, int]]:
        """Faults injected so far, by direction and kind, frames and bytes seen and stall time
        (``stall_ms``) per direction."""
        return {d.name: {"frames": d.frames, "bytes": d.bytes, **d.injected,
                         **({"stall_ms": round(d.stalled_s * 1e3)} if d.stalled_s else {})} for d in (self.tx, self.rx)}

    def injected_summary(self) -> str:
        return injected_summary(self.injected())


def injected_summary(injected: dict[str, dict[str, int]]) -> str:
    """One line of what was injected, from :meth:`FaultEngine.injected`."""
    parts = []
    for name, c in injected.items():
        kinds = ", ".join(f"{k} {v}" for k, v in c.items() if k not in ("frames", "bytes", "stall_ms")) or "none"
        if c.get("stall_ms"):
            kinds += f" ({c['stall_ms'] / 1e3:g} s stalled)"
        parts.append(f"{name}: {c['frames']} frames, {c.get('bytes', 0)} bytes, {kinds}")
    return "; ".join(parts)


class FaultyPort:
    """Wraps an open pyserial port; what passes through it in either direction may be damaged
    as ``faults`` says. Implements the part of the pyserial API the client uses."""

    def __init__(self, inner: Any, faults: LinkFaults) -> None:
        self.inner = inner
        self.faults = faults
        self.engine = FaultEngine(faults)
        self._ready = bytearray()

    def _flush_tx(self) -> None:
        due = self.engine.due(self.engine.tx, time.monotonic())
        if due:
            self.inner.write(due)
            self.inner.flush()

    # ---- pyserial surface
    def write(self, data: bytes) -> int:
        self.engine.feed(self.engine.tx, bytes(data), time.monotonic())
        self._flush_tx()
        return len(data)

    def flush(self) -> None:
        self._flush_tx()

    @property
    def in_waiting(self) -> int:
        self._flush_tx()
        self._ready += self.engine.due(self.engine.rx, time.monotonic())
        return len(self._ready)

    def read(self, n: int = 1) -> bytes:
        self._flush_tx()
        self._ready += self.engine.due(self.engine.rx, time.monotonic())
        if not self._ready:
            chunk = self.inner.read(max(1, self.inner.in_waiting or 1))
            if chunk:
                now = time.monotonic()
                self.engine.feed(self.engine.rx, chunk, now)
                self._ready += self.engine.due(self.engine.rx, now)
        out = bytes(self._ready[:n])
        del self._ready[:n]
        return out

    @property
    def timeout(self) -> float | None:
        return self.inner.timeout  # type: ignore[no-any-return]

    def close(self) -> None:
        self.inner.close()

    # ---- what was done
    def injected(self) -> dict[str, dict[str, int]]:
        """Faults injected so far, by direction and kind, and frames and bytes seen per direction."""
        return self.engine.injected()

    def injected_summary(self) -> str:
        return self.engine.injected_summary()
