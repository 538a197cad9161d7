"""Tests written against the survivors of a mutation run (scripts/mutation.py): the metrics'
edges, the protocol's error texts, boundaries and counters, and the generated files (C header,
golden frames) reproduced byte for byte. Each test states a contract a mutant broke unnoticed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import construct as cs
import numpy as np
import pytest

from harness.verdict.metrics import (
    BitExact,
    FloatAgreement,
    Latency,
    Scores,
    compare_bit_exact,
    compare_float,
    confusion_matrix,
    score,
)
from protocol import (
    CobsError,
    CrcError,
    Deframer,
    Frame,
    LengthError,
    PayloadError,
    Ping,
    SamplesAck,
    UnknownTypeError,
    VersionError,
    decode_frame,
    encode_frame,
)
from protocol.cgen import DEFAULT_OUT, render_proto_defs, write_proto_defs
from protocol.cobs import CobsStreamDecoder, DecodedFrame, cobs_decode, cobs_encode, max_encoded_len
from protocol.docgen import _fields, _type_name, update_readme
from protocol.golden import DEFAULT_DIR, write_golden
from protocol.messages import HEADER_SIZE, MAX_PAYLOAD, PROTOCOL_VERSION, MsgType, encode_raw

# --- metrics -------------------------------------------------------------------------------


def test_the_confusion_matrix_is_int64_counts_rows_true_columns_predicted() -> None:
    cm = confusion_matrix(np.array([0, 1, 1, 3]), np.array([0, 1, 2, 3]), 4)
    assert cm.dtype == np.int64
    assert cm.tolist() == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]]


def test_confusion_matrix_errors_say_what_and_the_legal_range() -> None:
    with pytest.raises(ValueError, match=r"^labels \(2,\) and predictions \(3,\) differ in shape$"):
        confusion_matrix(np.array([0, 1]), np.array([0, 1, 2]), 4)
    with pytest.raises(ValueError, match=r"^label outside 0\.\.3$"):
        confusion_matrix(np.array([4]), np.array([0]), 4)
    with pytest.raises(ValueError, match=r"^prediction outside 0\.\.3$"):
        confusion_matrix(np.array([0]), np.array([-1]), 4)
    assert confusion_matrix(np.array([3]), np.array([3]), 4)[3, 3] == 1  # the top class is legal
    with pytest.raises(ValueError, match=r"^no samples to score$"):
        score(np.array([], int), np.array([], int), 4)


def test_score_counts_its_windows_and_a_perfect_score_is_one() -> None:
    s = score(np.array([0, 1, 2, 3, 3]), np.array([0, 1, 2, 3, 3]), 4)
    assert s.n == 5 and s.accuracy == 1.0 and s.macro_f1 == 1.0 and s.mcc == pytest.approx(1.0)


def test_scores_as_dict_is_plain_json() -> None:
    s = Scores(2, 0.5, 0.25, -0.5, ((1, 0), (1, 0)))
    assert s.as_dict() == {"n": 2, "accuracy": 0.5, "macro_f1": 0.25, "mcc": -0.5, "confusion": [[1, 0], [1, 0]]}
    assert json.loads(json.dumps(s.as_dict())) == s.as_dict()


def test_a_bit_exact_comparison_names_every_differing_score_of_the_first_differing_window() -> None:
    ref = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 9, 9, 9]])
    dev = ref.copy()
    dev[1, 0], dev[1, 3], dev[2, 2] = 4, 9, 0
    vs = compare_bit_exact(np.array([10, 11, 12]), dev, ref)
    assert vs == BitExact(3, 1, "window 11: score 0: got 4, want 5, score 3: got 9, want 8")
    assert compare_bit_exact(np.array([10]), ref[:1], ref[:1]) == BitExact(1, 1, None)


def test_float_agreement_reports_the_largest_error_and_the_first_class_disagreement() -> None:
    ref = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    dev = ref + np.array([[1e-4, -2e-4, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    fa = compare_float(np.array([7, 8, 9]), dev, ref, 2e-4)
    assert (fa.n, fa.class_agreement, fa.tolerance, fa.first_disagreement) == (3, 1.0, 2e-4, None)
    assert fa.max_abs_err == pytest.approx(2e-4, rel=1e-9) and fa.within_tolerance is (fa.max_abs_err <= 2e-4)
    dev[1] = [0.1, 0.85, 0.05]
    dev[2] = [0.6, 0.3, 0.1]
    fa = compare_float(np.array([7, 8, 9]), dev, ref, 1e-3)
    assert fa.n == 3 and fa.class_agreement == pytest.approx(1 / 3)
    assert fa.max_abs_err == pytest.approx(0.75)
    assert fa.first_disagreement == ("window 8: device class 1 scores [0.1, 0.85, 0.05], "
                                     "reference class 0 scores [0.8, 0.1, 0.1]")
    assert not fa.within_tolerance


def test_float_scores_given_as_lists_of_float32_are_compared_in_float64() -> None:
    dev = [[np.float32(0.1), np.float32(0.2)]]
    fa = compare_float(np.array([0]), dev, [[0.1, 0.2]], 1e-6)
    assert fa.n == 1 and 0.0 < fa.max_abs_err < 1e-6 and fa.within_tolerance


@pytest.mark.parametrize(("err", "agreement", "within"), [(1e-3, 1.0, True), (1.0000001e-3, 1.0, False),
                                                          (0.0, 0.999, False)])
def test_float_agreement_is_within_tolerance_at_equality_and_only_with_every_class_agreeing(
        err: float, agreement: float, within: bool) -> None:
    assert FloatAgreement(10, agreement, err, 1e-3, None).within_tolerance is within


def test_latency_of_gives_median_95th_percentile_max_and_mean() -> None:
    lat = Latency.of(np.array([1, 2, 3, 4, 10]))
    assert (lat.p50, lat.p95, lat.max, lat.mean) == pytest.approx((3.0, 8.8, 10.0, 4.0))
    assert isinstance(Latency.of([5]).p50, float)


# --- COBS ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "want"), [(0, 1), (1, 2), (253, 254), (254, 256), (507, 509), (508, 511)])
def test_max_encoded_len_is_one_overhead_byte_per_254_and_one_more(n: int, want: int) -> None:
    assert max_encoded_len(n) == want
    assert len(cobs_encode(b"\x01" * n)) == want  # no zero byte: the worst case


def test_cobs_decode_refuses_empty_input_an_inner_delimiter_and_a_truncated_block() -> None:
    with pytest.raises(ValueError, match=r"^empty COBS input$"):
        cobs_decode(b"")
    with pytest.raises(ValueError, match=r"^cobs$"):
        cobs_decode(b"\x05\x01")  # the block announces 4 more bytes, 1 follows
    with pytest.raises(ValueError):
        cobs_decode(b"\x02\x01\x00\x02\x01")  # two frames
    assert cobs_decode(cobs_encode(b"\x00\x01\x00")) == b"\x00\x01\x00"


def test_the_stream_decoder_skips_empty_frames_before_and_after_a_frame() -> None:
    dec = CobsStreamDecoder(16)
    assert dec.feed(b"\x00") == []
    assert dec.feed(b"\x00\x01\x00\x00\x00") == [DecodedFrame(b"", None)]
    assert dec.feed(b"\x02\x07\x00\x00") == [DecodedFrame(b"\x07", None)]


def test_the_stream_decoder_reports_oversize_and_cobs_errors_with_no_data_and_recovers() -> None:
    dec = CobsStreamDecoder(3)
    assert dec.feed(cobs_encode(b"\x01\x02\x03\x04") + b"\x00") == [DecodedFrame(b"", "oversize")]
    assert dec.feed(cobs_encode(b"\x01\x02\x03") + b"\x00") == [DecodedFrame(b"\x01\x02\x03", None)]
    assert dec.feed(b"\x04\x01\x00") == [DecodedFrame(b"", "cobs")]
    assert dec.feed(b"\x02\x09\x00") == [DecodedFrame(b"\x09", None)]


# --- frames and the deframer ---------------------------------------------------------------


def _frame(type_id: int, seq: int, payload: bytes, version: int = PROTOCOL_VERSION) -> bytes:
    return encode_raw(type_id, seq, payload, version)


def test_frame_errors_say_what_was_found_and_carry_the_sequence_number() -> None:
    good = _frame(MsgType.PING, 77, b"ab")
    bad_crc = good[:-2] + bytes([good[-2] ^ 1, good[-1]])
    with pytest.raises(CrcError, match=r"^CRC 0x[0-9a-f]{4} in frame, 0x[0-9a-f]{4} computed$") as e1:
        decode_frame(bad_crc)
    with pytest.raises(VersionError, match=rf"^protocol version 9, this side speaks {PROTOCOL_VERSION}$") as e2:
        decode_frame(_frame(MsgType.PING, 78, b"", version=9))
    long_by_one = bytearray(_frame(MsgType.PING, 79, b"abc"))
    long_by_one[4] = 2  # length field 2, payload 3
    body = bytes(long_by_one[:-2])
    from protocol.crc import crc16_ccitt
    with pytest.raises(LengthError, match=r"^header says 2 payload bytes, frame has 3$") as e3:
        decode_frame(body + crc16_ccitt(body).to_bytes(2, "little"))
    with pytest.raises(UnknownTypeError, match=r"^unknown message type 0x7e$") as e4:
        decode_frame(_frame(0x7E, 80, b""))
    with pytest.raises(PayloadError, match=r"^bad Error payload: ") as e5:
        decode_frame(_frame(MsgType.ERROR, 81, b"\x01"))
    assert [e.value.seq for e in (e1, e2, e3, e4, e5)] == [77, 78, 79, 80, 81]


def test_a_payload_of_exactly_max_payload_is_sent_and_one_more_byte_is_refused() -> None:
    wire = encode_frame(Ping(b"\x01" * MAX_PAYLOAD), 1)
    f = decode_frame(cobs_decode(wire[:-1]))
    assert isinstance(f.msg, Ping) and len(f.msg.data) == MAX_PAYLOAD and f.version == PROTOCOL_VERSION
    with pytest.raises(LengthError, match=rf"^Ping payload {MAX_PAYLOAD + 1} bytes > MAX_PAYLOAD {MAX_PAYLOAD}$"):
        encode_frame(Ping(b"\x01" * (MAX_PAYLOAD + 1)), 1)


def test_sequence_numbers_are_sixteen_bits() -> None:
    assert decode_frame(cobs_decode(encode_frame(Ping(b""), 0xFFFF)[:-1])).seq == 0xFFFF
    for seq in (-1, 0x10000):
        with pytest.raises(ValueError, match=rf"^sequence number {seq} outside 0\.\.65535$"):
            encode_frame(Ping(b""), seq)


def test_a_message_that_cannot_be_built_is_a_payload_error_naming_it() -> None:
    with pytest.raises(PayloadError, match=r"^cannot build SamplesAck: "):
        encode_frame(SamplesAck(1, 2, 3, 4, 0, 1, 2, 1, ((0, 1, (5,)),)), 1)  # 1 score, n_scores says 2


def test_stream_results_decode_to_tuples_of_ints() -> None:
    msg = SamplesAck(9, 250, 1000, 40, 1, 1, 2, 2, ((100, 3, (-5, 6)), (125, 0, (7, -8))))
    f = decode_frame(cobs_decode(encode_frame(msg, 5)[:-1]))
    assert f == Frame(5, msg) and f.msg.results == ((100, 3, (-5, 6)), (125, 0, (7, -8)))  # type: ignore[union-attr]


def test_the_deframer_counts_frames_and_errors_and_names_each_error() -> None:
    d = Deframer(max_frame=HEADER_SIZE + 2 + 8)
    ok = encode_frame(Ping(b"hi"), 1)
    events = d.feed(ok + ok + b"\x05\x01\x00" + encode_frame(Ping(b"x" * 9), 2) + ok)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Frame", "Frame", "CobsError", "LengthError", "Frame"]
    assert str(events[2]) == "delimiter inside a COBS block (truncated or garbled frame)"
    assert str(events[3]) == f"frame longer than {HEADER_SIZE + 10} bytes"
    assert isinstance(events[2], CobsError)
    assert (d.stats.frames_ok, d.stats.errors) == (3, 2)
    d.feed(ok)
    assert (d.stats.frames_ok, d.stats.errors) == (4, 2)


# --- generated files -----------------------------------------------------------------------

_SHA = re.compile(r"\(sha256 [0-9a-f]{16}\)")


def test_the_generated_header_renders_as_committed_but_for_the_source_hash() -> None:
    """The staleness test compares the hash too; this one holds under mutmut, which rewrites the
    hashed sources."""
    assert _SHA.sub("(sha)", render_proto_defs()) == _SHA.sub("(sha)", DEFAULT_OUT.read_text())


def test_write_proto_defs_creates_its_folder_and_writes_the_rendered_header(tmp_path: Path) -> None:
    out = write_proto_defs(tmp_path / "gen" / "proto_defs.h")
    assert out == tmp_path / "gen" / "proto_defs.h" and out.read_text() == render_proto_defs()


def test_write_golden_reproduces_the_committed_frames_and_index_byte_for_byte(tmp_path: Path) -> None:
    out = write_golden(tmp_path / "frames")
    assert out == tmp_path / "frames"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in DEFAULT_DIR.iterdir())
    for p in sorted(DEFAULT_DIR.iterdir()):
        assert (out / p.name).read_bytes() == p.read_bytes(), f"{p.name} differs: run python -m protocol.golden"


def test_docgen_type_names_of_the_constructs_the_tables_use() -> None:
    assert _type_name(cs.Renamed(cs.Int16ul, "a")) == "u16"
    assert _type_name("x" / ("y" / cs.Int32sl)) == "i32"
    assert _type_name(cs.GreedyString("ascii")) == "ASCII text to the end"
    assert _type_name(cs.GreedyBytes) == "bytes to the end"
    assert _fields("X", cs.Int8ul) == "?"
    assert _fields("X", cs.Struct(cs.Padding(1), "a" / cs.Int8ul, cs.Terminated)) == "a u8"
    assert _fields("X", cs.Struct(cs.Terminated)) == "empty"


def test_update_readme_refuses_a_text_without_the_generated_blocks() -> None:
    with pytest.raises(ValueError, match=r"README\.md: no <!-- generated:messages --> block$"):
        update_readme("no tables here\n")
