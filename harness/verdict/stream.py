"""Stream mode: replay recordings to the device as raw samples, the way a collar receives them.

Every whole bout of the fixture cows (``fixtures/recordings/bouts.npz``) is a continuous stream of
raw counts. The harness sets the cow's orientation calibration on the device
(SetRotation), starts a stream with a hop (StreamStart) and sends the samples a few per frame
(Samples); the device rotates them, advances one GRU state per window in progress by one step per
sample, and answers each frame with a result for every window that ended in it. Every window of
every stream is checked against the reference of the same window (the integer reference,
bit-exact, for the quantized variants; torch within tolerance for float32). A lost frame is
detected by the device (sequence numbers per sample frame): the windows it touched are reported
as lost, the stream goes on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from harness.config.boards import BOARDS
from harness.config.descriptor import ModelDescriptor
from harness.data.fixtures import FixtureSet
from harness.data.windows import rotate_xy_q14
from harness.device.client import DeviceClient, fault_text, open_transport
from harness.device.targets.base import Target, WrongBoard
from harness.energy import estimate_energy
from harness.reference import load_reference
from harness.verdict.evaluate import board_family, check_case
from protocol import ScoreKind, TimeBase

__all__ = ["STREAM_SLOTS", "Stream", "StreamRun", "check_hop", "fixture_streams", "run_stream"]


@dataclass(frozen=True)
class Stream:
    """Consecutive raw samples of one bout of one cow."""

    cow: str
    bout: str
    first: int
    """index of the stream's first sample in its bout"""
    x: np.ndarray
    """raw counts int16[n, 3]"""
    label: int = -1
    """the bout's class (0-based in the descriptor's order; -1: not known)"""


def fixture_streams(fx: FixtureSet) -> list[Stream]:
    """The streams to replay: every whole bout of bouts.npz that holds at least one window; for a
    fixture folder without bouts.npz, the fixture windows of each bout that follow each other
    (start + window = next start) joined."""
    ws = fx.windows
    if fx.bouts is not None:
        b = fx.bouts
        return [Stream(str(b.cow[i]), str(b.bout[i]), 0, b.counts(i), int(b.label[i])) for i in range(len(b))
                if len(b.counts(i)) >= ws.x.shape[1]]
    w = ws.x.shape[1]
    order = sorted(range(len(ws)), key=lambda i: (str(ws.cow[i]), str(ws.bout[i]), int(ws.start[i])))
    streams: list[Stream] = []
    run: list[int] = []

    def flush() -> None:
        if run:
            i0 = run[0]
            streams.append(Stream(str(ws.cow[i0]), str(ws.bout[i0]), int(ws.start[i0]),
                                  np.concatenate([ws.x[i] for i in run]).astype(np.int16), int(ws.y[i0])))
            run.clear()

    for i in order:
        if run and (ws.bout[i] != ws.bout[run[-1]] or int(ws.start[i]) != int(ws.start[run[-1]]) + w):
            flush()
        run.append(i)
    flush()
    return streams


STREAM_SLOTS = 4
"""Windows the firmware advances at once in stream mode, one GRU state each (MODEL_STREAM_SLOTS in
device_fw/src/app/model.h; a test reads it there)."""


def check_hop(window: int, hop: int, where: str = "hop") -> None:
    """ValueError unless the device can take this hop: at most ``window`` and at most STREAM_SLOTS
    windows in progress at once (a window of ``window`` samples starts every ``hop``)."""
    if not 1 <= hop <= window:
        raise ValueError(f"{where} {hop}: must be 1..{window} (the window's length)")
    slots = -(-window // hop)
    if slots > STREAM_SLOTS:
        raise ValueError(f"{where} {hop}: windows of {window} samples would be in progress {slots} at a time; the "
                         f"device holds {STREAM_SLOTS} (MODEL_STREAM_SLOTS): use a hop of at least "
                         f"{-(-window // STREAM_SLOTS)}")


def _windows(n: int, window: int, hop: int) -> list[int]:
    return list(range(0, n - window + 1, hop))


STREAM_RATE_FACTOR = 5.0
"""The stream report's second rate, as a multiple of the model's sample rate."""


@dataclass
class StreamRun:
    board: str
    variant: str
    target: str
    hop: int
    samples_per_frame: int
    streams: int
    samples: int
    frames: int
    windows_expected: int
    windows_verified: int
    windows_lost: int
    """windows that overlapped a lost frame (reported by the device's gap flag)"""
    mismatches: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """windows expected but never answered, not explained by a lost frame"""
    time_unit: str = ""
    per_sample: float = 0.0
    """device time per sample, mean, in time_unit"""
    last_sample_to_result: float = 0.0
    """device time from the window's last sample to its result (that sample plus the head), mean"""
    last_sample_to_result_max: float = 0.0
    clock_hz: int = 0
    energy_per_sample_uj: float = 0.0
    energy_basis: str = ""
    resends: int = 0
    calibration_ids: dict[str, int] = field(default_factory=dict)
    sample_rate_hz: float = 0.0
    """the model's sample rate (its descriptor's)"""
    check: str = ""
    """how windows were checked: 'bit-exact', or 'within <tolerance>' for a float reference"""
    windows: list[dict[str, object]] = field(default_factory=list)
    """every window of every stream: stream, animal, bout, start (sample in the bout), label,
    device class (None: no result), state (verified, mismatch, lost, missing), last_to_result
    (device time from its last sample to its result, in time_unit; None without a result)"""

    def rates_hz(self) -> tuple[float, float]:
        """The sample rates duty cycle and energy are stated at: the model's, and five times it (the
        cattle model's 10 Hz recordings and the seed paper's 50 Hz collar)."""
        return (self.sample_rate_hz, STREAM_RATE_FACTOR * self.sample_rate_hz)

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.missing and self.windows_verified > 0

    def per_sample_ms(self) -> float:
        return self.per_sample / self.clock_hz * 1e3

    def duty_cycle(self, rate_hz: float) -> float:
        """Share of the time the core computes at this sample rate (active time per sample x rate)."""
        return self.per_sample_ms() / 1e3 * rate_hz

    def energy_per_hour_j(self, rate_hz: float) -> float:
        """Active energy per hour of operation at this sample rate (sleep current not included)."""
        return self.energy_per_sample_uj * 1e-6 * rate_hz * 3600

    def measured(self) -> dict[str, object]:
        """The measured values of this stream run, flat, with their units in the names (JUnit
        properties, as DeviceRun.measured gives for window mode)."""
        m: dict[str, object] = {
            "stream_hop": self.hop, "streams": self.streams, "stream_samples": self.samples,
            "stream_frames": self.frames, "stream_windows_expected": self.windows_expected,
            "stream_windows_verified": self.windows_verified, "stream_windows_lost": self.windows_lost,
            "stream_windows_mismatched": len(self.mismatches), "stream_windows_missing": len(self.missing),
            "stream_check": self.check, "stream_time_unit": self.time_unit,
            "stream_per_sample_ms": round(self.per_sample_ms(), 6) if self.clock_hz else None,
            "stream_last_sample_to_result_ms": (round(self.last_sample_to_result / self.clock_hz * 1e3, 4)
                                                if self.clock_hz else None),
            "stream_energy_per_sample_uj": round(self.energy_per_sample_uj, 6), "stream_resends": self.resends,
        }
        for r in self.rates_hz():
            m[f"stream_duty_cycle_at_{r:g}_hz"] = round(self.duty_cycle(r), 8) if self.clock_hz else None
        return m

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.update(passed=self.passed, per_sample_ms=self.per_sample_ms(),
                 duty_cycle={f"{r:g} Hz": self.duty_cycle(r) for r in self.rates_hz()},
                 energy_per_hour_j={f"{r:g} Hz": self.energy_per_hour_j(r) for r in self.rates_hz()})
        return d


def run_stream(target: Target, fx: FixtureSet, models: ModelDescriptor, hop: int | None = None,
               samples_per_frame: int = 5,
               drop_frames: Iterable[int] = (), limit_streams: int | None = None) -> StreamRun:
    """Replay the fixture streams through ``target`` in stream mode and check every window.

    ``drop_frames``: global indices of sample frames not sent (their stream sequence numbers are
    skipped), to see the device detect the loss and the stream resynchronise. ``hop``: default the
    descriptor's."""
    hop = models.hop if hop is None else hop
    streams = fixture_streams(fx)[:limit_streams]
    window = fx.windows.x.shape[1]
    check_hop(window, hop)
    if window % samples_per_frame or hop % samples_per_frame:
        raise ValueError(f"samples per frame {samples_per_frame} must divide the hop {hop} and the window "
                         f"{window} (so that every window ends with a frame)")
    drops = set(drop_frames)
    board = BOARDS[target.board]
    run = StreamRun(target.board, target.variant, target.kind, hop, samples_per_frame, len(streams), 0, 0, 0, 0, 0,
                    sample_rate_hz=models.sample_rate_hz)
    per_sample: list[float] = []
    latency: list[float] = []
    frame_no = 0
    with target:
        client = DeviceClient(open_transport(target.start()), target.description, latency_budget_s=60.0)
        try:
            info = client.hello()
            if board_family(info.board) != target.board:
                raise WrongBoard(f"{target.description}: the device says it is board {info.board!r}")
            if info.fault_flags:
                raise RuntimeError(f"{target.description}: fault record at boot: {fault_text(info)}")
            tpi = board.qemu_machine().ticks_per_instruction if info.time_base == TimeBase.SYSTICK_ICOUNT else 1.0
            run.time_unit = ("instructions (QEMU -icount)" if info.time_base == TimeBase.SYSTICK_ICOUNT
                             else "DWT cycles" if target.kind == "board" else "Renode virtual cycles")
            run.clock_hz = board.clock_hz if info.time_base == TimeBase.SYSTICK_ICOUNT else info.clock_hz
            plan = [_windows(len(st.x), window, hop) for st in streams]
            cal_all = [rotate_xy_q14(np.stack([st.x[s:s + window] for s in starts]), fx.rotations[st.cow])
                       for st, starts in zip(streams, plan, strict=True) if starts]
            ref_all = load_reference(models, target.variant, np.concatenate(cal_all)) if cal_all else None
            if ref_all is not None:
                check_case(info, models, target.variant, target.description, ref_all)
                run.check = "bit-exact" if ref_all.exact else f"within {ref_all.tolerance:g}"
            ref_at = np.cumsum([0] + [len(p) for p in plan])
            rot_now: tuple[int, int] | None = None
            last_id = 0
            for si, st in enumerate(streams):
                rot = fx.rotations[st.cow]
                if rot != rot_now:
                    r = client.set_rotation(rot)
                    run.calibration_ids[st.cow] = last_id = r.calibration_id
                    rot_now = rot
                started = client.stream_start(hop)
                if started.window != window:
                    raise RuntimeError(f"{target.description}: device windows are {started.window} samples, the "
                                       f"fixtures' {window}")
                starts = plan[si]
                got: dict[int, tuple[int, np.ndarray]] = {}
                lat_at: dict[int, float] = {}
                lost: list[tuple[int, int]] = []
                for seq, first in enumerate(range(0, len(st.x), samples_per_frame)):
                    chunk = st.x[first:first + samples_per_frame]
                    if frame_no in drops:
                        lost.append((first, first + len(chunk)))
                    else:
                        ack = client.samples(seq, first, chunk)
                        run.frames += 1
                        run.samples += len(chunk)
                        per_sample.append(ack.cycles / tpi / len(chunk))
                        for f0, cls, words in ack.results:
                            w = np.array(words, dtype=np.int32)
                            scores = w.view(np.float32).astype(np.float64) if ack.score_kind == ScoreKind.FLOAT32 \
                                else w.astype(np.int64)
                            got[f0] = (cls, scores)
                            lat_at[f0] = ack.last_cycles / tpi
                            latency.append(ack.last_cycles / tpi)
                    frame_no += 1
                for k, s in enumerate(starts):
                    where = f"stream {si} (cow {st.cow}, {st.bout} from sample {st.first}) window at {s}"
                    rec: dict[str, object] = {"stream": si, "animal": st.cow, "bout": st.bout, "start": st.first + s,
                                              "label": st.label, "device_class": got[s][0] if s in got else None,
                                              "last_to_result": lat_at.get(s)}
                    run.windows.append(rec)
                    if any(a < s + window and s < b for a, b in lost):
                        run.windows_lost += 1
                        rec["state"] = "lost"
                        if s in got:
                            rec["state"] = "mismatch"
                            run.mismatches.append(f"{where}: answered although a frame inside it was lost")
                        continue
                    run.windows_expected += 1
                    if s not in got:
                        rec["state"] = "missing"
                        run.missing.append(f"{where}: no result")
                        continue
                    cls, scores = got[s]
                    assert ref_all is not None
                    j = int(ref_at[si]) + k
                    want_cls, want = int(ref_all.classes[j]), ref_all.logits[j]
                    if ref_all.exact:
                        ok = cls == want_cls and np.array_equal(scores, want)
                    else:
                        ok = cls == want_cls and float(np.abs(scores - want).max()) <= float(ref_all.tolerance or 0.0)
                    rec["state"] = "verified" if ok else "mismatch"
                    if ok:
                        run.windows_verified += 1
                    else:
                        run.mismatches.append(f"{where}: class {cls} scores {scores.tolist()}, reference class "
                                              f"{want_cls} scores {want.tolist()}")
            info = client.hello()
            if run.calibration_ids and info.calibration_id != last_id:
                run.mismatches.append(f"Info reports calibration id {info.calibration_id:#x}, the last SetRotation "
                                      f"answered {last_id:#x}")
            run.resends = client.stats.retries
        finally:
            client.close()
    run.per_sample = float(np.mean(per_sample)) if per_sample else 0.0
    run.last_sample_to_result = float(np.mean(latency)) if latency else 0.0
    run.last_sample_to_result_max = float(np.max(latency)) if latency else 0.0
    e = estimate_energy(target.board, run.per_sample, "cycles" if target.kind == "board" else "instructions as cycles")
    run.energy_per_sample_uj, run.energy_basis = e.joules * 1e6, e.basis
    return run


def format_stream_table(runs: list[StreamRun]) -> str:
    lo, hi = runs[0].rates_hz() if runs else (0.0, 0.0)
    head = (f"{'board':<7}{'variant':<9}{'hop':>4}{'samples':>9}{'windows':>13}{'lost':>5}  {'check':<12}"
            f"{'instr/sample':>13}{'last->result':>14}{f'duty@{lo:g}Hz':>10}{f'duty@{hi:g}Hz':>10}"
            f"{f'J/h@{lo:g}Hz':>9}{f'J/h@{hi:g}Hz':>9}  result")
    lines = [head, "-" * len(head)]
    for r in runs:
        lat_ms = r.last_sample_to_result / r.clock_hz * 1e3 if r.clock_hz else 0.0
        lines.append(f"{r.board:<7}{r.variant:<9}{r.hop:>4}{r.samples:>9}{f'{r.windows_verified}/{r.windows_expected}':>13}"
                     f"{r.windows_lost:>5}  {r.check or '-':<12}{r.per_sample:>13,.0f}{lat_ms:>11.3f} ms"
                     f"{r.duty_cycle(lo) * 100:>9.3f}%{r.duty_cycle(hi) * 100:>9.3f}%"
                     f"{r.energy_per_hour_j(lo):>9.3f}{r.energy_per_hour_j(hi):>9.3f}  "
                     f"{'PASS' if r.passed else 'FAIL'}")
    lines += [
        "time: " + "; ".join(sorted({r.time_unit for r in runs})) + ", converted at the real board clock "
        "(1 instruction counted as 1 cycle: not a cycle estimate, real cores take more; hil bench fw gives one); "
        "last->result: the window's last sample plus the head",
        "duty cycle: active time per sample x sample rate; J/h: active energy per hour (estimate from the board "
        "table, sleep current not included)",
    ]
    for r in runs:
        lines += [f"FAIL {r.board}/{r.variant}: {m}" for m in (r.mismatches + r.missing)[:10]]
    return "\n".join(lines)
