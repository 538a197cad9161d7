"""Stream windows through a device and journal every result as it arrives.

The journal is JSONL: a header line (what was run: board, variant, target, model hash, firmware
build, image hash, harness version, fixture hash and the hash of exactly the inputs sent), then one
line per window (a result, or a failure with its reason), written through to the operating system
(flushed) before the next window is sent, so a killed harness (even ``kill -9``) loses no window.
It is fsynced in batches (at most FSYNC_INTERVAL_S apart, and when the journal closes), so an
operating-system crash or power loss can cost at most the last interval's lines, which a resumed run
sends again: a torn tail is discarded. ``resume=True`` reads it back, checks the header matches, and
sends only the windows that have no result: an interrupted run reports no window twice.

Every line carries ``chain``, a running SHA-256: line k's chain is sha256(chain of line k-1 +
the line's record as canonical JSON), starting from the header. A result line is therefore bound to
its header and to every line before it: a journal without its header, with lines of another case
spliced in, reordered or edited, fails the chain at the first such line and is refused, naming it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from harness.device.client import DeviceClient, DeviceError, DeviceTimeout

__all__ = [
    "JOURNAL_FORMAT",
    "JournalMismatch",
    "RunHeader",
    "StreamOutcome",
    "WindowFailure",
    "WindowResult",
    "harness_version",
    "inputs_sha256",
    "read_journal",
    "stream_windows",
]


class JournalMismatch(RuntimeError):
    """--resume against a journal written for another device, model or fixture set, or one that is
    not an intact journal of one case (no header first, a broken chain)."""


JOURNAL_FORMAT = 2
"""Version of the journal's line format; 2 added the running hash (``chain``)."""
_CHAIN_SEED = b"cattle-hil journal v2"


@dataclass(frozen=True)
class RunHeader:
    board: str
    variant: str
    target: str
    model_hash: str
    build_id: str
    fixture_sha256: str
    inputs_sha256: str
    """sha256 of exactly what is sent: the calibrated int16 windows, little-endian, in order"""
    n_windows: int
    time_base: int
    clock_hz: int
    image_sha256: str | None = None
    """sha256 of the ELF the target flashed or emulated (None: the firmware already on a board)"""
    harness_version: str = ""
    journal_format: int = JOURNAL_FORMAT

    def identity(self) -> dict[str, object]:
        """Everything that must be equal for a run to continue this journal: the build id is the
        device's own name for the image, whose hash is already here."""
        d = asdict(self)
        d.pop("build_id")
        return d


def _chain(prev: str, rec: dict[str, object]) -> str:
    body = json.dumps({k: v for k, v in rec.items() if k != "chain"}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(bytes.fromhex(prev) + body.encode()).hexdigest()


_CHAIN_START = hashlib.sha256(_CHAIN_SEED).hexdigest()


def harness_version() -> str:
    """The installed harness's version (a journal written by another version is not resumed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cattle-hil")
    except PackageNotFoundError:
        return "unknown (not installed)"


def inputs_sha256(x: np.ndarray) -> str:
    """The identity of a run's inputs: sha256 of the windows exactly as they are sent."""
    return hashlib.sha256(np.ascontiguousarray(x, dtype="<i2").tobytes()).hexdigest()


@dataclass(frozen=True)
class WindowResult:
    index: int
    window_id: int
    cls: int
    scores: list[float] | list[int]
    cycles: int
    rtt_s: float
    retries: list[str] = field(default_factory=list)
    """the reason of every resend this window needed"""


@dataclass(frozen=True)
class WindowFailure:
    """A window that could not be verified: it has no result, and this is why."""

    index: int
    window_id: int
    reason: str
    retries: list[str] = field(default_factory=list)


@dataclass
class StreamOutcome:
    """Everything a stream produced: results and failures by window index (journalled ones
    included), resets seen, and why the stream stopped early (None: every window was tried)."""

    results: dict[int, WindowResult]
    failures: dict[int, WindowFailure]
    aborted: str | None = None
    sent: int = 0
    """windows sent to the device in this stream (resumed windows from the journal not included)"""


_HEADER_FIELDS = {f.name for f in fields(RunHeader)}
_RESULT_FIELDS = {f.name for f in fields(WindowResult)}
_FAILURE_FIELDS = {f.name for f in fields(WindowFailure)}


def _record(path: Path, lineno: int, rec: object, key: str, names: set[str], required: set[str]) -> dict[str, object]:
    if not isinstance(rec, dict) or not isinstance(rec.get(key), dict):
        raise JournalMismatch(f"{path}:{lineno}: {key}: missing or not an object")
    body = rec[key]
    missing = sorted(required - set(body))
    unknown = sorted(set(body) - names)
    if missing or unknown:
        raise JournalMismatch(f"{path}:{lineno}: {key}: " + "; ".join(
            ([f"missing fields {', '.join(missing)}"] if missing else []) +
            ([f"unknown fields {', '.join(unknown)}"] if unknown else [])))
    return body  # type: ignore[no-any-return]


def read_journal(path: Path) -> tuple[RunHeader | None, dict[int, WindowResult], dict[int, WindowFailure], int]:
    """Header, results and failures by window index, and the number of torn lines skipped (see
    _scan_journal, which also gives the running hash after the last complete line)."""
    header, results, failures, torn, _chain_tail = _scan_journal(path)
    return header, results, failures, torn


def _scan_journal(path: Path) -> tuple[RunHeader | None, dict[int, WindowResult], dict[int, WindowFailure], int,
                                       str]:
    """Header, results and failures by window index, and the number of torn lines skipped.

    A window may be journalled as failed and later (after ``--resume``) as a result: the result
    wins. Raises JournalMismatch, naming file and line, for anything that is not a journal line."""
    if not path.exists():
        return None, {}, {}, 0, _CHAIN_START
    header: RunHeader | None = None
    results: dict[int, WindowResult] = {}
    failures: dict[int, WindowFailure] = {}
    torn = 0
    chain = _CHAIN_START
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JournalMismatch(f"{path}: not a journal (not UTF-8 text at byte {exc.start})") from None
    lines = text.splitlines(keepends=True)
    for lineno, line in enumerate(lines, start=1):
        if not line.endswith("\n"):
            torn += 1  # the process died mid-write: that window is redone
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise JournalMismatch(f"{path}:{lineno}: not a JSON line") from None
        kind = rec.get("kind") if isinstance(rec, dict) else None
        if lineno == 1 and kind != "header":
            raise JournalMismatch(f"{path}:1: the first line is not the journal's header (kind {kind!r}): "
                                  "without it no result line can be trusted")
        if lineno > 1 and kind == "header":
            raise JournalMismatch(f"{path}:{lineno}: a second header: lines of two runs in one journal")
        try:
            if kind == "header":
                header = RunHeader(**_record(path, lineno, rec, "header", _HEADER_FIELDS,
                                             _HEADER_FIELDS))  # type: ignore[arg-type]
            elif kind == "result":
                r = WindowResult(**_record(path, lineno, rec, "result", _RESULT_FIELDS,
                                           _RESULT_FIELDS - {"retries"}))  # type: ignore[arg-type]
                if r.index in results:
                    raise JournalMismatch(f"{path}:{lineno}: window {r.index} journalled twice")
                _in_range(path, lineno, header, r.index)
                results[r.index] = r
                failures.pop(r.index, None)
            elif kind == "failure":
                f = WindowFailure(**_record(path, lineno, rec, "failure", _FAILURE_FIELDS,
                                            _FAILURE_FIELDS - {"retries"}))  # type: ignore[arg-type]
                _in_range(path, lineno, header, f.index)
                if f.index not in results:
                    failures[f.index] = f
            else:
                raise JournalMismatch(f"{path}:{lineno}: unknown record kind {kind!r}")
        except TypeError as exc:
            raise JournalMismatch(f"{path}:{lineno}: malformed {kind} record: {exc}") from None
        want = _chain(chain, rec)  # rec is a header, result or failure record here
        if rec.get("chain") != want:
            got = "no chain field" if "chain" not in rec else f"chain {str(rec['chain'])[:16]}..."
            raise JournalMismatch(f"{path}:{lineno}: the running hash does not match (the line was edited, "
                                  f"moved, or comes from another journal): {got}, want {want[:16]}...")
        chain = want
    return header, results, failures, torn, chain


def _in_range(path: Path, lineno: int, header: RunHeader | None, index: object) -> None:
    n = header.n_windows if header is not None else 0
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < n:
        raise JournalMismatch(f"{path}:{lineno}: window index {index!r} is not one of the header's {n} windows")


FSYNC_INTERVAL_S = 1.0
"""Longest time between two fsyncs of the journal (every line is flushed to the OS at once)."""


class _Journal:
    """Appends chained records, each flushed before the next window is sent and fsynced in batches
    (the first line at once, then at most FSYNC_INTERVAL_S apart, and on close)."""

    def __init__(self, fh, chain: str, fsync_interval_s: float = FSYNC_INTERVAL_S) -> None:  # type: ignore[no-untyped-def]
        self.fh = fh
        self.chain = chain
        self.fsync_interval_s = fsync_interval_s
        self.synced_at: float | None = None
        self.unsynced = 0

    def append(self, rec: dict[str, object]) -> None:
        self.chain = _chain(self.chain, rec)
        self.fh.write(json.dumps({**rec, "chain": self.chain}, separators=(",", ":")) + "\n")
        self.fh.flush()
        self.unsynced += 1
        now = time.monotonic()
        if self.synced_at is None or now - self.synced_at >= self.fsync_interval_s:
            self.sync(now)

    def sync(self, now: float | None = None) -> None:
        if self.unsynced:
            os.fsync(self.fh.fileno())
            self.unsynced = 0
        self.synced_at = time.monotonic() if now is None else now


WINDOW_ERRORS = (DeviceError, DeviceTimeout)
"""Failures that end one window, not the run."""
MAX_CONSECUTIVE_FAILURES = 5
"""The default abort policy (``abort_after``): after this many windows failed in a row, the device
counts as gone: the stream stops and the
remaining windows are journalled as failed with that reason."""


def stream_windows(
    client: DeviceClient,
    x: np.ndarray,
    header: RunHeader,
    journal: Path,
    resume: bool = False,
    limit: int | None = None,
    progress: Callable[[Iterator[int], int], Iterator[int]] | None = None,
    depth: int = 1,
    check_every: int = 50,
    abort_after: int = MAX_CONSECUTIVE_FAILURES,
) -> StreamOutcome:
    """Send every window of ``x`` (int16[N, T, 3] calibrated counts) not yet journalled.

    Every window ends journalled either as a result or as a failure with its reason; a failed
    window does not stop the stream. ``depth`` > 1 keeps that many requests in flight, so the next
    window is already in the device's receive ring while it computes (the firmware buffers one
    encoded window). Depth 1 keeps the device's receive interrupts out of the measured inference,
    which the QEMU targets need for exact instruction counts. The boot counter is checked (a
    hello) after every failed window and every ``check_every`` windows, so a reset is named with
    the window after which it was seen. After ``abort_after`` windows failed in a row (0: never)
    the stream stops, and every window not tried is journalled as failed with that reason.
    """
    n = len(x) if limit is None else min(limit, len(x))
    journal.parent.mkdir(parents=True, exist_ok=True)
    done: dict[int, WindowResult] = {}
    failed: dict[int, WindowFailure] = {}
    tail = _CHAIN_START
    if resume:
        old, done, failed, _torn, tail = _scan_journal(journal)
        if old is not None and old.identity() != header.identity():
            diff = "; ".join(f"{k}: journal {v!r}, this run {header.identity()[k]!r}"
                             for k, v in old.identity().items() if header.identity()[k] != v)
            raise JournalMismatch(f"{journal}: cannot resume, the journal is for another run: {diff}")
        _truncate_torn(journal)
    elif journal.exists():
        journal.unlink()
    todo = [i for i in range(n) if i not in done]
    failed = {i: f for i, f in failed.items() if i >= n}  # failed windows in range are tried again
    outcome = StreamOutcome(done, failed)
    fresh = not journal.exists() or journal.stat().st_size == 0
    with journal.open("a") as fh:
        jr = _Journal(fh, _CHAIN_START if fresh else tail)
        if fresh:
            jr.append({"kind": "header", "header": asdict(header)})
        it: Iterator[int] = iter(todo)
        if progress is not None:
            it = progress(it, len(todo))
        inflight: deque[tuple[int, float]] = deque()
        streak = 0
        since_check = 0

        def fail(i: int, reason: str, retries: list[str]) -> None:
            wf = WindowFailure(i, i, reason, retries)
            jr.append({"kind": "failure", "failure": asdict(wf)})
            failed[i] = wf

        def check_boot(i: int) -> None:
            with contextlib.suppress(*WINDOW_ERRORS):  # a silent device shows up as failing windows
                client.hello(at_window=i)

        def settle() -> None:
            nonlocal streak, since_check
            i, t0 = inflight.popleft()
            try:
                r, reasons = client.finish_infer(i, x[i])
            except WINDOW_ERRORS as exc:
                client.abandon(i)
                fail(i, str(exc), getattr(exc, "reasons", []))
                streak += 1
                check_boot(i)
                return
            wr = WindowResult(i, r.window_id, r.cls, list(r.scores), r.cycles, round(time.perf_counter() - t0, 6),
                              reasons)
            jr.append({"kind": "result", "result": asdict(wr)})
            done[i] = wr
            streak = 0
            since_check += 1
            if since_check >= check_every:
                since_check = 0
                check_boot(i)

        try:
            for i in it:
                while len(inflight) >= depth:
                    settle()
                if abort_after and streak >= abort_after:
                    outcome.aborted = (f"{abort_after} windows in a row failed (abort policy --abort-after "
                                       f"{abort_after}); the last: "
                                       f"{failed[max(failed)].reason}")
                    break
                inflight.append((i, time.perf_counter()))
                client.start_infer(i, x[i], whole=depth > 1)
                outcome.sent += 1
            while inflight:
                settle()
        except ConnectionError as exc:
            outcome.aborted = f"link lost: {exc}"
            for i, _t0 in inflight:
                client.abandon(i)
            inflight.clear()
        finally:
            if outcome.aborted is not None:
                for i in todo:
                    if i not in done and i not in failed:
                        fail(i, f"not verified: stream stopped ({outcome.aborted})", [])
            jr.sync()
    outcome.results = dict(sorted(done.items()))
    outcome.failures = dict(sorted(failed.items()))
    return outcome


def _truncate_torn(journal: Path) -> None:
    """Drop a torn last line so new records start on a fresh line."""
    if not journal.exists():
        return
    raw = journal.read_bytes()
    if raw and not raw.endswith(b"\n"):
        journal.write_bytes(raw[: raw.rfind(b"\n") + 1])
