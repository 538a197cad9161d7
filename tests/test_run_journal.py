"""The journal: torn lines after a crash, resume refusing another run's journal."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from unittest.mock import patch

import pytest

from harness.device.run import (
    _CHAIN_START,
    JournalMismatch,
    RunHeader,
    WindowResult,
    _Journal,
    _scan_journal,
    _truncate_torn,
    read_journal,
)

HEADER = RunHeader("collar", "w8a16", "qemu", "aa" * 8, "b1", "ff" * 32, "ee" * 32, 10, 1, 12_500_000)


def _lines(header: RunHeader, n: int) -> list[str]:
    """A journal as stream_windows writes it: the header, then n results, chained."""
    import io

    buf = io.StringIO()
    buf.fileno = lambda: -1  # type: ignore[method-assign]
    jr = _Journal(buf, _CHAIN_START)
    with patch("os.fsync"):
        jr.append({"kind": "header", "header": asdict(header)})
        for i in range(n):
            jr.append({"kind": "result", "result": asdict(WindowResult(i, i, 1, [1, 2, 3, 4], 100, 0.01))})
    return buf.getvalue().splitlines(keepends=True)


def _write(path: Path, n: int, torn: bool, header: RunHeader = HEADER) -> None:
    text = "".join(_lines(header, n))
    if torn:
        text += '{"kind": "result", "result": {"index": 99'
    path.write_text(text)


def test_a_torn_last_line_is_dropped_and_counted(tmp_path: Path) -> None:
    j = tmp_path / "j.jsonl"
    _write(j, 4, torn=True)
    header, done, failed, torn = read_journal(j)
    assert header == HEADER and sorted(done) == [0, 1, 2, 3] and not failed and torn == 1
    _truncate_torn(j)
    assert read_journal(j)[3] == 0 and j.read_text().endswith("\n")


def test_a_window_journalled_twice_is_an_error(tmp_path: Path) -> None:
    j = tmp_path / "j.jsonl"
    _write(j, 2, torn=False)
    j.write_text(j.read_text() + j.read_text().splitlines()[-1] + "\n")
    with pytest.raises(JournalMismatch, match="journalled twice"):
        read_journal(j)


def test_resume_refuses_a_journal_of_another_model(tmp_path: Path) -> None:
    from harness.device.run import stream_windows

    j = tmp_path / "j.jsonl"
    _write(j, 2, torn=False)
    other = RunHeader(**{**asdict(HEADER), "model_hash": "bb" * 8})
    with pytest.raises(JournalMismatch, match="model_hash"):
        stream_windows(None, [], other, j, resume=True)  # type: ignore[arg-type]


def test_resume_refuses_a_journal_whose_inputs_differ(tmp_path: Path) -> None:
    """Same fixture file, other calibrated inputs (e.g. a changed per-cow rotation in meta.json)."""
    from harness.device.run import stream_windows

    j = tmp_path / "j.jsonl"
    _write(j, 2, torn=False)
    other = RunHeader(**{**asdict(HEADER), "inputs_sha256": "dd" * 32})
    with pytest.raises(JournalMismatch, match="inputs_sha256"):
        stream_windows(None, [], other, j, resume=True)  # type: ignore[arg-type]


def test_a_failure_is_superseded_by_a_later_result(tmp_path: Path) -> None:
    from harness.device.run import WindowFailure

    j = tmp_path / "j.jsonl"
    _write(j, 2, torn=False)
    with j.open("a") as fh:
        jr = _Journal(fh, _scan_journal(j)[4])
        jr.append({"kind": "failure", "failure": asdict(WindowFailure(2, 2, "timeout", ["timeout"]))})
        jr.append({"kind": "failure", "failure": asdict(WindowFailure(3, 3, "CRC", []))})
        jr.append({"kind": "result", "result": asdict(WindowResult(2, 2, 0, [0, 0, 0, 0], 5, 0.1))})
    _, done, failed, _ = read_journal(j)
    assert sorted(done) == [0, 1, 2] and sorted(failed) == [3] and failed[3].reason == "CRC"


@pytest.mark.parametrize(("line", "message"), [
    ('{"kind": "result", "result": {"index": 1}}', "missing fields"),
    ('{"kind": "result", "result": [1, 2]}', "result: missing or not an object"),
    ('{"kind": "header", "header": {"board": "collar", "bogus": 1}}', "a second header"),
    ('[1, 2, 3]', "unknown record kind None"),
    ('{"kind": "weird"}', "unknown record kind 'weird'"),
    ('not json', "not a JSON line"),
])
def test_a_malformed_journal_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    j = tmp_path / "j.jsonl"
    _write(j, 1, torn=False)
    j.write_text(j.read_text() + line + "\n")
    with pytest.raises(JournalMismatch, match=message) as err:
        read_journal(j)
    assert f"{j}:3:" in str(err.value)


class _ResettingDevice:
    """A client at stream_windows' API boundary: answers every window, fails window 7 once, and
    reboots (boot counter 1 -> 2) while handling it."""

    def __init__(self) -> None:
        from harness.device.client import LinkStats

        self.stats = LinkStats()
        self.boot = 1
        self.hellos: list[int | None] = []

    def start_infer(self, i: int, x: object, whole: bool = False) -> None:
        pass

    def finish_infer(self, i: int, x: object) -> tuple[object, list[str]]:
        from harness.device.client import DeviceTimeout
        from protocol import Result

        if i == 7 and self.boot == 1:
            self.boot = 2
            raise DeviceTimeout("no reply to Infer seq 8 after 9 attempts", ["timeout"] * 8)
        return Result(i, 1, 0, 4, (1, 2, 3, 4), 100, 0), []

    def abandon(self, i: int) -> None:
        pass

    def hello(self, at_window: int | None = None) -> None:
        from harness.device.client import DeviceReset

        self.hellos.append(at_window)
        if self.boot == 2 and not self.stats.resets:
            self.stats.resets.append(DeviceReset(1, 2, 0, 0, 0, 0, 0, at_window))


def test_a_failed_window_is_journalled_the_run_goes_on_and_a_reset_is_named_by_window(tmp_path: Path) -> None:
    import numpy as np

    from harness.device.run import read_journal, stream_windows

    dev = _ResettingDevice()
    header = RunHeader(**{**asdict(HEADER), "n_windows": 20})
    out = stream_windows(dev, np.zeros((20, 4, 3), np.int16), header, tmp_path / "j.jsonl", check_every=5)  # type: ignore[arg-type]
    assert sorted(out.results) == [i for i in range(20) if i != 7] and list(out.failures) == [7]
    assert "after 9 attempts" in out.failures[7].reason and out.failures[7].retries == ["timeout"] * 8
    assert [str(r) for r in dev.stats.resets] == ["device reset (boot 1 -> 2) detected at window 7; no fault recorded"]
    _, done, failed, _ = read_journal(tmp_path / "j.jsonl")
    assert len(done) == 19 and list(failed) == [7]


OTHER = RunHeader(**{**asdict(HEADER), "board": "eartag", "clock_hz": 16_000_000})


def test_a_journal_without_its_header_is_refused(tmp_path: Path) -> None:
    j = tmp_path / "j.jsonl"
    j.write_text("".join(_lines(HEADER, 5)[1:]))
    with pytest.raises(JournalMismatch, match=r"j.jsonl:1: the first line is not the journal's header"):
        read_journal(j)


def test_result_lines_of_another_case_under_this_header_are_refused(tmp_path: Path) -> None:
    """The splice of issue 21: the collar's results under an ear tag's header."""
    j = tmp_path / "j.jsonl"
    j.write_text(_lines(OTHER, 0)[0] + "".join(_lines(HEADER, 5)[1:]))
    with pytest.raises(JournalMismatch, match=r"j.jsonl:2: the running hash does not match"):
        read_journal(j)


@pytest.mark.parametrize("edit", ["reorder", "edit", "drop", "unchained"])
def test_a_reordered_edited_dropped_or_unchained_line_is_refused(tmp_path: Path, edit: str) -> None:
    lines = _lines(HEADER, 5)
    if edit == "reorder":
        lines[2], lines[3] = lines[3], lines[2]
    elif edit == "edit":
        lines[3] = lines[3].replace('"cls":1', '"cls":2')
    elif edit == "drop":
        del lines[2]
    else:
        rec = json.loads(lines[4])
        del rec["chain"]
        lines[4] = json.dumps(rec) + "\n"
    j = tmp_path / "j.jsonl"
    j.write_text("".join(lines))
    with pytest.raises(JournalMismatch, match="running hash does not match"):
        read_journal(j)


def test_an_intact_chained_journal_is_read_whole(tmp_path: Path) -> None:
    j = tmp_path / "j.jsonl"
    _write(j, 5, torn=False)
    header, done, failed, torn = read_journal(j)
    assert header == HEADER and sorted(done) == list(range(5)) and not failed and torn == 0


def test_a_window_index_outside_the_header_is_refused(tmp_path: Path) -> None:
    j = tmp_path / "j.jsonl"
    _write(j, 11, torn=False)  # the header says 10 windows
    with pytest.raises(JournalMismatch, match="window index 10 is not one of the header's 10 windows"):
        read_journal(j)


@pytest.mark.parametrize("key", ["target", "board", "variant", "image_sha256", "harness_version", "clock_hz"])
def test_resume_refuses_a_journal_whose_header_differs_in(tmp_path: Path, key: str) -> None:
    from harness.device.run import stream_windows

    j = tmp_path / "j.jsonl"
    _write(j, 2, torn=False)
    value = {"target": "renode", "board": "eartag", "variant": "w8a8", "image_sha256": "cc" * 32,
             "harness_version": "9.9.9", "clock_hz": 1}[key]
    other = RunHeader(**{**asdict(HEADER), key: value})
    with pytest.raises(JournalMismatch, match=f"{key}: journal"):
        stream_windows(None, [], other, j, resume=True)  # type: ignore[arg-type]


class _CountingDevice:
    """Answers every window and records which were sent."""

    def __init__(self) -> None:
        from harness.device.client import LinkStats

        self.stats = LinkStats()
        self.sent: list[int] = []

    def start_infer(self, i: int, x: object, whole: bool = False) -> None:
        self.sent.append(i)

    def finish_infer(self, i: int, x: object) -> tuple[object, list[str]]:
        from protocol import Result

        return Result(i, 1, 0, 4, (1, 2, 3, 4), 100, 0), []

    def abandon(self, i: int) -> None:
        pass

    def hello(self, at_window: int | None = None) -> None:
        pass


def test_resume_sends_again_the_windows_journalled_as_failed_and_only_those_without_a_result(tmp_path: Path) -> None:
    import numpy as np

    from harness.device.run import WindowFailure, stream_windows

    j = tmp_path / "j.jsonl"
    _write(j, 4, torn=False)
    with j.open("a") as fh:
        jr = _Journal(fh, _scan_journal(j)[4])
        jr.append({"kind": "failure", "failure": asdict(WindowFailure(4, 4, "timeout", []))})
    dev = _CountingDevice()
    out = stream_windows(dev, np.zeros((10, 4, 3), np.int16), HEADER, j, resume=True)  # type: ignore[arg-type]
    assert dev.sent == [4, 5, 6, 7, 8, 9] and sorted(out.results) == list(range(10)) and not out.failures
    _, done, failed, _ = read_journal(j)  # the resumed journal is still one intact chain
    assert sorted(done) == list(range(10)) and not failed


def test_every_line_reaches_the_os_at_once_and_fsync_comes_in_batches(tmp_path: Path) -> None:
    """A killed harness loses nothing (each line is written through before the next window); fsync,
    which only an OS crash needs, runs for the first line, then at most once per interval and on close."""
    j = tmp_path / "j.jsonl"
    calls: list[int] = []
    with patch("os.fsync", side_effect=calls.append), j.open("a") as fh:
        jr = _Journal(fh, _CHAIN_START, fsync_interval_s=3600.0)
        jr.append({"kind": "header", "header": asdict(HEADER)})
        for i in range(10):
            jr.append({"kind": "result", "result": asdict(WindowResult(i, i, 1, [1, 2, 3, 4], 100, 0.01))})
        assert len(calls) == 1  # the header only
        header, done, _failed, torn = read_journal(j)  # read by another handle: all 11 lines are there
        assert header == HEADER and sorted(done) == list(range(10)) and torn == 0
        jr.sync()
        assert len(calls) == 2
        jr.sync()  # nothing new: no second fsync
        assert len(calls) == 2
    calls.clear()
    with patch("os.fsync", side_effect=calls.append), j.open("a") as fh:
        jr = _Journal(fh, _CHAIN_START, fsync_interval_s=0.0)
        for i in range(3):
            jr.append({"kind": "result", "result": asdict(WindowResult(i, i, 1, [1, 2, 3, 4], 100, 0.01))})
    assert len(calls) == 3
