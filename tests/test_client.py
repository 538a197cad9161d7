"""The client against the real C protocol implementation (host build, test handlers): retries,
the reply cache, resync after garbage, typed device errors, timeouts."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
from cproto import CProto, build_host

from harness.device.client import CorruptedInput, DeviceClient, DeviceError, DeviceTimeout
from harness.device.linkfaults import FaultyPort, LinkFaults
from protocol import Error, ErrorCode, Pong, Result, crc32_input, encode_frame


class CSessionPort:
    """A pyserial-like port whose far end is the C dispatcher, with fault injection:
    ``drop_replies`` swallows that many whole replies, ``garbage`` is delivered before the next one."""

    def __init__(self, c: CProto) -> None:
        self.c = c
        c.session_start()
        self.rx = bytearray()
        self.drop_replies = 0
        self.garbage = b""
        self.mangle: list[Callable[[bytes], bytes]] = []
        self.mangle_reply: list[Callable[[bytes], bytes]] = []
        self.timeout = 0.01

    def write(self, data: bytes) -> int:
        if self.mangle and len(data) > 1:
            data = self.mangle.pop(0)(bytes(data))
        out = self.c.session_feed(bytes(data))
        if out and self.drop_replies:
            self.drop_replies -= 1
            return len(data)
        if out and self.mangle_reply:
            out = self.mangle_reply.pop(0)(out)
        self.rx += self.garbage + out
        self.garbage = b""
        return len(data)

    def flush(self) -> None:
        pass

    @property
    def in_waiting(self) -> int:
        return len(self.rx)

    def read(self, n: int) -> bytes:
        chunk = bytes(self.rx[:n])
        del self.rx[:n]
        return chunk

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def cproto() -> CProto:
    """The C protocol code built for the host."""
    build_host()
    return CProto()


def _client(port: CSessionPort, retries: int = 2) -> DeviceClient:
    c = DeviceClient(port, "c-dispatcher", latency_budget_s=0.0, retries=retries)  # type: ignore[arg-type]
    c.timeout_for = lambda *_: 0.2  # type: ignore[method-assign]
    return c


def test_a_lost_reply_is_retried_with_the_same_seq_and_never_recomputed(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    port.drop_replies = 1
    c = _client(port)
    x = np.arange(12, dtype=np.int16).reshape(4, 3)
    r = c.infer(9, x)
    assert r.window_id == 9 and r.input_crc == crc32_input(x.astype("<i2").tobytes())
    assert c.stats.retries == 1 and cproto.infer_calls() == 1


def test_garbage_before_a_reply_is_skipped(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    port.garbage = b"\x13\x37garbage\x00\xff\xfe"
    c = _client(port)
    assert c.ping(b"hello") == b"hello"
    assert c.stats.bad_frames >= 1


def test_device_errors_are_typed_and_name_the_code(cproto: CProto) -> None:
    c = _client(CSessionPort(cproto))
    with pytest.raises(DeviceError, match="UNKNOWN_TYPE"):
        c.hello()  # the test handlers do not answer Hello


def test_a_silent_device_times_out_after_bounded_retries(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    port.drop_replies = 10
    c = _client(port, retries=2)
    with pytest.raises(DeviceTimeout, match="after 3 attempts"):
        c.ping(b"x")
    assert c.stats.retries == 2


def _flip_payload_bit(wire: bytes) -> bytes:
    b = bytearray(wire)
    b[len(b) // 2] ^= 0x04 if b[len(b) // 2] not in (0x00, 0x04) else 0x02
    return bytes(b)


def test_an_error_reply_for_a_damaged_request_is_resent_at_once_not_after_a_timeout(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    port.mangle.append(_flip_payload_bit)
    c = _client(port)
    c.timeout_for = lambda *_: 5.0  # type: ignore[method-assign]
    t0 = time.monotonic()
    assert c.ping(b"0123456789abcdef") == b"0123456789abcdef"
    assert time.monotonic() - t0 < 1.0  # no 5 s timeout was waited
    assert c.stats.retries == 1 and c.stats.retry_reasons == {"device saw a damaged request (CRC)": 1}


def test_an_error_whose_header_cannot_be_trusted_triggers_a_resend(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    port.mangle.append(lambda w: w[:4] + b"\x00" + w[4:])  # a delimiter inside the frame: two broken halves
    c = _client(port)
    c.timeout_for = lambda *_: 5.0  # type: ignore[method-assign]
    t0 = time.monotonic()
    x = np.arange(12, dtype=np.int16).reshape(4, 3)
    r = c.infer(3, x)
    assert r.window_id == 3 and time.monotonic() - t0 < 1.0
    assert c.stats.retries >= 1 and any("seq untrusted" in k for k in c.stats.retry_reasons)
    assert cproto.infer_calls() == 1


def test_a_reply_to_a_sequence_number_not_outstanding_is_never_taken(cproto: CProto) -> None:
    """An old reply, a reply to a future sequence number and an old error are all dropped as stale;
    the outstanding request gets its own reply."""
    port = CSessionPort(cproto)
    c = _client(port)
    nxt = c.seq + 1
    port.garbage = (encode_frame(Pong(b"stale"), nxt + 3) + encode_frame(Pong(b"old"), nxt - 1)
                    + encode_frame(Error(ErrorCode.PAYLOAD, nxt + 1, 0), nxt + 1))
    assert c.ping(b"fresh") == b"fresh"
    assert c.stats.stale_frames == 3


def test_a_refusal_of_the_request_itself_is_not_retried(cproto: CProto) -> None:
    c = _client(CSessionPort(cproto))
    with pytest.raises(DeviceError, match="UNKNOWN_TYPE"):
        c.hello()  # the test handlers do not answer Hello: an intact refusal, not a link fault
    assert c.stats.retries == 0


def test_a_damaged_window_the_frame_crc_missed_is_resent_under_a_new_seq(cproto: CProto) -> None:
    """The CRC-32 of the samples as received catches what the frame's CRC-16 cannot: here the
    test's port swaps in a Result whose input CRC disagrees once; the window is sent again."""
    port = CSessionPort(cproto)
    c = _client(port)
    x = np.arange(12, dtype=np.int16).reshape(4, 3)
    real_feed = cproto.session_feed
    calls = {"n": 0}

    def feed(data: bytes) -> bytes:
        out = real_feed(data)
        calls["n"] += 1
        if calls["n"] == 1:
            bad = Result(7, 0, 0, 4, (0, 0, 0, 0), 1, crc32_input(x.astype("<i2").tobytes()) ^ 0x10)
            return encode_frame(bad, c.seq)
        return out

    cproto.session_feed = feed  # type: ignore[method-assign]
    try:
        c.start_infer(7, x)
        r, reasons = c.finish_infer(7, x)
    finally:
        cproto.session_feed = real_feed  # type: ignore[method-assign]
    assert r.window_id == 7 and reasons == ["input CRC-32 mismatch"]


def test_a_corrupted_window_is_detected_by_the_input_crc() -> None:
    x = np.ones((4, 3), np.int16)
    r = Result(5, 0, 0, 4, (0, 0, 0, 0), 1, crc32_input(x.astype("<i2").tobytes()) ^ 1)
    with pytest.raises(CorruptedInput, match="corrupted in transit"):
        DeviceClient.verify_result(r, 5, x)
    with pytest.raises(DeviceError, match="expected 6"):
        DeviceClient.verify_result(r, 6, x)


def test_timeouts_follow_the_baud_rate_and_latency_budget() -> None:
    c = DeviceClient(None, "x", baudrate=9600, latency_budget_s=2.0)  # type: ignore[arg-type]
    assert c.timeout_for(320, 40) == pytest.approx(360 * 10 / 9600 + 2.0 + 0.5)


class _Loop:
    """The far end of a FaultyPort in a test: records what arrives, serves what it is given."""

    def __init__(self) -> None:
        self.sent = bytearray()
        self.rx = bytearray()
        self.timeout = 0.01

    def write(self, data: bytes) -> int:
        self.sent += data
        return len(data)

    def flush(self) -> None:
        pass

    @property
    def in_waiting(self) -> int:
        return len(self.rx)

    def read(self, n: int) -> bytes:
        out = bytes(self.rx[:n])
        del self.rx[:n]
        return out

    def close(self) -> None:
        pass


FRAMES = [bytes([1 + i % 250]) * 40 + b"\x00" for i in range(400)]


def _through(spec: str, seed: int) -> tuple[bytes, dict[str, dict[str, int]]]:
    loop = _Loop()
    fp = FaultyPort(loop, LinkFaults.parse(spec, seed, "to-device"))
    for f in FRAMES:
        fp.write(f)
    return bytes(loop.sent), fp.injected()


def test_link_faults_are_seeded_and_do_what_their_kind_says() -> None:
    clean = b"".join(FRAMES)
    assert _through("flip:0.05", 1) == _through("flip:0.05", 1)
    assert _through("flip:0.05", 1)[0] != _through("flip:0.05", 2)[0]
    flipped, inj = _through("flip:0.05", 1)
    assert len(flipped) == len(clean) and 5 <= inj["to-device"]["flip"] <= 40
    assert sum(bin(a ^ b).count("1") for a, b in zip(flipped, clean, strict=True)) == inj["to-device"]["flip"]
    dropped, inj = _through("drop:0.05", 1)
    assert len(clean) - len(dropped) == inj["to-device"]["drop"] > 0
    dup, inj = _through("dup:0.05", 1)
    assert len(dup) - len(clean) == 41 * inj["to-device"]["dup"] > 0
    assert _through("all:0", 1)[0] == clean


def test_a_stall_delays_the_frame_and_everything_after_it() -> None:
    loop = _Loop()
    fp = FaultyPort(loop, LinkFaults({"stall": 1.0}, "from-device", 0, stall_s=0.3))
    loop.rx += b"\x05abcd\x00"
    t0 = time.monotonic()
    got = b""
    while not got and time.monotonic() - t0 < 2:
        got = fp.read(100)
    assert got == b"\x05abcd\x00" and 0.25 <= time.monotonic() - t0 < 1.0


@pytest.mark.parametrize(("spec", "message"), [
    ("flip", "is not KIND:RATE"), ("zap:0.1", "unknown"), ("flip:x", "not a number"), ("flip:2", "outside 0..1"),
    ("", "no KIND:RATE"),
])
def test_a_bad_link_fault_spec_says_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LinkFaults.parse(spec)


def test_the_client_recovers_from_every_fault_kind_against_the_c_dispatcher(cproto: CProto) -> None:
    """200 windows through the real C dispatcher with 5 % of every fault kind in both directions:
    every window is verified and none is computed twice."""
    port = CSessionPort(cproto)
    faults = LinkFaults({k: 0.05 for k in ("drop", "flip", "dup", "garbage")}, "both", seed=3)
    c = DeviceClient(FaultyPort(port, faults), "c-dispatcher", latency_budget_s=0.0)  # type: ignore[arg-type]
    c.timeout_for = lambda *_: 0.05  # type: ignore[method-assign]
    rng = np.random.default_rng(0)
    for i in range(200):
        x = rng.integers(-2000, 2000, size=(4, 3), dtype=np.int16)
        assert c.infer(i, x).window_id == i
    assert c.stats.retries > 0 and cproto.infer_calls() == 200


def test_a_damaged_reply_is_resent_for_at_once_and_the_cached_reply_comes_back(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    port.mangle_reply.append(_flip_payload_bit)
    c = _client(port)
    c.timeout_for = lambda *_: 5.0  # type: ignore[method-assign]
    x = np.arange(12, dtype=np.int16).reshape(4, 3)
    t0 = time.monotonic()
    r = c.infer(4, x)
    assert r.window_id == 4 and time.monotonic() - t0 < 1.0  # no 5 s timeout was waited
    assert c.stats.bad_frames == 1 and c.stats.retries == 1
    assert list(c.stats.retry_reasons) == ["damaged reply (CRC)"]
    assert cproto.infer_calls() == 1  # the resend got the cached reply


def test_sequence_numbers_skip_the_untrusted_marker_and_zero_when_they_wrap() -> None:
    from harness.device.client import UNTRUSTED_SEQ

    c = DeviceClient(CSessionPort.__new__(CSessionPort), "x")  # type: ignore[arg-type]
    c.seq = 0xFFFD
    seqs = [c._next_seq() for _ in range(3)]
    assert seqs == [0xFFFE, 1, 2] and UNTRUSTED_SEQ == 0xFFFF


def test_the_reply_cache_is_keyed_by_request_type_as_well_as_sequence_number(cproto: CProto) -> None:
    """An Infer and a Ping that share seq 5 each get their own reply; the same (type, seq) again
    gets the cached reply even with another payload (the device contract: the client's window id
    and input CRC-32 checks are what catch a reused sequence number)."""
    from protocol import Deframer, Infer, Ping, Result

    cproto.session_start()
    x = np.arange(12, dtype=np.int16).reshape(4, 3)

    def reply(msg: object) -> object:
        out = cproto.session_feed(encode_frame(msg, 5))  # type: ignore[arg-type]
        (ev,) = Deframer().feed(out)
        return ev.msg  # type: ignore[union-attr]

    first = reply(Infer(7, 4, 3, tuple(int(v) for v in x.ravel())))
    assert isinstance(first, Result) and first.window_id == 7
    calls = cproto.infer_calls()
    assert isinstance(reply(Ping(b"ab")), Pong)
    again = reply(Infer(8, 4, 3, tuple(int(v) + 1 for v in x.ravel())))
    assert again == first and cproto.infer_calls() == calls
