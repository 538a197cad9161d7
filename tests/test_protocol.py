"""The wire protocol, against the Python and the C implementation alike."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cproto import FW, CProto, FrameVerdict, asan_preload, build_host
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    MAX_FRAME,
    CobsError,
    Counters,
    Deframer,
    Error,
    ErrorCode,
    Frame,
    FrameError,
    Hello,
    Infer,
    Info,
    LengthError,
    Log,
    Ping,
    Pong,
    Result,
    Stats,
    crc16_ccitt,
    crc32_input,
    decode_frame,
    encode_frame,
)
from protocol.cgen import DEFAULT_OUT, render_proto_defs
from protocol.cobs import CobsStreamDecoder, cobs_decode, cobs_encode
from protocol.golden import DEFAULT_DIR, golden_frames
from protocol.messages import check_frame, encode_raw

ASAN = os.environ.get("HIL_PROTO_ASAN") == "1"
INDEX = json.loads((DEFAULT_DIR / "index.json").read_text())["frames"]


class PyProto:
    """The Python side behind the same interface as CProto."""

    def crc16(self, data: bytes) -> int:
        return crc16_ccitt(data)

    def crc32(self, data: bytes) -> int:
        return crc32_input(data)

    def encode(self, type_id: int, seq: int, payload: bytes) -> bytes:
        return cobs_encode(encode_raw(type_id, seq, payload)) + b"\x00"

    def deframe(self, stream: bytes) -> list[FrameVerdict]:
        out = []
        for df in CobsStreamDecoder(MAX_FRAME).feed(stream):
            if df.error is not None:
                out.append(FrameVerdict("LENGTH" if df.error == "oversize" else "COBS", 0, 0xFFFF, b""))
                continue
            try:
                cf = check_frame(df.data)
                out.append(FrameVerdict("OK", cf.type, cf.seq, cf.payload))
            except FrameError as exc:
                seq = 0xFFFF if exc.seq is None else exc.seq
                typ = df.data[1] if len(df.data) >= 8 else 0
                out.append(FrameVerdict(exc.code.name, typ, seq, b""))
        return out


@pytest.fixture(scope="session")
def cproto() -> CProto:
    """The C implementation, built for the host (UBSan; ASan too when run under HIL_PROTO_ASAN)."""
    if not ASAN:
        build_host()
    return CProto(asan=ASAN)


@pytest.fixture(params=["python", "c"])
def impl(request: pytest.FixtureRequest, cproto: CProto) -> PyProto | CProto:
    """Each protocol test runs once per implementation."""
    return PyProto() if request.param == "python" else cproto


def test_crc_check_value(impl: PyProto | CProto) -> None:
    assert impl.crc16(b"123456789") == 0x29B1
    assert impl.crc32(b"123456789") == 0xCBF43926


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_c_and_python_checksums_agree_on_any_bytes(cproto: CProto, data: bytes) -> None:
    assert cproto.crc16(data) == crc16_ccitt(data)
    assert cproto.crc32(data) == crc32_input(data)


def test_the_input_crc32_catches_an_error_pattern_the_frame_crc16_misses() -> None:
    """x^16 + x^12 + x^5 + 1 is the CRC-16 polynomial: XOR-ing it into the bytes at any offset leaves
    CRC-16 unchanged (a 4-bit error), while the end-to-end CRC-32 of the samples changes."""
    samples = bytes(range(100))
    pattern = (0x11021).to_bytes(3, "big")
    bad = bytearray(samples)
    for i, p in enumerate(pattern):
        bad[40 + i] ^= p
    assert crc16_ccitt(bytes(bad)) == crc16_ccitt(samples)
    assert crc32_input(bytes(bad)) != crc32_input(samples)


@pytest.mark.parametrize("name", sorted(INDEX))
def test_golden_frame_verdicts(impl: PyProto | CProto, name: str) -> None:
    wire = (DEFAULT_DIR / INDEX[name]["file"]).read_bytes()
    (verdict,) = impl.deframe(wire)
    assert verdict.status == INDEX[name]["frame"], name
    if INDEX[name].get("seq") is not None and verdict.status in ("OK", "CRC", "VERSION", "UNKNOWN_TYPE"):
        assert verdict.seq == INDEX[name]["seq"]


@pytest.mark.parametrize("name", sorted(n for n, e in INDEX.items() if e["frame"] == "OK"))
def test_golden_payloads_decode_to_their_message_verdict(name: str) -> None:
    events = Deframer().feed((DEFAULT_DIR / INDEX[name]["file"]).read_bytes())
    assert len(events) == 1
    if INDEX[name]["message"] == "OK":
        assert isinstance(events[0], Frame) and events[0].seq == INDEX[name]["seq"]
    else:
        assert isinstance(events[0], FrameError) and events[0].code.name == INDEX[name]["message"]


def test_golden_frames_are_not_stale() -> None:
    for name, (wire, _) in golden_frames().items():
        assert (DEFAULT_DIR / f"{name}.bin").read_bytes() == wire, f"{name}: run python -m protocol.golden"


def test_protocol_readme_tables_match_the_declarations() -> None:
    from protocol.docgen import README, update_readme

    text = README.read_text()
    assert update_readme(text) == text, "protocol/README.md tables are stale: run `python -m protocol.docgen`"
    assert "input_crc u32 (CRC-32" in text and "stack_used u32" in text


def test_generated_header_is_not_stale() -> None:
    assert DEFAULT_OUT.read_text() == render_proto_defs(), "run python -m protocol.cgen"


@pytest.mark.parametrize("name", sorted(n for n, e in INDEX.items() if e["frame"] == "OK"))
def test_c_encoder_writes_the_python_bytes(cproto: CProto, name: str) -> None:
    wire = (DEFAULT_DIR / INDEX[name]["file"]).read_bytes()
    raw = cobs_decode(wire[:-1])
    assert cproto.encode(raw[1], int.from_bytes(raw[2:4], "little"), raw[6:-2]) == wire


def test_c_encoder_fails_cleanly_when_the_stream_refuses(cproto: CProto) -> None:
    for fail_after in (0, 1, 5, 200, 254, 255):
        with pytest.raises(OSError, match="status 32"):
            cproto.encode(0x03, 1, bytes(range(1, 255)) * 2, fail_after=fail_after)


_messages = st.one_of(
    st.builds(Hello),
    st.builds(Stats),
    st.builds(Ping, st.binary(max_size=600)),
    st.builds(Pong, st.binary(max_size=600)),
    st.builds(Log, st.integers(0, 255), st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)),
    st.builds(Error, st.sampled_from(list(ErrorCode)), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    st.builds(Counters, *[st.integers(0, 2**32 - 1)] * 8),
    st.integers(1, 200).flatmap(lambda n: st.builds(
        Infer, st.integers(0, 2**32 - 1), st.just(n), st.just(3),
        st.lists(st.integers(-32768, 32767), min_size=3 * n, max_size=3 * n).map(tuple))),
    st.integers(1, 8).flatmap(lambda n: st.builds(
        Result, st.integers(0, 2**32 - 1), st.integers(0, 255), st.just(0), st.just(n),
        st.lists(st.integers(-(2**31), 2**31 - 1), min_size=n, max_size=n).map(tuple),
        st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF))),
    st.builds(Info, st.integers(0, 255), st.text("abcdefgh-0123", max_size=16),
              st.text("0123456789abcdef", max_size=24),
              st.binary(min_size=8, max_size=8), *[st.integers(0, 255)] * 1, st.integers(0, 0xFFFF),
              st.integers(0, 255), st.integers(0, 255), st.integers(-128, 127), st.integers(0, 2**32 - 1),
              st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1)),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_messages, st.integers(0, 0xFFFF))
def test_every_message_round_trips(msg: object, seq: int) -> None:
    wire = encode_frame(msg, seq)  # type: ignore[arg-type]
    assert wire.count(0) == 1 and wire.endswith(b"\x00")
    assert Deframer().feed(wire) == [Frame(seq=seq, msg=msg)]  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(_messages, st.integers(0, 0xFFFF))
def test_c_and_python_agree_on_random_messages(cproto: CProto, msg: object, seq: int) -> None:
    wire = encode_frame(msg, seq)  # type: ignore[arg-type]
    raw = cobs_decode(wire[:-1])
    assert cproto.encode(raw[1], seq, raw[6:-2]) == wire
    assert cproto.deframe(wire) == PyProto().deframe(wire)


_frames = st.lists(st.tuples(_messages, st.integers(0, 0xFFFF)), min_size=1, max_size=5)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_frames, st.lists(st.binary(max_size=64), min_size=1, max_size=5), st.data())
def test_garbage_between_frames_loses_no_frame_after_the_next_delimiter(
    cproto: CProto, frames: list[tuple[object, int]], garbage: list[bytes], data: st.DataObject
) -> None:
    stream = b""
    expected: list[int] = []  # seqs that must be recovered
    resync_at = -1  # the first delimiter at or after the latest garbage
    for i, (msg, seq) in enumerate(frames):
        g = garbage[i % len(garbage)] if data.draw(st.booleans()) else b""
        if g:
            stream += g
            resync_at = len(stream) - 1 if g.endswith(b"\x00") else -2  # -2: until this frame's delimiter
        start = len(stream)
        stream += encode_frame(msg, seq)  # type: ignore[arg-type]
        if resync_at == -2:
            resync_at = len(stream) - 1
        elif start > resync_at:
            expected.append(seq)
    for impl in (PyProto(), cproto):
        got = [v.seq for v in impl.deframe(stream) if v.status == "OK"]
        it = iter(got)
        assert all(any(s == g for g in it) for s in expected), (expected, got)
    # Split into random reads: the Python deframer yields the same events as for one read.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    d = Deframer()
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    chunked = [e for p in pieces for e in d.feed(p)]
    whole = Deframer().feed(stream)
    assert [repr(e) for e in chunked] == [repr(e) for e in whole]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_no_input_raises_or_grows_the_deframer(blob: bytes) -> None:
    d = Deframer()
    for i in range(0, len(blob), 97):
        for ev in d.feed(blob[i : i + 97]):
            assert isinstance(ev, Frame | FrameError)
        assert len(d._dec._buf) <= MAX_FRAME


def test_endless_garbage_is_one_length_error_and_then_resync() -> None:
    d = Deframer()
    assert d.feed(b"\x01\x02" * 100_000) == []
    assert len(d._dec._buf) <= MAX_FRAME
    ping = encode_frame(Ping(b"hi"), 3)
    events = d.feed(b"\x00" + ping)
    assert isinstance(events[0], LengthError) and events[1] == Frame(3, Ping(b"hi"))


def _c_session_replies(cproto: CProto, wire: bytes) -> list[Frame | FrameError]:
    return Deframer().feed(cproto.session_feed(wire))


def test_c_dispatcher_replays_a_repeated_sequence_number_without_rerunning(cproto: CProto) -> None:
    cproto.session_start()
    req = encode_frame(Infer(77, 2, 3, (1, 2, 3, 4, 5, 6)), 40)
    (first,) = _c_session_replies(cproto, req)
    (again,) = _c_session_replies(cproto, req)
    assert isinstance(first, Frame) and isinstance(first.msg, Result) and first.msg.window_id == 77
    samples = b"".join(v.to_bytes(2, "little", signed=True) for v in (1, 2, 3, 4, 5, 6))
    assert first.msg.input_crc == crc32_input(samples)
    assert again == first and cproto.infer_calls() == 1
    _c_session_replies(cproto, encode_frame(Infer(78, 2, 3, (1, 2, 3, 4, 5, 6)), 41))
    assert cproto.infer_calls() == 2


def test_c_dispatcher_answers_and_counts_every_bad_frame(cproto: CProto) -> None:
    cproto.session_start()
    expected = {"bad_crc": ("crc_errors", ErrorCode.CRC, 11), "bad_cobs": ("cobs_errors", ErrorCode.COBS, 0xFFFF),
                "oversize": ("length_errors", ErrorCode.LENGTH, 0xFFFF),
                "wrong_version": ("version_errors", ErrorCode.VERSION, 15),
                "unknown_type": ("unknown_types", ErrorCode.UNKNOWN_TYPE, 14),
                "infer_short_window": ("payload_errors", ErrorCode.PAYLOAD, 17)}
    for name, (_, code, seq) in expected.items():
        (reply,) = _c_session_replies(cproto, (DEFAULT_DIR / f"{name}.bin").read_bytes())
        assert isinstance(reply, Frame) and isinstance(reply.msg, Error), name
        assert (reply.msg.code, reply.msg.offending_seq) == (code, seq), name
    (ok,) = _c_session_replies(cproto, (DEFAULT_DIR / "ping_zeros.bin").read_bytes())
    assert isinstance(ok, Frame) and ok.msg == Pong(bytes(300))
    (stats,) = _c_session_replies(cproto, encode_frame(Stats(), 99))
    assert isinstance(stats, Frame) and isinstance(stats.msg, Counters)
    c = stats.msg
    assert (c.crc_errors, c.cobs_errors, c.length_errors, c.version_errors, c.unknown_types, c.payload_errors) == (
        1, 1, 1, 1, 1, 1)
    assert c.frames_ok == 3  # infer_short_window (valid frame, bad payload), the ping, the stats request
    assert cproto.infer_calls() == 0


def test_python_deframer_reports_typed_errors_for_bad_golden_frames() -> None:
    events = Deframer().feed(b"".join((DEFAULT_DIR / f"{n}.bin").read_bytes() for n in ("bad_cobs", "hello")))
    assert isinstance(events[0], CobsError) and events[1] == Frame(1, Hello())
    with pytest.raises(LengthError):
        decode_frame(b"\x01\x02")


@pytest.mark.skipif(ASAN, reason="already running under ASan")
def test_c_protocol_tests_pass_under_asan(cproto: CProto) -> None:
    """Re-run this module's C-side tests in a Python that preloads libasan, against the ASan build."""
    preload = asan_preload()
    if preload is None:
        pytest.skip("gcc ships no libasan.so here")
    env = {**os.environ, "LD_PRELOAD": preload, "HIL_PROTO_ASAN": "1",
           "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1", "UBSAN_OPTIONS": "halt_on_error=1"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", __file__,
                        "-k", "not python and not asan and not fuzz", "--hypothesis-seed=0"],
                       env=env, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " passed" in r.stdout and (FW / "build" / "host" / "libproto_host_asan.so").exists()


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed (scripts/bootstrap.sh installs it)")
@pytest.mark.skipif(ASAN, reason="gcc's libasan is preloaded here; the fuzzer carries clang's")
def test_fuzz_target_builds_and_survives_a_short_run(tmp_path: Path) -> None:
    """Smoke run of the libFuzzer target (ASan + UBSan); the long run is in the README."""
    r = subprocess.run(["make", "-s", "-C", str(FW), "fuzz"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for f in DEFAULT_DIR.glob("*.bin"):
        (corpus / f.name).write_bytes(f.read_bytes())
    r = subprocess.run([str(FW / "build" / "fuzz" / "fuzz_proto"), "-runs=20000", "-max_len=4096", "-seed=1",
                        str(corpus)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "Done 20000 runs" in r.stderr, r.stderr[-3000:]


def test_a_frame_one_byte_shorter_than_header_and_crc_is_a_length_error_in_both_apis() -> None:
    from protocol import HEADER_SIZE, Deframer, LengthError
    from protocol.cobs import cobs_encode
    from protocol.messages import CRC_SIZE, check_frame

    short = bytes(range(1, HEADER_SIZE + CRC_SIZE))  # one byte short
    with pytest.raises(LengthError, match="shorter than header and CRC"):
        check_frame(short)
    (ev,) = Deframer().feed(cobs_encode(short) + b"\x00")
    assert isinstance(ev, LengthError)
