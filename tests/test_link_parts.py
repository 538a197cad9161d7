"""Windows in parts (protocol v3: Part, Run, Held) against the real C dispatcher and parts staging,
evidence attributed by order, per-byte link faults, and the fault-injecting TCP proxy."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import CATTLE, FIXTURES, needs_qemu
from cproto import CProto, build_host
from test_client import CSessionPort, _Loop

from harness.device.client import MISSING_COPIES, DeviceClient
from harness.device.linkfaults import FaultyPort, LinkFaults
from harness.device.linkproxy import LinkProxy
from protocol import Deframer, Error, ErrorCode, Held, Part, Result, Run, crc32_input, encode_frame


@pytest.fixture(scope="module")
def cproto() -> CProto:
    build_host()
    return CProto()


WINDOW = (np.arange(150, dtype=np.int16) * 37 - 2000).reshape(50, 3)
"""50 samples x 3 axes: 300 sample bytes, 7 parts of 48 bytes (the last 12)."""


def _client(port: CSessionPort, part_bytes: int = 48, adaptive: bool = False) -> DeviceClient:
    c = DeviceClient(port, "c-dispatcher", latency_budget_s=0.0, retries=3, part_bytes=part_bytes,  # type: ignore[arg-type]
                     adaptive=adaptive)
    c.timeout_for = lambda *_: 5.0  # type: ignore[method-assign]
    return c


def _frames(wire: bytes) -> list[bytes]:
    return [f + b"\x00" for f in wire.split(b"\x00") if f]


def _edit_part(index: int, edit: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """A mangler for the write that carries the parts: ``edit`` the frame of part ``index``."""
    def mangle(wire: bytes) -> bytes:
        fs = _frames(wire)
        fs[index] = edit(fs[index])
        return b"".join(fs)
    return mangle


def _flip(frame: bytes) -> bytes:
    b = bytearray(frame)
    b[len(b) // 2] ^= 0x04 if b[len(b) // 2] not in (0x00, 0x04) else 0x02
    return bytes(b)


def test_a_window_goes_in_parts_and_one_damaged_part_costs_only_that_part(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    port.mangle.append(_edit_part(3, _flip))
    c = _client(port)
    t0 = time.monotonic()
    r = c.infer(11, WINDOW)
    assert time.monotonic() - t0 < 1.0  # no 5 s timeout was waited
    assert r.window_id == 11 and r.input_crc == crc32_input(WINDOW.astype("<i2").tobytes())
    assert c.stats.parts_sent == 7 + MISSING_COPIES  # the seven parts, then part 3 alone, twice
    assert c.stats.retry_reasons["device missing parts"] == 1
    assert cproto.infer_calls() == 1


def test_a_part_lost_without_a_trace_is_sent_again_when_the_run_finds_it_missing(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    port.mangle.append(_edit_part(5, lambda f: b""))
    c = _client(port)
    r = c.infer(12, WINDOW)
    assert r.input_crc == crc32_input(WINDOW.astype("<i2").tobytes())
    assert c.stats.parts_sent == 7 + MISSING_COPIES and c.stats.retries == 1 and cproto.infer_calls() == 1


def test_a_damaged_result_of_a_run_is_asked_for_again_and_the_cached_result_comes_back(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    port.mangle_reply.append(_flip)  # the parts get no reply; the Run's reply is damaged
    c = _client(port)
    r = c.infer(13, WINDOW)
    assert r.window_id == 13 and c.stats.bad_frames == 1 and c.stats.parts_sent == 7
    assert cproto.infer_calls() == 1


def test_a_window_no_larger_than_a_part_and_part_bytes_zero_go_as_one_infer(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    c = _client(port, part_bytes=0)
    c.infer(1, WINDOW)
    c.part_bytes = 48
    c.infer(2, WINDOW[:8])  # 48 bytes
    assert c.stats.parts_sent == 0 and cproto.infer_calls() == 2


def _adaptive_run(c: DeviceClient, ids: range) -> list[int]:
    """Infer WINDOW under each id; per window the part size it went in last (0: whole)."""
    sizes: list[int] = []
    last = [0]
    original = c._send_parts

    def spy(window_id, t, which):  # type: ignore[no-untyped-def]
        last[0] = t.part_bytes
        original(window_id, t, which)
    c._send_parts = spy  # type: ignore[method-assign]
    for i in ids:
        last[0] = 0
        r = c.infer(i, WINDOW)
        assert r.window_id == i and r.input_crc == crc32_input(WINDOW.astype("<i2").tobytes())
        sizes.append(last[0])
    return sizes


def test_a_clean_link_gets_whole_windows_and_a_damaged_whole_window_goes_again_in_parts(cproto: CProto) -> None:
    """Adaptive: whole windows while nothing is damaged; a whole window whose Infer is damaged goes
    again in parts (the damaged Infer never ran), and the windows after it follow the estimated
    damage rate back to whole once HISTORY clean windows have passed."""
    from harness.device.client import HISTORY

    port = CSessionPort(cproto)
    c = _client(port, adaptive=True)
    assert _adaptive_run(c, range(1, 3)) == [0, 0]
    port.mangle.append(_flip)  # the third window's Infer arrives damaged: the device says CRC
    sizes = _adaptive_run(c, range(3, 4 + HISTORY))
    assert sizes[0] in (48, 96, 192) and sizes[-1] == 0
    assert c.stats.retry_reasons == {"whole window damaged: sent in parts": 1}
    assert cproto.infer_calls() == 2 + 1 + HISTORY  # one inference per window
    assert c.damage_rate() == 0.0


@pytest.mark.parametrize(("rate", "size"), [(0.0, 0), (0.001, 192), (0.003, 96), (0.01, 48)])
def test_the_part_size_is_the_cheapest_at_the_estimated_damage_rate(cproto: CProto, rate: float, size: int) -> None:
    c = _client(CSessionPort(cproto), adaptive=True)
    c._history.extend([(100_000, round(rate * 100_000))] * 4)  # type: ignore[attr-defined]
    assert c.damage_rate() == pytest.approx(rate)
    assert c.part_size(300) == size


def test_expected_wire_bytes_on_a_clean_link_are_the_frames_real_lengths() -> None:
    from harness.device.client import expected_wire_bytes
    from protocol import Infer, Run

    data = WINDOW.astype("<i2").tobytes()
    whole = len(encode_frame(Infer(1, 50, 3, tuple(WINDOW.ravel().tolist())), 1))
    parts = sum(len(encode_frame(Part(1, 1, 50, 3, 48, i, data[i * 48:(i + 1) * 48]), 1)) for i in range(7))
    assert abs(expected_wire_bytes(300, 0, 0.0) - whole) <= 2
    assert abs(expected_wire_bytes(300, 48, 0.0) - parts - len(encode_frame(Run(1, 1, 50, 3), 1))) <= 7
    assert expected_wire_bytes(300, 48, 0.01) > expected_wire_bytes(300, 48, 0.0) * 1.9  # 70-byte frames: 1/0.99^70


def test_a_whole_window_whose_reply_is_damaged_is_asked_for_again_whole(cproto: CProto) -> None:
    """Damage on the way back says nothing against the request: the Infer is resent as it was
    and the device answers from its reply cache, no parts, no second inference."""
    port = CSessionPort(cproto)
    port.mangle_reply.append(_flip)
    c = _client(port, adaptive=True)
    assert _adaptive_run(c, range(1, 2)) == [0]
    assert c.stats.windows_in_parts == 0 and c.stats.bad_frames == 1 and cproto.infer_calls() == 1


def test_without_adaptive_every_window_goes_in_parts(cproto: CProto) -> None:
    c = _client(CSessionPort(cproto), adaptive=False)
    for i in range(1, 4):
        c.infer(i, WINDOW)
    assert c.stats.windows_in_parts == 3 and c.stats.windows_whole == 0 and c.stats.parts_sent == 21


def test_a_window_of_more_than_32_parts_is_sent_in_larger_parts(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    c = _client(port, part_bytes=2)
    r = c.infer(3, WINDOW)
    assert r.input_crc == crc32_input(WINDOW.astype("<i2").tobytes()) and 0 < c.stats.parts_sent <= 32


def _ask(cproto: CProto, *wires: bytes) -> list[object]:
    out = cproto.session_feed(b"".join(wires))
    return [ev.msg if hasattr(ev, "msg") else ev for ev in Deframer().feed(out)]


DATA = WINDOW.astype("<i2").tobytes()


@pytest.mark.parametrize(("part", "why"), [
    (Part(1, 1, 50, 3, 48, 7, b""), "index past the last part"),
    (Part(1, 1, 50, 3, 47, 0, DATA[:47]), "odd part size"),
    (Part(1, 1, 50, 3, 0, 0, b""), "zero part size"),
    (Part(1, 1, 50, 3, 48, 6, DATA[288:298]), "last part shorter than the window's rest"),
    (Part(1, 1, 50, 3, 48, 0, DATA[:50]), "part longer than part_bytes"),
    (Part(1, 1, 50, 3, 8, 0, DATA[:8]), "more than 32 parts"),
])
def test_the_device_refuses_a_part_that_does_not_fit_its_window(cproto: CProto, part: Part, why: str) -> None:
    CSessionPort(cproto)  # a fresh session
    got = _ask(cproto, encode_frame(part, 9))
    assert got == [Error(ErrorCode.PAYLOAD, 9, 0)], why


def test_a_run_answers_held_until_every_part_of_its_transfer_arrived(cproto: CProto) -> None:
    CSessionPort(cproto)
    parts = [encode_frame(Part(4, 2, 50, 3, 100, i, DATA[i * 100:(i + 1) * 100]), 20 + i) for i in range(3)]
    assert _ask(cproto, parts[0], parts[2], encode_frame(Run(4, 2, 50, 3), 30)) == [Held(4, 2, 3, 0b101)]
    assert _ask(cproto, encode_frame(Run(4, 1, 50, 3), 31)) == [Held(4, 1, 0, 0)]  # another transfer: none held
    got = _ask(cproto, parts[1], encode_frame(Run(4, 2, 50, 3), 32))
    assert len(got) == 1 and isinstance(got[0], Result) and got[0].input_crc == crc32_input(DATA)
    # a part of a new transfer starts staging anew
    assert _ask(cproto, encode_frame(Part(4, 3, 50, 3, 100, 0, DATA[:100]), 33),
                encode_frame(Run(4, 3, 50, 3), 34)) == [Held(4, 3, 3, 0b001)]
    assert cproto.infer_calls() == 1


def test_a_resend_whose_reply_is_damaged_too_is_resent_at_once_not_after_a_timeout(cproto: CProto) -> None:
    """The cause of resends ending in timeouts: evidence after a blind resend was taken for the
    same damage for 50 ms plus the frame's time; on an emulator the resend's reply comes sooner."""
    port = CSessionPort(cproto)
    port.mangle.append(lambda w: w[:4] + b"\x00" + w[4:])  # the first transmission: two broken halves
    port.mangle_reply += [lambda b: b, _flip]  # their Errors arrive; the resend's Result is damaged
    c = _client(port)
    t0 = time.monotonic()
    r = c.infer(5, WINDOW[:4])
    assert r.window_id == 5 and time.monotonic() - t0 < 1.0
    assert c.stats.bad_frames == 1 and cproto.infer_calls() == 1


def test_evidence_that_names_no_request_is_about_the_oldest_unanswered_one(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    port.mangle.append(lambda w: bytes([w[0] + 40]) + w[1:] if w[0] < 200 else w)  # a COBS error: seq untrusted
    c = _client(port, part_bytes=0)
    c.start_infer(1, WINDOW[:4], whole=True)
    c.start_infer(2, WINDOW[4:8], whole=True)
    assert c.finish_infer(1, WINDOW[:4])[0].window_id == 1
    assert c.finish_infer(2, WINDOW[4:8])[0].window_id == 2
    assert c.stats.retries == 1 and cproto.infer_calls() == 2  # window 1 alone was sent again


def test_a_reply_to_a_later_request_resends_an_earlier_one_the_device_never_saw(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    port.mangle.append(lambda w: b"")  # the first Infer vanishes whole: no Error names it
    c = _client(port, part_bytes=0)
    t0 = time.monotonic()
    c.start_infer(1, WINDOW[:4], whole=True)
    c.start_infer(2, WINDOW[4:8], whole=True)
    assert c.finish_infer(1, WINDOW[:4])[0].window_id == 1 and time.monotonic() - t0 < 1.0
    assert c.stats.retry_reasons == {"device answered a later request first": 1}


def test_windows_in_parts_survive_every_per_byte_fault_kind_against_the_c_dispatcher(cproto: CProto) -> None:
    port = CSessionPort(cproto)
    faults = LinkFaults.parse("drop:0.002,flip:0.002,dup:0.002,garbage:0.002", seed=5, unit="byte")
    fp = FaultyPort(port, faults)
    c = DeviceClient(fp, "c-dispatcher", latency_budget_s=0.0, part_bytes=48)  # type: ignore[arg-type]
    c.timeout_for = lambda *_: 0.05  # type: ignore[method-assign]
    rng = np.random.default_rng(1)
    for i in range(60):
        x = rng.integers(-2000, 2000, size=(50, 3), dtype=np.int16)
        assert c.infer(i, x).input_crc == crc32_input(x.astype("<i2").tobytes())
    inj = fp.injected()["to-device"]
    assert sum(inj.get(k, 0) for k in ("drop", "flip", "dup", "garbage")) > 20
    assert cproto.infer_calls() == 60


# ---- per-byte faults

FRAMES = [bytes([1 + i % 250]) * 40 + b"\x00" for i in range(500)]
CLEAN = b"".join(FRAMES)


def _bytes_through(spec: str, seed: int = 1) -> tuple[bytes, dict[str, int]]:
    sink = _Loop()
    fp = FaultyPort(sink, LinkFaults.parse(spec, seed, "to-device", unit="byte"))
    for f in FRAMES:
        fp.write(f)
    return bytes(sink.sent), fp.injected()["to-device"]


def test_per_byte_faults_meet_bytes_at_their_rate_seeded() -> None:
    assert _bytes_through("flip:0.01") == _bytes_through("flip:0.01")
    assert _bytes_through("flip:0.01")[0] != _bytes_through("flip:0.01", 2)[0]
    flipped, inj = _bytes_through("flip:0.01")
    expect = 0.01 * len(CLEAN)  # 205 over 20,500 bytes; 5 sigma is about 71
    assert inj["bytes"] == len(CLEAN) and abs(inj["flip"] - expect) < 72
    assert sum(bin(a ^ b).count("1") for a, b in zip(flipped, CLEAN, strict=True)) == inj["flip"]
    dropped, inj = _bytes_through("drop:0.01")
    assert len(CLEAN) - len(dropped) == inj["drop"] and abs(inj["drop"] - expect) < 72
    dup, inj = _bytes_through("dup:0.01")
    assert len(dup) - len(CLEAN) == inj["dup"] > 0
    garbage, inj = _bytes_through("garbage:0.01")
    assert inj["garbage"] <= len(garbage) - len(CLEAN) <= 16 * inj["garbage"]
    assert _bytes_through("flip:0.5")[1]["flip"] > 0.4 * len(CLEAN)


def test_a_per_byte_stall_holds_that_byte_and_everything_after_it() -> None:
    sink = _Loop()
    fp = FaultyPort(sink, LinkFaults({"stall": 0.2}, "to-device", 3, stall_s=0.05, unit="byte"))
    fp.write(FRAMES[0])
    n_stalls = fp.injected()["to-device"].get("stall", 0)
    assert n_stalls >= 1 and fp.injected()["to-device"]["stall_ms"] == 50 * n_stalls
    assert len(sink.sent) < len(FRAMES[0])  # the bytes from the first stalled one on are held
    deadline = time.monotonic() + 0.05 * n_stalls + 1.0
    while len(sink.sent) < len(FRAMES[0]) and time.monotonic() < deadline:
        fp.flush()
        time.sleep(0.01)
    assert bytes(sink.sent) == FRAMES[0]


# ---- the TCP proxy

def _echo_server() -> tuple[socket.socket, threading.Thread]:
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    return srv, th


def _through_proxy(faults: LinkFaults, tmp: Path, payload: bytes) -> tuple[bytes, dict[str, dict[str, int]]]:
    srv, th = _echo_server()
    with LinkProxy(faults, tmp / "injected.json") as proxy:
        url = proxy.start(f"socket://127.0.0.1:{srv.getsockname()[1]}")
        host, _, port = url[len("socket://"):].rpartition(":")
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(payload)
            got = b""
            s.settimeout(1.0)
            try:
                while len(got) < 2 * len(payload):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except TimeoutError:
                pass
        injected = proxy.stop()
    srv.close()
    th.join(timeout=5)
    return got, injected


def test_the_link_proxy_is_a_real_tcp_hop_that_forwards_both_ways(tmp_path: Path) -> None:
    got, injected = _through_proxy(LinkFaults.parse("flip:0", unit="byte"), tmp_path, CLEAN[:4100])
    assert got == CLEAN[:4100]
    assert injected["to-device"]["bytes"] == injected["from-device"]["bytes"] == 4100


def test_the_link_proxy_injects_what_its_spec_says_and_reports_it(tmp_path: Path) -> None:
    got, injected = _through_proxy(LinkFaults.parse("drop:0.02", seed=4, unit="byte"), tmp_path, CLEAN[:4100])
    dropped = injected["to-device"].get("drop", 0) + injected["from-device"].get("drop", 0)
    assert dropped > 20 and len(got) == 4100 - dropped


def test_the_link_proxy_refuses_an_upstream_that_is_not_a_socket(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="forwards to a socket:// URL"):
        LinkProxy(LinkFaults.parse("flip:0"), tmp_path / "x.json").start("/dev/ttyACM0")


# ---- the real firmware on QEMU, through the proxy

@needs_qemu
@pytest.mark.parametrize("board", ["collar", "eartag"])
def test_the_firmware_takes_windows_in_parts_through_a_faulty_proxy_bit_exact(board: str, tmp_path: Path) -> None:
    """Per-byte faults of every kind in a real TCP proxy between the client and QEMU's socket:
    every window verified bit-exact, none silently wrong, and parts were resent."""
    from harness.data.fixtures import load_fixtures
    from harness.device.targets import QemuTarget
    from harness.verdict.evaluate import run_device

    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    faults = LinkFaults.parse("all:0.002", seed=2, unit="byte", stall_s=0.05)
    run = run_device(QemuTarget(board, "w8a16"), fx, CATTLE, tmp_path / "j.jsonl", limit=30, log=lambda m: None,
                     link_faults=faults, link_proxy=True)
    assert run.n_verified == 30 and run.n_mismatches == 0 and not run.failures
    assert run.versus_reference.n_exact == 30  # type: ignore[union-attr]
    injected = run.link["faults"]
    assert isinstance(injected, dict) and sum(v for d in injected.values() for k, v in d.items()
                                              if k in ("drop", "flip", "dup", "garbage")) > 5
    assert str(run.link["faults_injected"]).startswith("proxy: ")
    assert int(run.link["parts_sent"]) > 0 and int(run.link["windows_in_parts"]) > 0  # type: ignore[call-overload]


@needs_qemu
def test_the_link_bench_compares_each_row_with_the_clean_runs_either_side_of_it() -> None:
    """A short per-byte bench through the proxy: a clean run (through the proxy too) before the
    row and after it, the row's clean time their mean, and nothing silently wrong."""
    from harness.bench.linkbench import run_link_bench
    from harness.data.fixtures import load_fixtures

    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    logged: list[str] = []
    rows = run_link_bench(fx, CATTLE, "eartag", limit=12, kinds=("flip",), rates=(0.01,), unit="byte",
                          proxy=True, log=logged.append)
    cleans = [float(m.split(" in ")[1].split()[0]) for m in logged if m.startswith("clean ")]
    assert [m.split(":")[0] for m in logged if m.startswith("clean ")] == ["clean 0", "clean 1"]
    clean, row = rows
    assert clean.fault == "none" and clean.verified == 12 and clean.seconds == pytest.approx(cleans[0], abs=0.06)
    assert clean.injected.startswith("proxy: ") and "flip" not in clean.injected  # the same path, nothing injected
    assert row.fault == "flip" and row.silently_wrong == 0 and row.verified + row.failed == 12
    assert row.clean_seconds == pytest.approx(sum(cleans) / 2, abs=0.06)
