"""The journal: torn lines after a crash, resume refusing another run's journal."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from harness.run import JournalMismatch, RunHeader, WindowResult, _truncate_torn, read_journal

HEADER = RunHeader("collar", "w8a16", "qemu", "aa" * 8, "b1", "ff" * 32, 10, 1, 12_500_000)


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
    header, done, torn = read_journal(j)
    assert header == HEADER and sorted(done) == [0, 1, 2, 3] and torn == 1
    _truncate_torn(j)
    assert read_journal(j)[2] == 0 and j.read_text().endswith("\n")


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
