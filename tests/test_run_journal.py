"""The journal: torn lines after a crash, resume refusing another run's journal."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from harness.run import JournalMismatch, RunHeader, WindowResult, _truncate_torn, read_journal

HEADER = RunHeader("collar", "w8a16", "qemu", "aa" * 8, "b1", "ff" * 32, "ee" * 32, 10, 1, 12_500_000)


def _write(path: Path, n: int, torn: bool) -> None:
    lines = [json.dumps({"kind": "header", "header": asdict(HEADER)})]
    lines += [json.dumps({"kind": "result", "result": asdict(WindowResult(i, i, 1, [1, 2, 3, 4], 100, 0.01))})
              for i in range(n)]
    text = "\n".join(lines) + "\n"
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
    from harness.run import stream_windows

    j = tmp_path / "j.jsonl"
    _write(j, 2, torn=False)
    other = RunHeader(**{**asdict(HEADER), "model_hash": "bb" * 8})
    with pytest.raises(JournalMismatch, match="model_hash"):
        stream_windows(None, [], other, j, resume=True)  # type: ignore[arg-type]


def test_resume_refuses_a_journal_whose_inputs_differ(tmp_path: Path) -> None:
    """Same fixture file, other calibrated inputs (e.g. a changed per-cow rotation in meta.json)."""
    from harness.run import stream_windows

    j = tmp_path / "j.jsonl"
    _write(j, 2, torn=False)
    other = RunHeader(**{**asdict(HEADER), "inputs_sha256": "dd" * 32})
    with pytest.raises(JournalMismatch, match="inputs_sha256"):
        stream_windows(None, [], other, j, resume=True)  # type: ignore[arg-type]


def test_a_failure_is_superseded_by_a_later_result(tmp_path: Path) -> None:
    from harness.run import WindowFailure

    j = tmp_path / "j.jsonl"
    _write(j, 2, torn=False)
    with j.open("a") as fh:
        fh.write(json.dumps({"kind": "failure", "failure": asdict(WindowFailure(2, 2, "timeout", ["timeout"]))}) + "\n")
        fh.write(json.dumps({"kind": "failure", "failure": asdict(WindowFailure(3, 3, "CRC", []))}) + "\n")
        fh.write(json.dumps({"kind": "result", "result": asdict(WindowResult(2, 2, 0, [0, 0, 0, 0], 5, 0.1))}) + "\n")
    _, done, failed, _ = read_journal(j)
    assert sorted(done) == [0, 1, 2] and sorted(failed) == [3] and failed[3].reason == "CRC"


@pytest.mark.parametrize(("line", "message"), [
    ('{"kind": "result", "result": {"index": 1}}', "missing fields"),
    ('{"kind": "result", "result": [1, 2]}', "result: missing or not an object"),
    ('{"kind": "header", "header": {"board": "collar", "bogus": 1}}', "unknown fields bogus"),
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
        from harness.client import LinkStats

        self.stats = LinkStats()
        self.boot = 1
        self.hellos: list[int | None] = []

    def start_infer(self, i: int, x: object) -> None:
        pass

    def finish_infer(self, i: int, x: object) -> tuple[object, list[str]]:
        from harness.client import DeviceTimeout
        from protocol import Result

        if i == 7 and self.boot == 1:
            self.boot = 2
            raise DeviceTimeout("no reply to Infer seq 8 after 9 attempts", ["timeout"] * 8)
        return Result(i, 1, 0, 4, (1, 2, 3, 4), 100, 0), []

    def abandon(self, i: int) -> None:
        pass

    def hello(self, at_window: int | None = None) -> None:
        from harness.client import DeviceReset

        self.hellos.append(at_window)
        if self.boot == 2 and not self.stats.resets:
            self.stats.resets.append(DeviceReset(1, 2, 0, 0, 0, 0, 0, at_window))


def test_a_failed_window_is_journalled_the_run_goes_on_and_a_reset_is_named_by_window(tmp_path: Path) -> None:
    import numpy as np

    from harness.run import read_journal, stream_windows

    dev = _ResettingDevice()
    out = stream_windows(dev, np.zeros((20, 4, 3), np.int16), HEADER, tmp_path / "j.jsonl", check_every=5)  # type: ignore[arg-type]
    assert sorted(out.results) == [i for i in range(20) if i != 7] and list(out.failures) == [7]
    assert "after 9 attempts" in out.failures[7].reason and out.failures[7].retries == ["timeout"] * 8
    assert [str(r) for r in dev.stats.resets] == ["device reset (boot 1 -> 2) detected at window 7; no fault recorded"]
    _, done, failed, _ = read_journal(tmp_path / "j.jsonl")
    assert len(done) == 19 and list(failed) == [7]
