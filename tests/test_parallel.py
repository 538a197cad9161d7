"""Parallel devices: `pytest -n 2` gives each case's device run to one worker (exactly once), the
workers' suite properties reach the one JUnit file; `hil run --jobs 2` runs the cases in two
processes, one device each, with one merged report whose verdicts are those of `--jobs 1`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from conftest import REPO, needs_qemu

from harness.cli import main
from harness.device.xdist import unit_of

needs_xdist = pytest.mark.skipif(subprocess.run([sys.executable, "-c", "import xdist"]).returncode != 0,
                                 reason="pytest-xdist not installed (the dev extra has it)")
CASES: dict[str, str | None] = {"collar-float32": None, "collar-w8a16": None, "eartag-w8a16": None}


def test_a_cases_tests_form_one_unit_per_module_and_a_boards_cases_one_unit_per_board() -> None:
    a = "tests/acceptance/test_acceptance.py"
    assert unit_of(f"{a}::test_mcc[collar-float32]", CASES) == f"{a}::collar-float32"
    assert unit_of(f"{a}::test_mcc[collar-w8a16]", CASES) == f"{a}::collar-w8a16"
    assert unit_of("tests/acceptance/test_stream_mode.py::t[collar-w8a16]", CASES) == \
        "tests/acceptance/test_stream_mode.py::collar-w8a16"
    assert unit_of("tests/test_x.py::test_y[3-collar-w8a16-b]", CASES) == "tests/test_x.py::collar-w8a16"
    assert unit_of("tests/test_x.py::test_y[collar]", CASES) == "tests/test_x.py::test_y[collar]"  # no case
    on_boards = {"collar-float32": "board collar", "collar-w8a16": "board collar", "eartag-w8a16": "board eartag"}
    assert unit_of(f"{a}::test_mcc[collar-float32]", on_boards) == unit_of(
        "tests/acceptance/test_stream_mode.py::t[collar-w8a16]", on_boards) == "hil-device:board collar"


@needs_qemu
@needs_xdist
def test_two_workers_run_each_cases_device_run_once_and_report_both_workers_suite_properties(
        tmp_path: Path, budgets_only: Path) -> None:
    xml = tmp_path / "junit.xml"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", "tests/acceptance",
                        "--hil-limit", "60", f"--hil-thresholds={budgets_only}", "--hil-stream-limit", "1",
                        f"--junitxml={xml}"], capture_output=True, text=True, cwd=REPO, timeout=600,
                       env=dict(os.environ))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    root = ElementTree.parse(xml).getroot()
    ran = [p.get("value", "") for p in root.iter("property") if p.get("name") == "hil.device_run"
           and p.get("value", "").startswith("ran here")]
    assert len(ran) == 4, ran  # collar and eartag x float32 and w8a16, once each
    streams = [p for p in root.iter("property") if p.get("name") == "hil.stream_run"
               and p.get("value", "").startswith("ran here")]
    assert len(streams) == 4
    suite = {p.get("name"): p.get("value") for s in root.iter("testsuite") for ps in s.findall("properties")
             for p in ps}
    for case in ("collar-float32", "collar-w8a16", "eartag-float32", "eartag-w8a16"):
        assert suite[f"hil.{case}.target"] == "qemu" and len(suite[f"hil.{case}.model_hash"]) == 16
    assert len(suite) == 4 * 7
    assert len(list(root.iter("testcase"))) == 80  # every test of both workers in the one file


@needs_qemu
def test_two_jobs_give_the_verdicts_and_figures_of_one_job_in_one_report(tmp_path: Path, budgets_only: Path) -> None:
    out = {}
    for jobs in (1, 2):
        rep = tmp_path / f"jobs{jobs}"
        rc = main(["run", "--jobs", str(jobs), "--limit", "60", "--thresholds", str(budgets_only), "--quiet",
                   "--report", str(rep)])
        assert rc == 0
        out[jobs] = json.loads((rep / "summary.json").read_text())
        journals = sorted(p.name for p in (rep / "journals").iterdir())
        assert journals == [f"qemu_{b}_{v}.jsonl" for b in ("collar", "eartag") for v in ("float32", "w8a16")]

    def verdicts(s: dict) -> list[tuple]:
        host = ("wall", "rtt", "host")
        return [(c["board"], c["variant"], c["passed"], c["failed_checks"],
                 {k: v for k, v in c["measured"].items() if not any(h in k for h in host)}) for c in s["cases"]]

    assert verdicts(out[1]) == verdicts(out[2])
    assert [c["measured"]["windows_verified"] for c in out[2]["cases"]] == [60] * 4


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (from /proc)."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.add(k)
            todo.append(k)
    return out


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return "?"


@needs_qemu
def test_sigterm_stops_every_job_and_its_emulator_and_the_report_says_what_was_not_run(tmp_path: Path) -> None:
    import signal
    import time

    rep = tmp_path / "report"
    p = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "--jobs", "2", "--quiet", "--report", str(rep)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not (rep / "journals" / "qemu_collar_float32.jsonl").is_file():  # the longest case runs
            assert time.monotonic() < deadline and p.poll() is None, "the collar float32 case never started"
            time.sleep(0.1)
        time.sleep(1.0)
        below = _descendants(p.pid)
        assert len(below) >= 3  # two jobs and at least one QEMU
        p.send_signal(signal.SIGTERM)
        _out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143, err
    deadline = time.monotonic() + 10  # multiprocessing's resource tracker exits when its pipe closes
    while (alive := {q: _cmdline(q) for q in below if _running(q)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"still running after the run ended: {alive}"
    cases = json.loads((rep / "summary.json").read_text())["cases"]
    assert [(c["board"], c["variant"]) for c in cases] == [(b, v) for b in ("collar", "eartag")
                                                            for v in ("float32", "w8a16")]
    collar_f32 = cases[0]
    assert not collar_f32["passed"]
    assert any("interrupted by SIGTERM" in f["detail"] for f in collar_f32["failed_checks"]), collar_f32
