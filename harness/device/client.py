"""Request/reply over a pyserial transport: sequence numbers, immediate resends after link faults,
timeouts, bounded retries, resync after garbage, end-to-end input check, reset detection.

No wire formats here: frames come from the ``protocol`` package.
"""

from __future__ import annotations

import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import serial

from protocol import (
    MAX_ENCODED,
    MAX_PARTS,
    PROTOCOL_VERSION,
    Counters,
    Deframer,
    Error,
    ErrorCode,
    Frame,
    FrameError,
    Held,
    Hello,
    Infer,
    Info,
    Log,
    Message,
    Part,
    Ping,
    Pong,
    Result,
    RotationSet,
    Run,
    Samples,
    SamplesAck,
    SetRotation,
    Stats,
    StreamStart,
    StreamStarted,
    crc32_input,
    encode_frame,
)

__all__ = [
    "BOOT_LOG",
    "LINK_ERROR_CODES",
    "CorruptedInput",
    "DeviceClient",
    "DeviceError",
    "DeviceRebooted",
    "DeviceReset",
    "DeviceTimeout",
    "LinkStats",
    "ModelMismatch",
    "ProtocolMismatch",
    "WindowLinkFailure",
    "fault_text",
    "open_transport",
]


BOOT_LOG = "boot"
"""The text of the Log frame the firmware sends once at every boot, before it answers anything."""


class DeviceError(RuntimeError):
    """The device answered with an Error frame, or with something that is not the reply."""


class DeviceTimeout(TimeoutError):
    """No valid reply within the per-request retry budget; ``reasons``: why each resend was made."""

    def __init__(self, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.reasons = list(reasons or [])


class WindowLinkFailure(DeviceTimeout):
    """Every attempt of a request was damaged on the link, up to the retry budget."""


class DeviceRebooted(DeviceError):
    """The device sent its boot frame while this request was outstanding: it reset (a fault, a
    watchdog, a power glitch) in the middle of it, so no reply to it can be trusted."""

    def __init__(self, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons or []


class CorruptedInput(DeviceError):
    """The device received other samples than were sent (end-to-end CRC-32 mismatch)."""


class ModelMismatch(RuntimeError):
    """The device runs another model than the reference the harness checks it against."""


class ProtocolMismatch(RuntimeError):
    """The device speaks another protocol version."""


@dataclass(frozen=True)
class DeviceReset:
    """The device rebooted (boot counter changed), with its fault record and where it was seen."""

    old_boot: int
    new_boot: int
    fault_flags: int
    cfsr: int
    hfsr: int
    pc: int
    lr: int
    at_window: int | None = None
    """index of the window after which the reset was detected (None: at a hello outside the run)"""

    def __str__(self) -> str:
        where = f" detected at window {self.at_window}" if self.at_window is not None else ""
        return f"device reset (boot {self.old_boot} -> {self.new_boot}){where}; {fault_text(self)}"


def fault_text(r: DeviceReset | Info) -> str:
    """The fault record of an Info or a DeviceReset, in words."""
    if isinstance(r, Info):
        flags, cfsr, hfsr, pc, lr = r.fault_flags, r.fault_cfsr, r.fault_hfsr, r.fault_pc, r.fault_lr
    else:
        flags, cfsr, hfsr, pc, lr = r.fault_flags, r.cfsr, r.hfsr, r.pc, r.lr
    if not flags:
        return "no fault recorded"
    return f"HardFault: CFSR=0x{cfsr:08x} HFSR=0x{hfsr:08x} PC=0x{pc:08x} LR=0x{lr:08x}"


def open_transport(url: str, timeout: float = 0.05, connect_timeout: float = 10.0) -> serial.SerialBase:
    """Open a pyserial URL (``socket://host:port`` for emulators, ``/dev/tty*`` for boards), with
    TCP_NODELAY on sockets. Retries the connection until ``connect_timeout``.

    pyserial's open() discards whatever the peer has already sent (reset_input_buffer); an emulator
    started by our connection may already have sent its boot log by then, so that flush is skipped
    here: no byte the device sends is lost to opening the port."""
    deadline = time.monotonic() + connect_timeout
    while True:
        ser = serial.serial_for_url(url, do_not_open=True, timeout=timeout, write_timeout=5.0, baudrate=115200)
        ser.reset_input_buffer = lambda: None  # type: ignore[method-assign]
        try:
            ser.open()
            break
        except serial.SerialException as exc:
            if time.monotonic() > deadline:
                raise ConnectionError(f"cannot open {url}: {exc}") from exc
            time.sleep(0.05)
        finally:
            del ser.reset_input_buffer
    sock = getattr(ser, "_socket", None)
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ser


PART_BYTES = 48
"""Sample bytes per Part (8 samples of 3 axes) once the link has shown damage: chosen by
``hil bench link --part-bytes``, see docs/link.md."""
MISSING_COPIES = 2
"""Copies of each missing part in a resend round: where a part is lost with probability q (about
0.5 for 70 wire bytes at 1 % per byte), a round then misses it with q squared, so eight rounds
fail about once in 65,000 parts instead of once in 260; the device takes a repeat as the same part."""
HISTORY = 32
"""Windows over which the link's damage rate is estimated (the adaptive part size)."""
_PROBE = bytes(range(1, 49))
PART_OVERHEAD = len(encode_frame(Part(1, 1, 50, 3, 48, 0, _PROBE), 1)) - len(_PROBE)
"""Wire bytes of a Part besides its samples (header, CRC, COBS, delimiter)."""
WHOLE_OVERHEAD = len(encode_frame(Infer(1, 8, 3, tuple(range(1, 25))), 1)) - len(_PROBE)
"""Wire bytes of a whole-window Infer besides its samples."""
RUN_BYTES = len(encode_frame(Run(1, 1, 50, 3), 1))


def expected_wire_bytes(n_bytes: int, size: int, p: float) -> float:
    """Wire bytes expected to bring ``n_bytes`` sample bytes across in parts of ``size`` (0: one
    Infer) when each wire byte is damaged with probability ``p``: a frame of L bytes arrives intact
    with probability (1 - p)^L and is sent until it does (a part missing from Held, a whole Infer
    again), so it costs L / (1 - p)^L."""
    if not size or size >= n_bytes:
        lens = [n_bytes + WHOLE_OVERHEAD]
    else:
        full, last = divmod(n_bytes, size)
        lens = [size + PART_OVERHEAD] * full + ([last + PART_OVERHEAD] if last else []) + [RUN_BYTES]
    return sum(n / (1.0 - p) ** n for n in lens) if p < 1.0 else float("inf")

LINK_ERROR_CODES = frozenset({ErrorCode.CRC, ErrorCode.COBS, ErrorCode.LENGTH, ErrorCode.OVERRUN})
"""Error codes that say the frame was damaged on the link: the request is resent at once."""
UNTRUSTED_SEQ = 0xFFFF


@dataclass
class LinkStats:
    """Link statistics of one client: every resend with its reason, bad and stale frames, resets."""

    retries: int = 0
    parts_sent: int = 0
    """Part frames written, resends included"""
    windows_whole: int = 0
    """windows sent as one Infer frame"""
    windows_in_parts: int = 0
    """windows sent as Parts and a Run (a whole window sent again in parts counts in both)"""
    bad_frames: int = 0
    stale_frames: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    resets: list[DeviceReset] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"retries": self.retries, "parts_sent": self.parts_sent, "windows_whole": self.windows_whole,
                "windows_in_parts": self.windows_in_parts, "bad_frames": self.bad_frames,
                "stale_frames": self.stale_frames,
                "retry_reasons": dict(sorted(self.retry_reasons.items()))}


@dataclass
class _Pending:
    """One request in flight."""

    msg: Message
    wire: bytes
    expect: type | tuple[type, ...]
    timeout: float
    sent_at: float
    reasons: list[str] = field(default_factory=list)
    reply: Frame | None = None
    replied_at: float = 0.0
    gave_up: str | None = None
    """set when a resend was due but the budget was spent: the request fails at once with this"""
    rebooted: bool = False
    """the device's boot frame arrived while this request was outstanding"""
    blind: int = 0
    """resends made on evidence attributed to it by order (of ``reasons``)"""
    to_parts: bool = False
    """a whole window's Infer that goes again as Parts, not whole, when the request was damaged"""
    switch: str | None = None
    """set instead of a resend of a ``to_parts`` request: the reason the window goes in parts"""

    @property
    def counted(self) -> int:
        """Resends that count against the retry budget: those on evidence that named it, and timeouts."""
        return len(self.reasons) - self.blind


@dataclass
class _Transfer:
    """A window in flight: sent as Parts and a Run, or as one Infer (``part_bytes`` 0)."""

    transfer: int
    n_samples: int
    channels: int
    data: bytes
    part_bytes: int
    run_seq: int
    """the Run (or the Infer) whose reply is the Result"""

    @property
    def n_parts(self) -> int:
        return -(-len(self.data) // self.part_bytes) if self.part_bytes else 0


def _whole(window_id: int, n_samples: int, channels: int, data: bytes) -> Infer:
    """The Infer request that carries a whole window (``data``: its little-endian int16 samples)."""
    return Infer(window_id, n_samples, channels, tuple(np.frombuffer(data, "<i2").tolist()))


class _SwitchToParts(Exception):
    """A whole window's Infer was damaged on its way: it is sent again as Parts."""

    def __init__(self, reason: str, reasons: list[str]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reasons = reasons


class DeviceClient:
    """One device behind one transport.

    Every request gets a new sequence number. A request is resent with the *same* sequence
    number (the device answers a repeat from its reply cache, so an inference never runs twice)
    at once when the device reports a damaged frame (Error CRC/COBS/LENGTH/OVERRUN for it, or an
    Error whose header could not be trusted), when a damaged frame arrives while it waits, and
    after a timeout; at most ``retries`` resends per request (besides those on evidence attributed
    by order, BLIND_RESENDS). Only replies to sequence numbers
    that were sent and are still outstanding are accepted; anything else is counted as stale.

    Evidence that names no sequence number (an untrusted Error, a damaged reply) is attributed by
    order: the device answers frames in the order they arrive, so it concerns the request whose
    last transmission is the oldest of those without a reply (a resend goes to the back of that
    order; with one request outstanding it is that one, its resend damaged too). By the same
    order, a reply to a request sent once means every request transmitted before it that has no
    reply was lost: those are resent at once. A superfluous resend costs one repeat answered from
    the cache; a missed one would cost a timeout.

    Windows go as Parts of ``part_bytes`` sample bytes, each its own frame with its own CRC and no
    reply, then a Run (protocol version 3): a damaged byte costs one part; a Run that finds a part
    missing is answered with Held (the parts the device holds), and only the missing parts are
    sent again (MISSING_COPIES of each), with a new Run. Parts cost header bytes (a 300-byte
    window is 317 bytes as one Infer frame, 473 as parts of 48), so with ``adaptive`` the size
    follows the link: the damage seen over the last HISTORY windows (resends and missing parts
    per wire byte, both ways) estimates the byte error rate, and each window goes whole or in
    parts of ``part_bytes`` x 2^k, whichever expected_wire_bytes says costs least at that rate (a
    clean link: whole windows). A whole window whose request was damaged or lost is sent again in
    parts of the best part size (a damaged reply is asked for again whole: the device answers
    from its cache). ``part_bytes`` 0 sends every window as one Infer frame (as at depth > 1,
    where two windows would share the device's one staging buffer).

    Args:
        ser: an open pyserial port.
        baudrate: the link's bit rate (sets the transfer part of every timeout).
        latency_budget_s: the longest the device may compute one reply.
        retries: resends of one request before it fails (and rounds of part resends of one window).
        part_bytes: sample bytes per Part (even; 0: whole windows as one Infer); with ``adaptive``
            the smallest part, used after damage.
        adaptive: let the part size follow the link (above); False: always parts of ``part_bytes``.
    """

    def __init__(self, ser: serial.SerialBase, where: str, baudrate: int = 115200, latency_budget_s: float = 5.0,
                 retries: int = 8, on_log: Callable[[str], None] | None = None, part_bytes: int = PART_BYTES,
                 adaptive: bool = True) -> None:
        if part_bytes < 0 or part_bytes % 2:
            raise ValueError(f"part_bytes {part_bytes}: an even number of bytes (whole int16 values), or 0 for "
                             "whole windows")
        self.ser = ser
        self.where = where
        self.baudrate = baudrate
        self.latency_budget_s = latency_budget_s
        self.retries = retries
        self.deframer = Deframer()
        self.seq = 0
        self.info: Info | None = None
        self.stats = LinkStats()
        self.on_log = on_log
        self._out: dict[int, _Pending] = {}
        self.part_bytes = part_bytes
        self.adaptive = adaptive
        self._history: deque[tuple[int, int]] = deque(maxlen=HISTORY)
        """with ``adaptive``: (wire bytes, damage events) of each recent window"""
        self._wire = self._damage = self._wire_mark = self._damage_mark = 0
        self._transfer = 0
        self._inflight: dict[int, _Transfer] = {}
        """window id -> its transfer in flight"""

        self._rtt: dict[type, tuple[float, float]] = {}
        """per request type: smoothed round trip and its mean deviation (RFC 6298), from replies
        that needed no resend"""

    def close(self) -> None:
        self.ser.close()

    # ---- timing
    def timeout_for(self, request_bytes: int, reply_bytes: int = 128) -> float:
        """Transfer time both ways at 10 bits per byte, the latency budget and a fixed margin."""
        return (request_bytes + reply_bytes) * 10 / self.baudrate + self.latency_budget_s + 0.5

    MIN_RTO_S = 1.0
    """Floor of the adaptive timeout: host scheduling on a loaded machine (CI) can delay a reply by
    hundreds of ms, and a needless resend during an inference perturbs an emulator's time base."""

    def _attempt_timeout(self, p: _Pending) -> float:
        """How long to wait for this attempt: the static timeout until round trips of this request
        type were measured, then 2 srtt + 4 rttvar (at least MIN_RTO_S), doubled per resend, never
        above the static timeout. A late reply to an early resend is harmless: the device answers
        the repeat from its cache."""
        est = self._rtt.get(type(p.msg))
        if est is None:
            return p.timeout
        rto = max(self.MIN_RTO_S, 2 * est[0] + 4 * est[1]) * 2 ** p.counted
        return min(p.timeout, rto)

    def _measured(self, p: _Pending) -> None:
        if p.reasons:
            return  # Karn: a reply after a resend cannot be matched to one transmission
        rtt = p.replied_at - p.sent_at
        est = self._rtt.get(type(p.msg))
        if est is None:
            self._rtt[type(p.msg)] = (rtt, rtt / 2)
        else:
            srtt, var = est
            self._rtt[type(p.msg)] = (0.875 * srtt + 0.125 * rtt, 0.75 * var + 0.25 * abs(srtt - rtt))

    # ---- framing
    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        if self.seq == UNTRUSTED_SEQ:  # 0xFFFF marks an untrusted header in Error replies
            self.seq = 1
        return self.seq

    def _write(self, wire: bytes) -> None:
        """Write frames, nothing after their last delimiter: a byte that arrived while the device
        computes would raise a UART interrupt inside the measured inference and change its
        instruction count (an extra delimiter after every write did: 365,894 -> 365,923)."""
        self._wire += len(wire)
        try:
            self.ser.write(wire)
            self.ser.flush()
        except (serial.SerialException, OSError) as exc:
            raise ConnectionError(f"{self.where}: write failed: {exc}") from exc

    BLIND_RESENDS = 32
    """Resends of one request on evidence attributed to it by order, at most. They are guesses (a
    damaged Part's Error lands on the Run after it) and cheap ones, so they count apart from
    ``retries``, and they neither back off the timeout nor spend the budget; past this many the
    evidence is ignored and the timeout still stands."""

    def _resend(self, seq: int, reason: str, blind: bool = False, request_damaged: bool = True) -> None:
        p = self._out[seq]
        self._damage += 1
        if p.to_parts and request_damaged:
            if p.switch is None:
                p.switch = reason  # the waiter sends the window again in parts
            return
        if blind:
            if p.blind >= self.BLIND_RESENDS:
                return
            p.blind += 1
        elif p.counted >= self.retries:
            p.gave_up = reason  # budget spent: the waiter fails it now, no timeout to wait for
            return
        p.reasons.append(reason)
        self.stats.retries += 1
        self.stats.retry_reasons[reason] = self.stats.retry_reasons.get(reason, 0) + 1
        p.sent_at = time.monotonic()
        self._write(b"\x00" + p.wire)  # end any half-frame on the device side, then resend

    def _resend_unanswered(self, reason: str, request_damaged: bool = True) -> None:
        """Resend the request this evidence (naming no sequence number) is about, by order (class doc)."""
        waiting = [(p.sent_at, seq) for seq, p in self._out.items()
                   if p.reply is None and p.gave_up is None and p.switch is None]
        if waiting:
            self._resend(min(waiting)[1], reason, blind=True, request_damaged=request_damaged)

    def _pump(self, deadline: float) -> None:
        """Read until ``deadline`` or until at least one chunk was handled; sort what arrived."""
        while time.monotonic() < deadline:
            try:
                chunk = self.ser.read(max(1, min(self.ser.in_waiting or 1, MAX_ENCODED)))
            except serial.SerialException as exc:
                raise ConnectionError(f"{self.where}: transport failed: {exc}") from exc
            if not chunk:
                continue
            self._wire += len(chunk)
            for ev in self.deframer.feed(chunk):
                self._on_event(ev)
            return

    def _on_event(self, ev: Frame | FrameError) -> None:
        if isinstance(ev, FrameError):
            self.stats.bad_frames += 1
            self._resend_unanswered(f"damaged reply ({ev.code.name})", request_damaged=False)
            return
        if isinstance(ev.msg, Log):
            self._on_log(ev.msg)
            return
        if isinstance(ev.msg, Error) and ev.msg.code in LINK_ERROR_CODES:
            name = ErrorCode(ev.msg.code).name
            p = self._out.get(ev.seq)
            if ev.seq != UNTRUSTED_SEQ and p is not None and p.reply is None:
                self._resend(ev.seq, f"device saw a damaged request ({name})")
            else:
                self._resend_unanswered(f"device saw a damaged frame ({name}, seq untrusted)")
            return
        p = self._out.get(ev.seq)
        if p is None or p.reply is not None:
            self.stats.stale_frames += 1  # a duplicate, or a reply to a request no longer outstanding
            return
        p.reply = ev
        p.replied_at = time.monotonic()
        if not p.reasons:  # sent once: every request transmitted before it and not answered was lost
            for seq, q in list(self._out.items()):
                if q.reply is None and q.gave_up is None and q.sent_at < p.sent_at:
                    self._resend(seq, "device answered a later request first", blind=True)

    def _on_log(self, log: Log) -> None:
        self.stats.logs.append(log.text)
        if log.text == BOOT_LOG and self.info is not None:
            # a boot after the first hello: every request in flight died with the old boot
            for p in self._out.values():
                if p.reply is None:
                    p.rebooted = True
        if self.on_log:
            self.on_log(f"{self.where}: device log: {log.text}")

    # ---- requests
    def _start(self, msg: Message, expect: type | tuple[type, ...], reply_bytes: int = 128) -> int:
        seq = self._next_seq()
        wire = encode_frame(msg, seq)
        self._out[seq] = _Pending(msg, wire, expect, self.timeout_for(len(wire), reply_bytes), time.monotonic())
        self._write(wire)
        return seq

    def _finish(self, seq: int) -> tuple[Message, list[str]]:
        """The reply to ``seq`` and the reasons of its resends. Raises DeviceTimeout when the
        budget is spent, DeviceError when the device refused the request."""
        p = self._out[seq]
        try:
            while p.reply is None:
                if p.rebooted:
                    raise DeviceRebooted(
                        f"{self.where}: the device rebooted (its boot frame arrived) while {type(p.msg).__name__} "
                        f"seq {seq} was outstanding", p.reasons)
                if p.switch is not None:
                    raise _SwitchToParts(p.switch, p.reasons)
                if p.gave_up is not None:
                    raise WindowLinkFailure(
                        f"{self.where}: {type(p.msg).__name__} seq {seq} failed on the link {len(p.reasons) + 1} "
                        f"times, the last: {p.gave_up} (resends: {_count(p.reasons)})", p.reasons)
                deadline = p.sent_at + self._attempt_timeout(p)
                if time.monotonic() >= deadline:
                    if p.counted >= self.retries:
                        raise DeviceTimeout(
                            f"{self.where}: no reply to {type(p.msg).__name__} seq {seq} after "
                            f"{len(p.reasons) + 1} attempts (resends: {_count(p.reasons)})", p.reasons)
                    self._resend(seq, "timeout")
                    continue
                self._pump(deadline)
            if p.rebooted:  # a reply that came with or after the boot frame is from the new boot
                raise DeviceRebooted(
                    f"{self.where}: the device rebooted (its boot frame arrived) while {type(p.msg).__name__} "
                    f"seq {seq} was outstanding", p.reasons)
            self._measured(p)
            return self._check(p.reply, seq, p.expect), p.reasons
        finally:
            del self._out[seq]

    def _check(self, f: Frame, seq: int, expect: type | tuple[type, ...]) -> Message:
        if isinstance(f.msg, Error):
            code = ErrorCode(f.msg.code).name if f.msg.code in ErrorCode._value2member_map_ else f.msg.code
            if f.msg.code == ErrorCode.VERSION:
                raise ProtocolMismatch(f"{self.where}: device speaks protocol version {f.version}, harness "
                                       f"speaks {PROTOCOL_VERSION}")
            raise DeviceError(f"{self.where}: device refused seq {seq}: {code} (detail {f.msg.detail})")
        if not isinstance(f.msg, expect):
            want = " or ".join(e.__name__ for e in expect) if isinstance(expect, tuple) else expect.__name__
            raise DeviceError(f"{self.where}: expected {want} for seq {seq}, got {type(f.msg).__name__}")
        return f.msg

    def request(self, msg: Message, expect: type, reply_bytes: int = 128) -> Message:
        """Send ``msg`` and return its reply (resent as the class doc says)."""
        return self._finish(self._start(msg, expect, reply_bytes))[0]

    # ---- messages
    def hello(self, at_window: int | None = None) -> Info:
        """Who the device is. A changed boot counter is recorded as a DeviceReset (with
        ``at_window``, the window index after which it was seen)."""
        self._write(b"\x00")  # end any garbage the device may hold
        info = self.request(Hello(), Info)
        assert isinstance(info, Info)
        if info.protocol_version != PROTOCOL_VERSION:
            raise ProtocolMismatch(f"{self.where}: device reports protocol {info.protocol_version}, harness speaks "
                                   f"{PROTOCOL_VERSION}")
        if self.info is not None and info.boot_counter != self.info.boot_counter:
            self.stats.resets.append(DeviceReset(self.info.boot_counter, info.boot_counter, info.fault_flags,
                                                 info.fault_cfsr, info.fault_hfsr, info.fault_pc, info.fault_lr,
                                                 at_window))
        self.info = info
        return info

    def check_model(self, expected_hash: bytes, what: str) -> None:
        """Refuse a device whose model hash differs from the reference's."""
        assert self.info is not None, "hello() first"
        if self.info.model_hash != expected_hash:
            raise ModelMismatch(
                f"{self.where}: device model hash {self.info.model_hash.hex()} (variant {self.info.variant}, build "
                f"{self.info.build_id}) differs from the reference {what} hash {expected_hash.hex()}: wrong firmware "
                "on the device, or the reference is stale (re-run `hil export` and rebuild)")

    def infer(self, window_id: int, window: np.ndarray) -> Result:
        """Classify one window (int16[T, C]); checks the window id and the CRC-32 of what arrived."""
        self.start_infer(window_id, window)
        return self.finish_infer(window_id, window)[0]

    def start_infer(self, window_id: int, window: np.ndarray, whole: bool = False) -> None:
        """Send a window without waiting (pipelining); finish_infer collects its reply. The window
        goes as Parts and a Run, or as one Infer with ``whole`` (or ``part_bytes`` 0, or a window
        no larger than one part)."""
        x = np.ascontiguousarray(window, dtype="<i2")
        n, ch = int(x.shape[0]), int(x.shape[1])
        data = x.tobytes()
        self._transfer = self._transfer % 0xFFFF + 1
        size = self.part_size(len(data)) if self.adaptive and self.part_bytes else self.part_bytes
        if whole or not size or len(data) <= size:
            seq = self._start(_whole(window_id, n, ch, data), Result)
            self._out[seq].to_parts = bool(self.adaptive and self.part_bytes and not whole
                                           and len(data) > self.part_bytes)
            self._inflight[window_id] = _Transfer(self._transfer, n, ch, data, 0, seq)
            self.stats.windows_whole += 1
            return
        t = _Transfer(self._transfer, n, ch, data, size, 0)
        self._begin_parts(window_id, t)
        self._inflight[window_id] = t

    def _begin_parts(self, window_id: int, t: _Transfer) -> None:
        """Send transfer ``t`` as Parts (at most MAX_PARTS of them) and its Run."""
        self.stats.windows_in_parts += 1
        t.part_bytes = max(t.part_bytes, (-(-len(t.data) // MAX_PARTS) + 1) // 2 * 2)
        self._send_parts(window_id, t, range(t.n_parts))
        t.run_seq = self._start(Run(window_id, t.transfer, t.n_samples, t.channels), (Result, Held))

    def _send_parts(self, window_id: int, t: _Transfer, which: range | list[int]) -> None:
        """Write these parts (no reply comes to a Part: the Run's reply says what arrived)."""
        pb = t.part_bytes
        wire = b"".join(encode_frame(Part(window_id, t.transfer, t.n_samples, t.channels, pb, i,
                                          t.data[i * pb:(i + 1) * pb]), self._next_seq()) for i in which)
        self.stats.parts_sent += len(which)
        self._write(wire)

    def _finish_transfer(self, window_id: int, t: _Transfer) -> tuple[Result, list[str]]:
        """The Result of one transfer. A Run answered with Held (a part missing) has the missing
        parts sent again and a new Run, at most ``retries`` rounds."""
        reasons: list[str] = []
        for rounds in range(self.retries + 1):
            try:
                r, why = self._finish(t.run_seq)
            except _SwitchToParts as sw:
                reasons += [*sw.reasons, sw.reason]
                self.stats.retries += 1
                key = "whole window damaged: sent in parts"
                self.stats.retry_reasons[key] = self.stats.retry_reasons.get(key, 0) + 1
                self._transfer = self._transfer % 0xFFFF + 1
                t.transfer, t.part_bytes = self._transfer, self.part_size(len(t.data), whole=False)
                self._begin_parts(window_id, t)
                continue
            except DeviceError as exc:
                if not t.part_bytes or "UNKNOWN_TYPE" not in str(exc):
                    raise
                # firmware that serves Infer but not Parts (a port of the protocol may leave them
                # out): from now on every window goes whole
                self.part_bytes = 0
                if self.on_log:
                    self.on_log(f"{self.where}: the device does not serve Run ({exc}): windows go as one Infer")
                t.part_bytes = 0
                t.run_seq = self._start(_whole(window_id, t.n_samples, t.channels, t.data), Result)
                r, why = self._finish(t.run_seq)
            reasons += why
            if isinstance(r, Result):
                return r, reasons
            assert isinstance(r, Held)
            if r.window_id != window_id or r.transfer != t.transfer or r.n_parts not in (0, t.n_parts):
                raise DeviceError(f"{self.where}: Held for window {r.window_id} transfer {r.transfer} in {r.n_parts} "
                                  f"parts, expected window {window_id} transfer {t.transfer} in {t.n_parts}")
            missing = [i for i in range(t.n_parts) if not r.have >> i & 1] if r.n_parts else list(range(t.n_parts))
            if rounds == self.retries:
                break
            reason = f"device missing {len(missing)} of {t.n_parts} parts"
            self._damage += len(missing)
            reasons.append(reason)
            self.stats.retries += 1
            key = "device missing parts"
            self.stats.retry_reasons[key] = self.stats.retry_reasons.get(key, 0) + 1
            self._send_parts(window_id, t, [i for i in missing for _ in range(MISSING_COPIES)])
            t.run_seq = self._start(Run(window_id, t.transfer, t.n_samples, t.channels), (Result, Held))
        raise WindowLinkFailure(f"{self.where}: window {window_id}: parts still missing after {self.retries} "
                                f"rounds of resends (resends: {_count(reasons)})", reasons)

    def finish_infer(self, window_id: int, window: np.ndarray) -> tuple[Result, list[str]]:
        """The verified Result of a window started with start_infer, and the reasons of its resends.

        A Result whose CRC-32 of the received samples differs from what was sent (a corruption the
        frame CRCs missed) is sent once more as a new transfer; a second mismatch raises
        CorruptedInput. Raises DeviceTimeout or DeviceError when the window cannot be verified."""
        x = np.ascontiguousarray(window, dtype="<i2")
        try:
            return self._finish_verified(window_id, x)
        finally:
            self._history.append((self._wire - self._wire_mark, self._damage - self._damage_mark))
            self._wire_mark, self._damage_mark = self._wire, self._damage

    def damage_rate(self) -> float:
        """Damage events per wire byte over the last HISTORY windows and the one in flight (0
        before any)."""
        wire = sum(w for w, _ in self._history) + self._wire - self._wire_mark
        damage = sum(d for _, d in self._history) + self._damage - self._damage_mark
        return damage / wire if wire else 0.0

    def part_size(self, n_bytes: int, whole: bool = True) -> int:
        """The part size for a window of ``n_bytes`` sample bytes at the estimated damage rate
        (0: whole; ``whole`` False: the best size in parts)."""
        p = min(self.damage_rate(), 0.5)
        sizes = [0] if whole else []
        size = self.part_bytes
        while size < n_bytes:
            sizes.append(size)
            size *= 2
        return min(sizes, key=lambda s: expected_wire_bytes(n_bytes, s, p), default=0)

    def _finish_verified(self, window_id: int, x: np.ndarray) -> tuple[Result, list[str]]:
        reasons: list[str] = []
        t = self._inflight.pop(window_id)
        for attempt in range(2):
            r, why = self._finish_transfer(window_id, t)
            reasons += why
            try:
                self.verify_result(r, window_id, x)
                return r, reasons
            except CorruptedInput as exc:
                if attempt:
                    raise
                reasons.append("input CRC-32 mismatch")
                self.stats.retries += 1
                self.stats.retry_reasons["input CRC-32 mismatch"] = \
                    self.stats.retry_reasons.get("input CRC-32 mismatch", 0) + 1
                if self.on_log:
                    self.on_log(str(exc))
                self.start_infer(window_id, x, whole=not t.part_bytes)
                t = self._inflight.pop(window_id)
        raise AssertionError("unreachable")

    def abandon(self, window_id: int) -> None:
        """Forget an in-flight window (its replies, if they ever come, are then stale)."""
        t = self._inflight.pop(window_id, None)
        if t is not None:
            self._out.pop(t.run_seq, None)

    @staticmethod
    def verify_result(r: Result, window_id: int, x: np.ndarray) -> None:
        if r.window_id != window_id:
            raise DeviceError(f"result for window {r.window_id}, expected {window_id}")
        crc = crc32_input(np.ascontiguousarray(x, dtype="<i2").tobytes())
        if r.input_crc != crc:
            raise CorruptedInput(f"window {window_id}: device received samples with CRC-32 0x{r.input_crc:08x}, "
                                 f"sent 0x{crc:08x}: the window was corrupted in transit")

    # ---- stream mode
    def set_rotation(self, rot_q14: tuple[int, int]) -> RotationSet:
        """Make the device apply this orientation calibration to raw samples; returns its echo with
        the calibration id, which Info then reports."""
        r = self.request(SetRotation(int(rot_q14[0]), int(rot_q14[1])), RotationSet)
        assert isinstance(r, RotationSet)
        if (r.cos_q14, r.sin_q14) != (int(rot_q14[0]), int(rot_q14[1])):
            raise DeviceError(f"{self.where}: device applies rotation {(r.cos_q14, r.sin_q14)}, asked {rot_q14}")
        return r

    def stream_start(self, hop: int) -> StreamStarted:
        r = self.request(StreamStart(hop), StreamStarted)
        assert isinstance(r, StreamStarted)
        return r

    def samples(self, stream_seq: int, first_index: int, raw: np.ndarray) -> SamplesAck:
        """Send raw int16[n, 3] counts of samples first_index.. as stream frame ``stream_seq``."""
        x = np.ascontiguousarray(raw, dtype="<i2")
        msg = Samples(stream_seq, first_index, int(x.shape[0]), tuple(int(v) for v in x.ravel()))
        r = self.request(msg, SamplesAck, reply_bytes=64)
        assert isinstance(r, SamplesAck)
        if r.stream_seq != stream_seq:
            raise DeviceError(f"{self.where}: ack for stream frame {r.stream_seq}, sent {stream_seq}")
        return r

    def ping(self, data: bytes) -> bytes:
        r = self.request(Ping(data), Pong, reply_bytes=len(data) + 16)
        assert isinstance(r, Pong)
        return r.data

    def counters(self) -> Counters:
        r = self.request(Stats(), Counters)
        assert isinstance(r, Counters)
        return r


def _count(reasons: list[str]) -> str:
    if not reasons:
        return "none"
    c: dict[str, int] = {}
    for r in reasons:
        c[r] = c.get(r, 0) + 1
    return ", ".join(f"{n} x {r}" for r, n in c.items())

