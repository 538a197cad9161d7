"""Seeded link-fault injection between the harness and a device: a pyserial-like port wrapper.

Faults are drawn per frame (per 0x00-delimited unit of bytes, as the frames are on the wire), in
each direction the spec enables, independently for each kind, from a seeded generator, so a run
with the same spec and seed injects the same faults into the same frames:

- ``drop``: one byte of the frame is lost;
- ``flip``: one bit of one byte is inverted;
- ``dup``: the whole frame arrives twice;
- ``garbage``: a burst of 1-16 random bytes (zeros included) is inserted into the frame;
- ``stall``: the frame, and everything after it, is delayed by ``stall_s`` (2 s).

``poison_window`` damages (one bit flipped) every transmission of the Infer of that window id, so
that window fails after its retry budget: it proves a failed window is reported and the run goes
on (``hil run --poison-window N``). Only this option decodes frames (with the protocol package).

Used by ``hil run --link-faults SPEC``, ``hil bench link`` and the tests.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DIRECTIONS", "FAULT_KINDS", "FaultyPort", "LinkFaults"]

FAULT_KINDS = ("drop", "flip", "dup", "garbage", "stall")
DIRECTIONS = ("both", "to-device", "from-device")


@dataclass(frozen=True)
class LinkFaults:
    """What to inject: probability per frame of each fault kind, direction(s), seed."""

    rates: dict[str, float]
    direction: str = "both"
    seed: int = 0
    stall_s: float = 2.0
    poison_window: int | None = None

    def __post_init__(self) -> None:
        for k, r in self.rates.items():
            if k not in FAULT_KINDS:
                raise ValueError(f"link fault kind {k!r} unknown; known: {', '.join(FAULT_KINDS)}")
            if not 0.0 <= r <= 1.0:
                raise ValueError(f"link fault rate {k}:{r} outside 0..1")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"link fault direction {self.direction!r} unknown; known: {', '.join(DIRECTIONS)}")

    @classmethod
    def parse(cls, spec: str, seed: int = 0, direction: str = "both") -> LinkFaults:
        """``KIND:RATE[,KIND:RATE...]``, KIND one of FAULT_KINDS or ``all``; RATE per frame, 0..1
        (``1%`` is accepted too). Example: ``flip:0.01,drop:0.005`` or ``all:1%``."""
        rates: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            kind, sep, rate_s = part.partition(":")
            if not sep:
                raise ValueError(f"link faults {spec!r}: {part!r} is not KIND:RATE")
            try:
                rate = float(rate_s[:-1]) / 100 if rate_s.endswith("%") else float(rate_s)
            except ValueError:
                raise ValueError(f"link faults {spec!r}: rate {rate_s!r} is not a number") from None
            for k in FAULT_KINDS if kind == "all" else (kind,):
                rates[k] = rate
        if not rates:
            raise ValueError(f"link faults {spec!r}: no KIND:RATE given")
        return cls(rates, direction, seed)

    def describe(self) -> str:
        kinds = ",".join(f"{k}:{r:g}" for k, r in self.rates.items()) or "none"
        poison = f"; every Infer of window {self.poison_window} damaged" if self.poison_window is not None else ""
        return f"{kinds} per frame, {self.direction}, seed {self.seed}{poison}"


@dataclass
class _Direction:
    name: str
    rng: random.Random
    enabled: bool
    partial: bytearray = field(default_factory=bytearray)
    queue: deque[tuple[float, bytes]] = field(default_factory=deque)
    hold_until: float = 0.0
    frames: int = 0
    injected: dict[str, int] = field(default_factory=dict)


class FaultyPort:
    """Wraps an open pyserial port; what passes through it in either direction may be damaged
    as ``faults`` says. Implements the part of the pyserial API the client uses."""

    def __init__(self, inner: Any, faults: LinkFaults) -> None:
        self.inner = inner
        self.faults = faults
        both = faults.direction == "both"
        self._tx = _Direction("to-device", random.Random(f"{faults.seed}:to-device"),
                              both or faults.direction == "to-device")
        self._rx = _Direction("from-device", random.Random(f"{faults.seed}:from-device"),
                              both or faults.direction == "from-device")
        self._ready = bytearray()

    # ---- fault model
    def _poisoned(self, frame: bytes) -> bool:
        from protocol import Infer, decode_frame
        from protocol.cobs import cobs_decode

        try:
            f = decode_frame(cobs_decode(frame.rstrip(b"\x00")))
        except ValueError:
            return False
        return isinstance(f.msg, Infer) and f.msg.window_id == self.faults.poison_window

    def _damage(self, d: _Direction, frame: bytes) -> None:
        d.frames += 1
        out = bytearray(frame)
        now = time.monotonic()
        copies = 1
        if d is self._tx and self.faults.poison_window is not None and self._poisoned(frame):
            d.injected["poison"] = d.injected.get("poison", 0) + 1
            out[len(out) // 2] ^= 0x01 if out[len(out) // 2] != 0x01 else 0x02  # never makes a 0x00
        if d.enabled:
            for kind in FAULT_KINDS:
                rate = self.faults.rates.get(kind, 0.0)
                if rate <= 0.0 or d.rng.random() >= rate:
                    continue
                d.injected[kind] = d.injected.get(kind, 0) + 1
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
                    d.hold_until = max(d.hold_until, now) + self.faults.stall_s
        release = max(now, d.hold_until)
        for _ in range(copies):
            d.queue.append((release, bytes(out)))

    def _split(self, d: _Direction, data: bytes) -> None:
        d.partial += data
        while True:
            end = d.partial.find(0)
            if end < 0:
                return
            frame = bytes(d.partial[: end + 1])
            del d.partial[: end + 1]
            self._damage(d, frame)

    def _due(self, d: _Direction) -> bytes:
        now = time.monotonic()
        out = bytearray()
        while d.queue and d.queue[0][0] <= now:
            out += d.queue.popleft()[1]
        return bytes(out)

    def _flush_tx(self) -> None:
        due = self._due(self._tx)
        if due:
            self.inner.write(due)
            self.inner.flush()

    # ---- pyserial surface
    def write(self, data: bytes) -> int:
        self._split(self._tx, bytes(data))
        self._flush_tx()
        return len(data)

    def flush(self) -> None:
        self._flush_tx()

    @property
    def in_waiting(self) -> int:
        self._flush_tx()
        self._ready += self._due(self._rx)
        return len(self._ready)

    def read(self, n: int = 1) -> bytes:
        self._flush_tx()
        self._ready += self._due(self._rx)
        if not self._ready:
            chunk = self.inner.read(max(1, self.inner.in_waiting or 1))
            if chunk:
                self._split(self._rx, chunk)
                self._ready += self._due(self._rx)
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
        """Faults injected so far, by direction and kind, and frames seen per direction."""
        return {d.name: {"frames": d.frames, **d.injected} for d in (self._tx, self._rx)}

    def injected_summary(self) -> str:
        parts = []
        for name, c in self.injected().items():
            kinds = ", ".join(f"{k} {v}" for k, v in c.items() if k != "frames") or "none"
            parts.append(f"{name}: {c['frames']} frames, {kinds}")
        return "; ".join(parts)
