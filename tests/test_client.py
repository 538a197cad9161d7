"""The client against the real C protocol implementation (host build, test handlers): retries,
the reply cache, resync after garbage, typed device errors, timeouts."""

from __future__ import annotations

import numpy as np
import pytest
from cproto import CProto, build_host

from harness.client import DeviceClient, DeviceError, DeviceTimeout
from protocol import crc16_ccitt


class CSessionPort:
    """A pyserial-like port whose far end is the C dispatcher, with fault injection:
    ``drop_replies`` swallows that many whole replies, ``garbage`` is delivered before the next one."""

    def __init__(self, c: CProto) -> None:
        self.c = c
        c.session_start()
        self.rx = bytearray()
        self.drop_replies = 0
        self.garbage = b""
        self.timeout = 0.01

    def write(self, data: bytes) -> int:
        out = self.c.session_feed(bytes(data))
        if out and self.drop_replies:
            self.drop_replies -= 1
            return len(data)
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
    assert r.window_id == 9 and r.input_crc == crc16_ccitt(x.astype("<i2").tobytes())
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


def test_a_corrupted_window_is_detected_by_the_input_crc() -> None:
    from protocol import Result

    x = np.ones((4, 3), np.int16)
    r = Result(5, 0, 0, 4, (0, 0, 0, 0), 1, crc16_ccitt(x.astype("<i2").tobytes()) ^ 1)
    with pytest.raises(DeviceError, match="corrupted in transit"):
        DeviceClient.verify_result(r, 5, x)
    with pytest.raises(DeviceError, match="expected 6"):
        DeviceClient.verify_result(r, 6, x)


def test_timeouts_follow_the_baud_rate_and_latency_budget() -> None:
    c = DeviceClient(None, "x", baudrate=9600, latency_budget_s=2.0)  # type: ignore[arg-type]
    assert c.timeout_for(320, 40) == pytest.approx(360 * 10 / 9600 + 2.0 + 0.5)
