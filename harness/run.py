"""Stream windows through a device and journal every result as it arrives.

The journal is JSONL: a header line (what was run: board, variant, target, model hash, firmware
build, fixture hash), then one line per window, flushed and fsynced before the next window is
sent. ``resume=True`` reads it back, checks the header matches, and sends only the windows that
have no complete line: an interrupted run (even ``kill -9``) loses no window and reports none twice.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness.client import DeviceClient

__all__ = ["JournalMismatch", "RunHeader", "WindowResult", "read_journal", "stream_windows"]


class JournalMismatch(RuntimeError):
    """--resume against a journal written for another device, model or fixture set."""


@dataclass(frozen=True)
class RunHeader:
    board: str
    variant: str
    target: str
    model_hash: str
    build_id: str
    fixture_sha256: str
    n_windows: int
    time_base: int
    clock_hz: int

    def identity(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("build_id")  # a rebuilt image of the same model may continue a run
        return d


@dataclass(frozen=True)
class WindowResult:
    index: int
    window_id: int
    cls: int
    scores: list[float] | list[int]
    cycles: int
    rtt_s: float


def read_journal(path: Path) -> tuple[RunHeader | None, dict[int, WindowResult], int]:
    """Header, results by window index, and the number of torn (incomplete) lines skipped."""
    if not path.exists():
        return None, {}, 0
    header: RunHeader | None = None
    results: dict[int, WindowResult] = {}
    torn = 0
    with path.open() as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.endswith("\n"):
                torn += 1  # the process died mid-write: that window is redone
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise JournalMismatch(f"{path}:{lineno}: not a JSON line") from None
            if rec.get("kind") == "header":
                header = RunHeader(**rec["header"])
            elif rec.get("kind") == "result":
                r = WindowResult(**rec["result"])
                if r.index in results:
                    raise JournalMismatch(f"{path}:{lineno}: window {r.index} journalled twice")
                results[r.index] = r
            else:
                raise JournalMismatch(f"{path}:{lineno}: unknown record kind {rec.get('kind')!r}")
    return header, results, torn


def _append(fh, rec: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def stream_windows(
    client: DeviceClient,
    x: np.ndarray,
    header: RunHeader,
    journal: Path,
    resume: bool = False,
    limit: int | None = None,
    progress: Callable[[Iterator[int], int], Iterator[int]] | None = None,
    depth: int = 1,
) -> dict[int, WindowResult]:
    """Send every window of ``x`` (int16[N, T, 3] calibrated counts) not yet journalled.

    ``depth`` > 1 keeps that many requests in flight, so the next window is already in the
    device's receive ring while it computes (the firmware buffers one encoded window). Depth 1
    keeps the device's receive interrupts out of the measured inference, which the QEMU targets
    need for exact instruction counts. Returns all results by window index, journalled ones included.
    """
    n = len(x) if limit is None else min(limit, len(x))
    journal.parent.mkdir(parents=True, exist_ok=True)
    done: dict[int, WindowResult] = {}
    if resume:
        old, done, _torn = read_journal(journal)
        if old is not None and old.identity() != header.identity():
            diff = {k: (v, header.identity()[k]) for k, v in old.identity().items() if header.identity()[k] != v}
            raise JournalMismatch(f"{journal}: cannot resume, the journal is for another run: {diff}")
        _truncate_torn(journal)
    elif journal.exists():
        journal.unlink()
    todo = [i for i in range(n) if i not in done]
    with journal.open("a") as fh:
        if not resume or (not done and journal.stat().st_size == 0):
            _append(fh, {"kind": "header", "header": asdict(header)})
        it: Iterator[int] = iter(todo)
        if progress is not None:
            it = progress(it, len(todo))
        inflight: deque[tuple[int, float]] = deque()

        def settle() -> None:
            i, t0 = inflight.popleft()
            r = client.finish_infer(i, x[i])
            wr = WindowResult(i, r.window_id, r.cls, list(r.scores), r.cycles, round(time.perf_counter() - t0, 6))
            _append(fh, {"kind": "result", "result": asdict(wr)})
            done[i] = wr

        for i in it:
            if len(inflight) >= depth:
                settle()
            inflight.append((i, time.perf_counter()))
            client.start_infer(i, x[i])
        while inflight:
            settle()
    return dict(sorted(done.items()))


def _truncate_torn(journal: Path) -> None:
    """Drop a torn last line so new records start on a fresh line."""
    if not journal.exists():
        return
    raw = journal.read_bytes()
    if raw and not raw.endswith(b"\n"):
        journal.write_bytes(raw[: raw.rfind(b"\n") + 1])
