"""Request/reply over a pyserial transport: sequence numbers, timeouts, bounded retries of
transport failures only, resync after garbage, reset detection.

No wire formats here: frames come from the ``protocol`` package.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import serial

from protocol import (
    MAX_ENCODED,
    PROTOCOL_VERSION,
    Counters,
    Deframer,
    Error,
    ErrorCode,
    Frame,
    FrameError,
    Hello,
    Infer,
    Info,
    Log,
    Message,
    Ping,
    Pong,
    Result,
    Stats,
    crc16_ccitt,
    encode_frame,
)

__all__ = [
    "DeviceClient",
    "DeviceError",
    "DeviceReset",
    "DeviceTimeout",
    "ModelMismatch",
    "ProtocolMismatch",
    "open_transport",
]


class DeviceError(RuntimeError):
    """The device answered with an Error frame, or with something that is not the reply."""


class DeviceTimeout(TimeoutError):
    """No valid reply within the timeout, after every retry."""


class ModelMismatch(RuntimeError):
    """The device runs another model than the reference the harness checks it against."""


class ProtocolMismatch(RuntimeError):
    """The device speaks another protocol version."""


@dataclass(frozen=True)
class DeviceReset:
    """The device rebooted between two hellos (boot counter changed), with its fault record."""

    old_boot: int
    new_boot: int
    fault_flags: int
    cfsr: int
    hfsr: int
    pc: int
    lr: int

    def __str__(self) -> str:
        fault = (f"HardFault: CFSR=0x{self.cfsr:08x} HFSR=0x{self.hfsr:08x} PC=0x{self.pc:08x} LR=0x{self.lr:08x}"
                 if self.fault_flags else "no fault recorded")
        return f"device reset (boot {self.old_boot} -> {self.new_boot}); {fault}"


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


@dataclass
class LinkStats:
    retries: int = 0
    bad_frames: int = 0
    logs: list[str] = field(default_factory=list)
    resets: list[DeviceReset] = field(default_factory=list)


class DeviceClient:
    """One device behind one transport.

    Args:
        ser: an open pyserial port.
        baudrate: the link's bit rate (sets the transfer part of every timeout).
        latency_budget_s: the longest the device may compute one reply.
        retries: resends of the same request (same sequence number) after a timeout.
    """

    def __init__(self, ser: serial.SerialBase, where: str, baudrate: int = 115200, latency_budget_s: float = 5.0,
                 retries: int = 2, on_log: Callable[[str], None] | None = None) -> None:
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
        self._pending: list[Frame] = []
        self._inflight: dict[int, tuple[int, bytes, Message]] = {}

    def close(self) -> None:
        self.ser.close()

    # ---- timing
    def timeout_for(self, request_bytes: int, reply_bytes: int = 128) -> float:
        """Transfer time both ways at 10 bits per byte, the latency budget and a fixed margin."""
        return (request_bytes + reply_bytes) * 10 / self.baudrate + self.latency_budget_s + 0.5

    # ---- framing
    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        return self.seq

    def _read_frames(self, deadline: float) -> list[Frame]:
        while time.monotonic() < deadline:
            try:
                chunk = self.ser.read(max(1, min(self.ser.in_waiting or 1, MAX_ENCODED)))
            except serial.SerialException as exc:
                raise ConnectionError(f"{self.where}: transport failed: {exc}") from exc
            if not chunk:
                continue
            frames = []
            for ev in self.deframer.feed(chunk):
                if isinstance(ev, FrameError):
                    self.stats.bad_frames += 1
                    continue
                if isinstance(ev.msg, Log):
                    self._on_log(ev.msg)
                    continue
                frames.append(ev)
            if frames:
                return frames
        return []

    def _on_log(self, log: Log) -> None:
        self.stats.logs.append(log.text)
        if self.on_log:
            self.on_log(f"{self.where}: device log: {log.text}")

    def send(self, msg: Message) -> int:
        seq = self._next_seq()
        self._write(encode_frame(msg, seq))
        return seq

    def _write(self, wire: bytes) -> None:
        try:
            self.ser.write(wire)
            self.ser.flush()
        except (serial.SerialException, OSError) as exc:
            raise ConnectionError(f"{self.where}: write failed: {exc}") from exc

    def receive(self, seq: int, timeout: float) -> Message:
        """The reply to ``seq``; replies to other (older) sequence numbers are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            for f in self._pending:
                if f.seq == seq:
                    self._pending.remove(f)
                    return self._check(f, seq)
            self._pending = [f for f in self._pending if _seq_after(f.seq, seq)]
            if time.monotonic() >= deadline:
                raise DeviceTimeout(f"{self.where}: no reply to seq {seq} within {timeout:.1f} s")
            self._pending += self._read_frames(deadline)

    def _check(self, f: Frame, seq: int) -> Message:
        if isinstance(f.msg, Error):
            code = ErrorCode(f.msg.code).name if f.msg.code in ErrorCode._value2member_map_ else f.msg.code
            if f.msg.code == ErrorCode.VERSION:
                raise ProtocolMismatch(f"{self.where}: device speaks protocol version {f.version}, harness "
                                       f"speaks {PROTOCOL_VERSION}")
            raise DeviceError(f"{self.where}: device refused seq {seq}: {code} (detail {f.msg.detail})")
        return f.msg

    def request(self, msg: Message, expect: type, reply_bytes: int = 128) -> Message:
        """Send ``msg`` and return its reply; on a timeout resend the *same* frame (same sequence
        number: the device answers from its reply cache and never runs an inference twice)."""
        seq, wire = self._start(msg)
        return self._finish(seq, wire, msg, expect, reply_bytes)

    def _start(self, msg: Message) -> tuple[int, bytes]:
        seq = self._next_seq()
        wire = encode_frame(msg, seq)
        self._write(wire)
        return seq, wire

    def _finish(self, seq: int, wire: bytes, msg: Message, expect: type, reply_bytes: int = 128) -> Message:
        timeout = self.timeout_for(len(wire), reply_bytes)
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                self._write(b"\x00" + wire)  # end any half-frame on the device side, then resend
            try:
                reply = self.receive(seq, timeout)
            except DeviceTimeout:
                continue
            if not isinstance(reply, expect):
                raise DeviceError(f"{self.where}: expected {expect.__name__} for seq {seq}, got {type(reply).__name__}")
            return reply
        raise DeviceTimeout(f"{self.where}: no reply to {type(msg).__name__} seq {seq} after "
                            f"{self.retries + 1} attempts of {timeout:.1f} s")

    # ---- messages
    def hello(self) -> Info:
        self._write(b"\x00")  # end any garbage the device may hold
        info = self.request(Hello(), Info)
        assert isinstance(info, Info)
        if info.protocol_version != PROTOCOL_VERSION:
            raise ProtocolMismatch(f"{self.where}: device reports protocol {info.protocol_version}, harness speaks "
                                   f"{PROTOCOL_VERSION}")
        if self.info is not None and info.boot_counter != self.info.boot_counter:
            self.stats.resets.append(DeviceReset(self.info.boot_counter, info.boot_counter, info.fault_flags,
                                                 info.fault_cfsr, info.fault_hfsr, info.fault_pc, info.fault_lr))
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
        """Classify one window (int16[T, C]); checks the window id and the CRC of what arrived."""
        self.start_infer(window_id, window)
        return self.finish_infer(window_id, window)

    def start_infer(self, window_id: int, window: np.ndarray) -> None:
        """Send an Infer without waiting (pipelining); finish_infer collects replies in order."""
        x = np.ascontiguousarray(window, dtype="<i2")
        msg = Infer(window_id, int(x.shape[0]), int(x.shape[1]), tuple(int(v) for v in x.ravel()))
        seq, wire = self._start(msg)
        self._inflight[window_id] = (seq, wire, msg)

    def finish_infer(self, window_id: int, window: np.ndarray) -> Result:
        seq, wire, msg = self._inflight.pop(window_id)
        r = self._finish(seq, wire, msg, Result)
        assert isinstance(r, Result)
        self.verify_result(r, window_id, np.ascontiguousarray(window, dtype="<i2"))
        return r

    @staticmethod
    def verify_result(r: Result, window_id: int, x: np.ndarray) -> None:
        if r.window_id != window_id:
            raise DeviceError(f"result for window {r.window_id}, expected {window_id}")
        crc = crc16_ccitt(np.ascontiguousarray(x, dtype="<i2").tobytes())
        if r.input_crc != crc:
            raise DeviceError(f"window {window_id}: device received samples with CRC 0x{r.input_crc:04x}, "
                              f"sent 0x{crc:04x}: the window was corrupted in transit")

    def ping(self, data: bytes) -> bytes:
        r = self.request(Ping(data), Pong, reply_bytes=len(data) + 16)
        assert isinstance(r, Pong)
        return r.data

    def counters(self) -> Counters:
        r = self.request(Stats(), Counters)
        assert isinstance(r, Counters)
        return r


def _seq_after(a: int, b: int) -> bool:
    """True when sequence number a is newer than b (mod 2^16)."""
    return 0 < ((a - b) & 0xFFFF) < 0x8000
