"""The labgrid target through a real labgrid farm on loopback (tests/labgrid_farm.py: a
coordinator, an exporter exporting QEMU boards' UART sockets as NetworkSerialPorts, a place per
board): `hil run --target labgrid` verifies every window and releases the place; a place that is
taken, unknown or offline is refused with the coordinator's reason and exit status 2; the
acceptance suite runs through two places acquired by two xdist workers at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest
from conftest import REPO, needs_qemu
from labgrid_farm import Farm, labgrid_farm, needs_labgrid

from harness.cli import main
from harness.device.targets.labgrid import (
    PlaceRefused,
    PlaceResources,
    flash_through_place,
    serial_url,
)

pytestmark = [needs_qemu, needs_labgrid]

PLACES = (("desk-collar", "collar", "w8a16"), ("desk-eartag", "eartag", "w8a16"))


@pytest.fixture(scope="module")
def farm() -> Iterator[Farm]:
    """Two places, each a QEMU board running our w8a16 firmware."""
    with labgrid_farm(PLACES) as f:
        yield f


def _acquired(farm: Farm) -> list[str]:
    """The places `labgrid-client who` lists as acquired now."""
    return [line.split()[2] for line in farm.who().splitlines()[1:] if line.strip()]


def _run(farm: Farm, tmp_path: Path, *extra: str) -> int:
    return main(["run", "--target", "labgrid", "--coordinator", farm.coordinator, "--quiet",
                 "--report", str(tmp_path / "report"), *extra])


def test_hil_run_through_a_labgrid_place_verifies_every_window_bit_exact_and_releases_it(
        farm: Farm, tmp_path: Path) -> None:
    rc = _run(farm, tmp_path, "--place", "desk-eartag", "--board", "eartag", "--variant", "w8a16", "--no-flash")
    assert rc == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    (case,) = summary["cases"]
    m = case["measured"]
    assert case["target"] == "labgrid" and case["passed"] and case["board"] == "eartag"
    assert m["windows_verified"] == m["windows"] == 406 and m["windows_failed"] == 0
    assert m["windows_mismatched"] == 0
    assert _acquired(farm) == []  # released


def test_sigterm_during_a_run_releases_the_place(tmp_path: Path) -> None:
    # a farm of its own: the run is cut mid-frame, which the board's error counters keep since boot
    with labgrid_farm(PLACES[:1]) as farm:
        _sigterm_releases(farm, tmp_path)


def _sigterm_releases(farm: Farm, tmp_path: Path) -> None:
    import signal

    p = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "--target", "labgrid", "--place", "desk-collar",
                          "--coordinator", farm.coordinator, "--board", "collar", "--variant", "w8a16", "--no-flash",
                          "--report", str(tmp_path / "report")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while _acquired(farm) != ["desk-collar"]:
            assert time.monotonic() < deadline and p.poll() is None, "the run never acquired its place"
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        _out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143, err
    assert "interrupted by SIGTERM" in err
    assert _acquired(farm) == []


def test_a_place_taken_by_someone_else_is_refused_with_the_coordinators_reason(
        farm: Farm, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    farm.client("-p", "desk-eartag", "acquire", user="alice")
    try:
        rc = _run(farm, tmp_path, "--place", "desk-eartag", "--board", "eartag", "--variant", "w8a16", "--no-flash")
        err = capsys.readouterr().err
        assert rc == 2
        assert "option --place: labgrid place desk-eartag" in err and "acquired by" in err and "/alice" in err
        assert not (tmp_path / "report").exists()  # refused before anything started
    finally:
        farm.client("-p", "desk-eartag", "release", user="alice")
    assert _acquired(farm) == []


def test_an_unknown_place_is_refused_naming_the_places_the_coordinator_has(
        farm: Farm, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = _run(farm, tmp_path, "--place", "desk-9", "--board", "eartag", "--variant", "w8a16", "--no-flash")
    err = capsys.readouterr().err
    assert rc == 2
    assert "labgrid place desk-9: unknown to the coordinator" in err and "desk-collar, desk-eartag" in err


def test_a_place_without_a_flashing_resource_is_refused_unless_no_flash(
        farm: Farm, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = _run(farm, tmp_path, "--place", "desk-eartag", "--board", "eartag", "--variant", "w8a16")
    err = capsys.readouterr().err
    assert rc == 2
    assert "no flashing resource (NetworkUSBDebugger or USBDebugger)" in err and "give --no-flash" in err


def test_the_serial_url_follows_the_network_serial_ports_protocol() -> None:
    assert serial_url({"host": "farm", "port": 4001, "protocol": "raw"}, "p") == "socket://farm:4001"
    assert serial_url({"host": "farm", "port": 4001}, "p") == "rfc2217://farm:4001"  # labgrid's default
    with pytest.raises(PlaceRefused, match="protocol 'telnet'"):
        serial_url({"host": "farm", "port": 4001, "protocol": "telnet"}, "p")
    with pytest.raises(PlaceRefused, match="without a host and port"):
        serial_url({"host": "farm", "port": None}, "p")


def test_flashing_through_a_place_needs_its_flashing_resource_and_the_parts_openocd_config(tmp_path: Path) -> None:
    serial = {"host": "127.0.0.1", "port": 1, "protocol": "raw"}
    none = PlaceResources("p", serial, None, {}, ())
    with pytest.raises(PlaceRefused, match="no flashing resource"):
        flash_through_place("c:1", "p", none, tmp_path / "fw.elf")
    debugger = PlaceResources("p", serial, ("NetworkUSBDebugger", {"host": "farm", "path": "1-1"}), {}, ())
    with pytest.raises(PlaceRefused, match="tag openocd_target"):
        flash_through_place("c:1", "p", debugger, tmp_path / "fw.elf")


def test_the_acceptance_suite_runs_through_two_places_held_by_two_workers_at_once(farm: Farm, tmp_path: Path) -> None:
    hw = tmp_path / "farm.json"
    hw.write_text(json.dumps({"boards": {p: {"board": b, "place": p, "coordinator": farm.coordinator}
                                         for p, b, _v in PLACES}}))
    xml = tmp_path / "junit.xml"
    most = [0]
    done = threading.Event()

    def watch() -> None:  # how many places are acquired at once, while the suite runs
        while not done.is_set():
            most[0] = max(most[0], len(_acquired(farm)))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "tests/acceptance",
                            "--hil-target", "labgrid", "--hil-hardware-map", str(hw), "--hil-variant", "w8a16",
                            "--hil-no-flash", "--hil-stream-limit", "2", f"--junitxml={xml}"],
                           capture_output=True, text=True, cwd=REPO, timeout=600, env=dict(os.environ))
    finally:
        done.set()
        watcher.join()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert most[0] == 2, "the two workers never held their places at the same time"
    assert _acquired(farm) == []
    root = ElementTree.parse(xml).getroot()
    suite = {p.get("name"): p.get("value") for p in root.iter("property") if p.get("name", "").endswith(".target")}
    assert suite == {"hil.collar-w8a16.target": "labgrid", "hil.eartag-w8a16.target": "labgrid"}
    ran = [p for p in root.iter("property") if p.get("name") == "hil.device_run" and
           str(p.get("value")).startswith("ran here")]
    assert len(ran) == 2  # one device run per case, on the worker that holds its place


def test_a_place_whose_exporter_went_offline_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with labgrid_farm(PLACES[1:]) as f:
        exporter = f.procs[-1]
        exporter.terminate()
        exporter.wait(timeout=10)
        deadline = time.monotonic() + 30
        while "desk-eartag/NetworkSerialPort" in f.client("resources", check=False).stdout:
            assert time.monotonic() < deadline, "the coordinator kept the exporter's resources"
            time.sleep(0.2)
        rc = _run(f, tmp_path, "--place", "desk-eartag", "--board", "eartag", "--variant", "w8a16", "--no-flash")
        err = capsys.readouterr().err
        assert rc == 2
        assert "labgrid place desk-eartag" in err and "offline" in err
