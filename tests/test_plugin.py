"""The pytest plugin as a user meets it: a configured but absent board is red, an unconfigured
target skips with the reason, options also come from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from conftest import REPO, needs_qemu


def _pytest(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    where = [] if args and args[0].startswith("tests/") else ["tests/acceptance"]
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           *where, *args], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, **(env or {})})


def test_a_configured_board_that_is_absent_fails_once_per_case_with_the_reason() -> None:
    r = _pytest("--hil-target", "board", "--hil-port", "/dev/ttyNOPE", "--hil-probe", "000683DEADBEEF")
    assert r.returncode == 1, r.stdout
    # one error per case in each of the three modules (acceptance, device-level example, stream
    # mode), the rest skip
    assert "12 errors" in r.stdout and "/dev/ttyNOPE does not exist" in r.stdout
    assert "passed" not in r.stdout.splitlines()[-1]


def test_nothing_configured_skips_with_the_reason() -> None:
    r = _pytest("--hil-target", "board")
    assert r.returncode == 0, r.stdout
    assert "no board configured" in r.stdout and r.stdout.splitlines()[-1].startswith("80 skipped")


def test_options_come_from_the_environment_too() -> None:
    r = _pytest(env={"HIL_TARGET": "board", "HIL_PORT": "/dev/ttyNOPE", "HIL_BOARD": "collar",
                     "HIL_VARIANT": "w8a16"})
    assert r.returncode == 1 and "3 errors" in r.stdout and "/dev/ttyNOPE" in r.stdout, r.stdout


def test_a_bad_thresholds_file_is_an_error_not_a_pass(tmp_path: object) -> None:
    r = _pytest("--hil-target", "board", "--hil-port", "/dev/ttyNOPE", "--hil-thresholds", "/nonexistent.json")
    assert r.returncode == 1 and "thresholds file not found" in r.stdout, r.stdout


def test_a_bad_value_in_an_hil_variable_stops_the_session_with_one_line_not_a_traceback() -> None:
    for env, says in (({"HIL_LIMIT": "abc"}, "hil: hil_limit: 'abc' is not a whole number"),
                      ({"HIL_BOARD": "nosuch"}, "hil: hil_board: nosuch: unknown; known: collar, eartag"),
                      ({"HIL_VARIANT": "w4a4"}, "hil_variant: w4a4 not one of float32")):
        r = _pytest("--co", env=env)
        assert r.returncode == 4, r.stdout + r.stderr
        out = r.stdout + r.stderr
        assert says in out and "Traceback" not in out and "errors during collection" not in out, out


@needs_qemu
def test_stream_mode_tests_carry_their_measured_values_as_junit_properties(tmp_path: Path) -> None:
    xml = tmp_path / "junit.xml"
    r = _pytest("tests/acceptance/test_stream_mode.py", "--hil-target", "qemu", "--hil-board", "eartag",
                "--hil-variant", "w8a16", "--hil-stream-limit", "2", f"--junitxml={xml}")
    assert r.returncode == 0, r.stdout + r.stderr
    cases = ElementTree.parse(xml).getroot().iter("testcase")
    props = [{p.get("name"): p.get("value") for p in c.iter("property")} for c in cases]
    assert len(props) >= 4
    assert [p["hil.stream_run"].split(" ")[0] for p in props] == ["ran"] + ["shared:"] * (len(props) - 1)
    for p in props:
        verified, expected = int(p["hil.stream_windows_verified"]), int(p["hil.stream_windows_expected"])
        assert 0 < verified == expected, p
        assert p["hil.stream_windows_mismatched"] == "0" and p["hil.stream_windows_lost"] == "0"
        assert p["hil.stream_check"] == "bit-exact" and float(p["hil.stream_per_sample_ms"]) > 0
