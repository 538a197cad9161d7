"""Messages: frozen dataclasses outside, construct declarations inside.

Frame (before COBS): ``version u8 | type u8 | seq u16le | length u16le | payload | crc16le``; the CRC
(CRC-16/CCITT-FALSE) covers header and payload. The construct objects below never leave this
package: callers see the dataclasses, :func:`encode_frame`, :func:`decode_frame` and the deframer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum
from typing import ClassVar

import construct as cs

from protocol.cobs import cobs_encode, max_encoded_len
from protocol.crc import crc16_ccitt
from protocol.errors import (
    CrcError,
    LengthError,
    PayloadError,
    UnknownTypeError,
    VersionError,
)

__all__ = [
    "HEADER_SIZE",
    "MAX_ENCODED",
    "MAX_FRAME",
    "MAX_PARTS",
    "MAX_PAYLOAD",
    "MAX_SCORES",
    "PROTOCOL_VERSION",
    "CheckedFrame",
    "Counters",
    "Error",
    "Frame",
    "Held",
    "Hello",
    "Infer",
    "Info",
    "Log",
    "Message",
    "MsgType",
    "Part",
    "Ping",
    "Pong",
    "Result",
    "RotationSet",
    "Run",
    "Samples",
    "SamplesAck",
    "ScoreKind",
    "SetRotation",
    "Stats",
    "StreamStart",
    "StreamStarted",
    "TimeBase",
    "Variant",
    "check_frame",
    "decode_frame",
    "encode_frame",
    "encode_raw",
    "message_types",
]

PROTOCOL_VERSION = 3
"""2: Result.input_crc became a CRC-32 (was the frame's CRC-16 over the same bytes). 3: windows may
be sent in parts (Part, Run, Held), each part a frame with its own CRC, so a damaged byte costs a
part of a window, not the whole."""
MAX_PAYLOAD = 1600
"""Largest payload either side accepts: a 256-sample 3-axis window (1,536 bytes) plus its header."""
MAX_SCORES = 8

_Header = cs.Struct("version" / cs.Int8ul, "type" / cs.Int8ul, "seq" / cs.Int16ul, "length" / cs.Int16ul)
HEADER_SIZE: int = _Header.sizeof()
CRC_SIZE = 2
MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE
MAX_ENCODED = max_encoded_len(MAX_FRAME) + 1
"""Encoded frame with its delimiter, at most."""


class MsgType(IntEnum):
    HELLO = 0x01
    INFER = 0x02
    PING = 0x03
    STATS = 0x04
    SET_ROTATION = 0x05
    STREAM_START = 0x06
    SAMPLES = 0x07
    PART = 0x08
    RUN = 0x09
    INFO = 0x81
    RESULT = 0x82
    PONG = 0x83
    COUNTERS = 0x84
    ROTATION_SET = 0x85
    STREAM_STARTED = 0x86
    SAMPLES_ACK = 0x87
    HELD = 0x88
    LOG = 0xF0
    ERROR = 0xFF


class Variant(IntEnum):
    FLOAT32 = 0
    Q_W8A16 = 1
    Q_W16A16 = 2
    Q_W8A8 = 3


class ScoreKind(IntEnum):
    """How the scores of a Result are encoded."""

    INT32_Q = 0
    """int32 logits in the Q format the Info message states (output_frac_bits)."""
    FLOAT32 = 1
    """IEEE-754 float32 logits."""


class TimeBase(IntEnum):
    DWT_CYCLES = 0
    """DWT CYCCNT: core cycles on silicon. Renode's DWT model counts virtual time x clock instead
    (instructions / PerformanceInMips in quanta): the harness labels that by target, not by this value."""
    SYSTICK_ICOUNT = 1
    """SysTick under QEMU -icount: emulated instructions (the harness converts them to time counting
    one instruction as one cycle; harness.bench.cycles estimates real cycles from QEMU's trace)."""
    NONE = 2


class _Msg:
    TYPE: ClassVar[MsgType]
    _SCHEMA: ClassVar[cs.Construct]


_MODEL_HASH_LEN = 8
_INFO = cs.Struct(
    "protocol_version" / cs.Int8ul,
    "board" / cs.PaddedString(16, "ascii"),
    "build_id" / cs.PaddedString(24, "ascii"),
    "model_hash" / cs.Bytes(_MODEL_HASH_LEN),
    "variant" / cs.Int8ul,
    "window_len" / cs.Int16ul,
    "channels" / cs.Int8ul,
    "n_classes" / cs.Int8ul,
    "output_frac_bits" / cs.Int8sl,
    "clock_hz" / cs.Int32ul,
    "time_base" / cs.Int8ul,
    "max_payload" / cs.Int16ul,
    "boot_counter" / cs.Int32ul,
    "fault_flags" / cs.Int32ul,
    "fault_cfsr" / cs.Int32ul,
    "fault_hfsr" / cs.Int32ul,
    "fault_pc" / cs.Int32ul,
    "fault_lr" / cs.Int32ul,
    "stack_used" / cs.Int32ul,
    "calibration_id" / cs.Int32ul,
    cs.Terminated,
)


@dataclass(frozen=True)
class Hello(_Msg):
    TYPE = MsgType.HELLO
    _SCHEMA = cs.Struct(cs.Terminated)


@dataclass(frozen=True)
class Info(_Msg):
    """Who the device is and what model it runs. ``fault_flags`` != 0: the last boot faulted."""

    TYPE = MsgType.INFO
    _SCHEMA = _INFO
    protocol_version: int
    board: str
    build_id: str
    model_hash: bytes
    variant: int
    window_len: int
    channels: int
    n_classes: int
    output_frac_bits: int
    clock_hz: int
    time_base: int
    max_payload: int
    boot_counter: int
    fault_flags: int = 0
    fault_cfsr: int = 0
    fault_hfsr: int = 0
    fault_pc: int = 0
    fault_lr: int = 0
    stack_used: int = 0
    """Stack high-water mark in bytes, measured on the device since boot."""
    calibration_id: int = 0
    """CRC-32 of the orientation rotation the device applies in stream mode (SetRotation), 0: none."""


_INFER = cs.Struct(
    "window_id" / cs.Int32ul,
    "n_samples" / cs.Int16ul,
    "channels" / cs.Int8ul,
    "samples" / cs.Array(cs.this.n_samples * cs.this.channels, cs.Int16sl),
    cs.Terminated,
)


@dataclass(frozen=True)
class Infer(_Msg):
    """Classify one window: ``samples`` is int16 counts, sample-major (x0 y0 z0 x1 ...)."""

    TYPE = MsgType.INFER
    _SCHEMA = _INFER
    window_id: int
    n_samples: int
    channels: int
    samples: tuple[int, ...]


_RESULT = cs.Struct(
    "window_id" / cs.Int32ul,
    "cls" / cs.Int8ul,
    "score_kind" / cs.Int8ul,
    "n_scores" / cs.Int8ul,
    "scores"
    / cs.Switch(
        cs.this.score_kind,
        {
            ScoreKind.INT32_Q: cs.Array(cs.this.n_scores, cs.Int32sl),
            ScoreKind.FLOAT32: cs.Array(cs.this.n_scores, cs.Float32l),
        },
        default=cs.Error,
    ),
    "cycles" / cs.Int32ul,
    "input_crc" / cs.Int32ul,
    cs.Terminated,
)


@dataclass(frozen=True)
class Result(_Msg):
    """One inference: class, logits, device time (in the Info's time base), and ``input_crc``: the
    CRC-32 (:func:`protocol.crc.crc32_input`) of the sample bytes as the device received them."""

    TYPE = MsgType.RESULT
    _SCHEMA = _RESULT
    window_id: int
    cls: int
    score_kind: int
    n_scores: int
    scores: tuple[float, ...] | tuple[int, ...]
    cycles: int
    input_crc: int


MAX_PARTS = 32
"""Parts one window may be sent in: the device keeps which it holds in a 32-bit mask."""


@dataclass(frozen=True)
class Part(_Msg):
    """Part ``index`` of transfer ``transfer`` of window ``window_id``: bytes ``index * part_bytes``
    onwards of the window's sample bytes (int16 LE, sample-major), ``part_bytes`` of them except in
    the last part. A part of another (window, transfer) than the one the device stages starts a new
    one. Not answered (a Part of the wrong shape is refused with Error PAYLOAD): the Run is."""

    TYPE = MsgType.PART
    _SCHEMA = cs.Struct(
        "window_id" / cs.Int32ul,
        "transfer" / cs.Int16ul,
        "n_samples" / cs.Int16ul,
        "channels" / cs.Int8ul,
        "part_bytes" / cs.Int16ul,
        "index" / cs.Int8ul,
        "data" / cs.GreedyBytes,
    )
    window_id: int
    transfer: int
    n_samples: int
    channels: int
    part_bytes: int
    index: int
    data: bytes


@dataclass(frozen=True)
class Run(_Msg):
    """Classify the window staged from Parts: answered with its Result when the device holds every
    part of this (window, transfer), else with Held (which parts it holds; nothing runs); Error
    PAYLOAD when the shape is not the model's window."""

    TYPE = MsgType.RUN
    _SCHEMA = cs.Struct("window_id" / cs.Int32ul, "transfer" / cs.Int16ul, "n_samples" / cs.Int16ul,
                        "channels" / cs.Int8ul, cs.Terminated)
    window_id: int
    transfer: int
    n_samples: int
    channels: int


@dataclass(frozen=True)
class Held(_Msg):
    """The reply to a Run that found a part missing: which parts of that (window, transfer) the
    device holds (bit i of ``have``: part i) of ``n_parts`` (0: it stages none of that transfer).
    Never cached: an incomplete Run is idempotent."""

    TYPE = MsgType.HELD
    _SCHEMA = cs.Struct("window_id" / cs.Int32ul, "transfer" / cs.Int16ul, "n_parts" / cs.Int8ul,
                        "have" / cs.Int32ul, cs.Terminated)
    window_id: int
    transfer: int
    n_parts: int
    have: int


@dataclass(frozen=True)
class SetRotation(_Msg):
    """Stream mode: the per-collar orientation calibration the device applies to raw samples, one
    rotation about the sensor z axis as (cos, sin) in Q14 (harness.data.windows.rotate_xy_q14)."""

    TYPE = MsgType.SET_ROTATION
    _SCHEMA = cs.Struct("cos_q14" / cs.Int16sl, "sin_q14" / cs.Int16sl, cs.Terminated)
    cos_q14: int
    sin_q14: int


@dataclass(frozen=True)
class RotationSet(_Msg):
    """The rotation now applied, and its calibration id (CRC-32 of the 4 payload bytes of SetRotation),
    which Info reports from then on."""

    TYPE = MsgType.ROTATION_SET
    _SCHEMA = cs.Struct("cos_q14" / cs.Int16sl, "sin_q14" / cs.Int16sl, "calibration_id" / cs.Int32ul,
                        cs.Terminated)
    cos_q14: int
    sin_q14: int
    calibration_id: int


@dataclass(frozen=True)
class StreamStart(_Msg):
    """Start (or restart) stream mode: sample index 0 comes next; a window of the model's length
    starts at every multiple of ``hop``."""

    TYPE = MsgType.STREAM_START
    _SCHEMA = cs.Struct("hop" / cs.Int16ul, cs.Terminated)
    hop: int


@dataclass(frozen=True)
class StreamStarted(_Msg):
    TYPE = MsgType.STREAM_STARTED
    _SCHEMA = cs.Struct("window" / cs.Int16ul, "hop" / cs.Int16ul, "slots" / cs.Int8ul, cs.Terminated)
    window: int
    hop: int
    slots: int
    """windows the device advances at once (window / hop, rounded up, must fit)"""


@dataclass(frozen=True)
class Samples(_Msg):
    """Raw int16 counts (x y z per sample, sample-major) of samples ``first_index`` onwards.
    ``stream_seq`` counts sample frames from 0; a jump tells the device that frames were lost."""

    TYPE = MsgType.SAMPLES
    _SCHEMA = cs.Struct(
        "stream_seq" / cs.Int32ul,
        "first_index" / cs.Int32ul,
        "n_samples" / cs.Int8ul,
        "samples" / cs.Array(cs.this.n_samples * 3, cs.Int16sl),
        cs.Terminated,
    )
    stream_seq: int
    first_index: int
    n_samples: int
    samples: tuple[int, ...]


_STREAM_RESULT = cs.Struct("first_sample" / cs.Int32ul, "cls" / cs.Int8ul,
                           "scores" / cs.Array(cs.this._.n_scores, cs.Int32sl))


@dataclass(frozen=True)
class SamplesAck(_Msg):
    """What a Samples frame did: the samples taken so far, device time for this frame's samples
    and for its last sample alone (in the Info's time base), whether a gap before it was detected
    (windows in progress were dropped), and a result (raw 32-bit score words, as Result's
    ``score_kind`` says) for every window that ended in it."""

    TYPE = MsgType.SAMPLES_ACK
    _SCHEMA = cs.Struct(
        "stream_seq" / cs.Int32ul,
        "samples_total" / cs.Int32ul,
        "cycles" / cs.Int32ul,
        "last_cycles" / cs.Int32ul,
        "gap" / cs.Int8ul,
        "score_kind" / cs.Int8ul,
        "n_scores" / cs.Int8ul,
        "n_results" / cs.Int8ul,
        "results" / cs.Array(cs.this.n_results, _STREAM_RESULT),
        cs.Terminated,
    )
    stream_seq: int
    samples_total: int
    cycles: int
    last_cycles: int
    gap: int
    score_kind: int
    n_scores: int
    n_results: int
    results: tuple[tuple[int, int, tuple[int, ...]], ...]
    """(first_sample, cls, scores) per window that ended in this frame"""


@dataclass(frozen=True)
class Ping(_Msg):
    TYPE = MsgType.PING
    _SCHEMA = cs.Struct("data" / cs.GreedyBytes)
    data: bytes


@dataclass(frozen=True)
class Pong(_Msg):
    TYPE = MsgType.PONG
    _SCHEMA = cs.Struct("data" / cs.GreedyBytes)
    data: bytes


@dataclass(frozen=True)
class Stats(_Msg):
    TYPE = MsgType.STATS
    _SCHEMA = cs.Struct(cs.Terminated)


_COUNTER_NAMES = (
    "frames_ok", "crc_errors", "cobs_errors", "length_errors",
    "version_errors", "unknown_types", "payload_errors", "rx_overruns",
)


@dataclass(frozen=True)
class Counters(_Msg):
    """Device-side error counters since boot."""

    TYPE = MsgType.COUNTERS
    _SCHEMA = cs.Struct(*(n / cs.Int32ul for n in _COUNTER_NAMES), cs.Terminated)
    frames_ok: int
    crc_errors: int
    cobs_errors: int
    length_errors: int
    version_errors: int
    unknown_types: int
    payload_errors: int
    rx_overruns: int


@dataclass(frozen=True)
class Log(_Msg):
    """Device log text: never shares bytes with another frame."""

    TYPE = MsgType.LOG
    _SCHEMA = cs.Struct("level" / cs.Int8ul, "text" / cs.GreedyString("ascii"))
    level: int
    text: str


@dataclass(frozen=True)
class Error(_Msg):
    """The device refused a frame: ``code`` is an ErrorCode, ``offending_seq`` the frame's seq."""

    TYPE = MsgType.ERROR
    _SCHEMA = cs.Struct("code" / cs.Int8ul, "offending_seq" / cs.Int16ul, "detail" / cs.Int16ul, cs.Terminated)
    code: int
    offending_seq: int
    detail: int = 0


Message = (Hello | Info | Infer | Result | Ping | Pong | Stats | Counters | Log | Error | SetRotation | RotationSet
           | StreamStart | StreamStarted | Samples | SamplesAck | Part | Run | Held)
_BY_TYPE: dict[int, type[_Msg]] = {
    c.TYPE: c for c in (Hello, Info, Infer, Result, Ping, Pong, Stats, Counters, Log, Error, SetRotation,
                        RotationSet, StreamStart, StreamStarted, Samples, SamplesAck, Part, Run, Held)
}


def message_types() -> dict[MsgType, type[_Msg]]:
    return {MsgType(k): v for k, v in _BY_TYPE.items()}


@dataclass(frozen=True)
class Frame:
    """A valid frame, decoded."""

    seq: int
    msg: Message
    version: int = PROTOCOL_VERSION


def _payload(msg: _Msg) -> bytes:
    values = {f.name: getattr(msg, f.name) for f in fields(msg)}  # type: ignore[arg-type]
    if "samples" in values:
        values["samples"] = list(values["samples"])
    if "scores" in values:
        values["scores"] = list(values["scores"])
    if "results" in values:
        values["results"] = [{"first_sample": f, "cls": c, "scores": list(sc)} for f, c, sc in values["results"]]
    try:
        return bytes(msg._SCHEMA.build(values))
    except (cs.ConstructError, ValueError, TypeError, OverflowError) as exc:
        raise PayloadError(f"cannot build {type(msg).__name__}: {exc}") from exc


def encode_raw(type_id: int, seq: int, payload: bytes, version: int = PROTOCOL_VERSION) -> bytes:
    """Header + payload + CRC, *not* COBS-encoded (for tests and golden frames of bad kinds)."""
    body = bytes(_Header.build({"version": version, "type": type_id, "seq": seq, "length": len(payload)})) + payload
    return body + crc16_ccitt(body).to_bytes(2, "little")


def encode_frame(msg: Message, seq: int) -> bytes:
    """The wire bytes of ``msg``: COBS-encoded frame followed by the 0x00 delimiter."""
    payload = _payload(msg)
    if len(payload) > MAX_PAYLOAD:
        raise LengthError(f"{type(msg).__name__} payload {len(payload)} bytes > MAX_PAYLOAD {MAX_PAYLOAD}")
    if not 0 <= seq <= 0xFFFF:
        raise ValueError(f"sequence number {seq} outside 0..65535")
    return cobs_encode(encode_raw(msg.TYPE, seq, payload)) + b"\x00"


@dataclass(frozen=True)
class CheckedFrame:
    """A frame that passed the frame-level checks; the payload is not parsed yet."""

    version: int
    type: int
    seq: int
    payload: bytes


def check_frame(raw: bytes) -> CheckedFrame:
    """Frame-level checks of one COBS-decoded frame, in the order ``proto_frame_check`` uses in C:
    length, CRC, version, length field, type.

    Raises:
        LengthError, CrcError, VersionError, UnknownTypeError.
    """
    if len(raw) < HEADER_SIZE + CRC_SIZE:
        raise LengthError(f"frame of {len(raw)} bytes is shorter than header and CRC")
    body, crc = raw[:-CRC_SIZE], int.from_bytes(raw[-CRC_SIZE:], "little")
    h = _Header.parse(body[:HEADER_SIZE])
    calc = crc16_ccitt(body)
    if calc != crc:
        raise CrcError(f"CRC 0x{crc:04x} in frame, 0x{calc:04x} computed", seq=h.seq)
    if h.version != PROTOCOL_VERSION:
        raise VersionError(f"protocol version {h.version}, this side speaks {PROTOCOL_VERSION}", seq=h.seq)
    if h.length != len(body) - HEADER_SIZE:
        raise LengthError(f"header says {h.length} payload bytes, frame has {len(body) - HEADER_SIZE}", seq=h.seq)
    if h.type not in _BY_TYPE:
        raise UnknownTypeError(f"unknown message type 0x{h.type:02x}", seq=h.seq)
    return CheckedFrame(h.version, h.type, h.seq, bytes(body[HEADER_SIZE:]))


def decode_frame(raw: bytes) -> Frame:
    """Check and decode one COBS-decoded frame: :func:`check_frame`, then the payload.

    Raises:
        LengthError, CrcError, VersionError, UnknownTypeError, PayloadError.
    """
    cf = check_frame(raw)
    cls = _BY_TYPE[cf.type]
    try:
        c = cls._SCHEMA.parse(cf.payload)
    except (cs.ConstructError, UnicodeDecodeError) as exc:
        raise PayloadError(f"bad {cls.__name__} payload: {exc}", seq=cf.seq) from None
    kwargs = {f.name: c[f.name] for f in fields(cls)}  # type: ignore[arg-type]
    for k in ("samples", "scores"):
        if k in kwargs:
            kwargs[k] = tuple(kwargs[k])
    if "results" in kwargs:
        kwargs["results"] = tuple((int(r.first_sample), int(r.cls), tuple(r.scores)) for r in kwargs["results"])
    for k in ("model_hash", "data"):
        if k in kwargs:
            kwargs[k] = bytes(kwargs[k])
    return Frame(seq=cf.seq, msg=cls(**kwargs), version=cf.version)  # type: ignore[arg-type]
