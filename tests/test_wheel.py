"""The harness as a team gets it: the wheel built from this checkout, installed into a fresh venv
outside the checkout, `hil run` on QEMU from an empty folder, `hil init` and the acceptance suite
run from the folder it lays out. Nothing here reads the checkout except to build the wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, needs_qemu

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
                       capture_output=True, text=True, timeout=300, cwd=out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (whl,) = out.glob("cattle_hil-*.whl")
    return whl


def test_the_wheel_carries_the_fixtures_the_firmware_sources_and_the_acceptance_suite(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for need in ("harness/config/cattle.toml", "harness/config/boards.toml", "harness/config/acceptance.json",
                 "harness/packaged/fixtures/recordings/windows.npz", "harness/packaged/fixtures/models/student.pt",
                 "harness/packaged/fixtures/models/student_w8a16.npz", "harness/packaged/device_fw/Makefile",
                 "harness/packaged/device_fw/src/app/main.c", "harness/packaged/device_fw/generated/model_w8a16.c",
                 "harness/packaged/device_fw/generated/boards/boards.mk",
                 "harness/packaged/acceptance/test_acceptance.py", "protocol/messages.py"):
        assert need in names, need
    assert not [n for n in names if "/build/" in n or n.endswith((".elf", ".o", ".so"))]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and its dependencies (pip resolves them as for any user)."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True)
    r = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        str(wheel)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return env_dir / "bin"


def _outside(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIL_", "PYTEST_", "VIRTUAL_ENV"))}
    env["HIL_BUILD"] = str(tmp / "build")  # firmware builds of this test, not the user's cache
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


@needs_qemu
def test_hil_run_from_the_installed_wheel_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    r = subprocess.run([str(installed / "hil"), "run", "--board", "eartag", "--variant", "w8a16", "--quiet"],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path, env=_outside(tmp_path))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads((tmp_path / "reports" / "latest" / "report.json").read_text())
    run = report["runs"][0]
    assert run["passed"] and run["n"] == run["n_verified"] == run["versus_reference"]["n_exact"] > 0
    harness = report["provenance"]["harness"]
    assert harness["installed_at"].startswith(str(installed.parent)) and harness["commit"] is None
    assert harness["source"].startswith("installed package cattle-hil ")
    assert run["info"]["build_id"].startswith("cattle-hil-")
    assert (tmp_path / "build" / "fw" / "eartag-qemu" / "w8a16" / "fw.elf").is_file()


@needs_qemu
def test_hil_init_lays_out_a_team_folder_whose_acceptance_suite_passes(installed: Path, tmp_path: Path) -> None:
    team = tmp_path / "team"
    env = _outside(tmp_path)
    r = subprocess.run([str(installed / "hil"), "init", str(team)], capture_output=True, text=True, timeout=60,
                       cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (team / "tests").iterdir()) == [
        "test_acceptance.py", "test_device_level.py", "test_stream_mode.py"]
    env.update(HIL_BOARD="eartag", HIL_VARIANT="w8a16")  # one case of the four: the suite is the same for each
    r = subprocess.run([str(installed / "pytest"), "-q", "-p", "no:cacheprovider"], capture_output=True, text=True,
                       timeout=900, cwd=team, env=env)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    tail = r.stdout.strip().splitlines()[-1]
    assert " passed" in tail and "failed" not in tail and "error" not in tail, tail
    again = subprocess.run([str(installed / "hil"), "init", str(team)], capture_output=True, text=True, timeout=60,
                           cwd=tmp_path, env=env)
    assert again.returncode == 2 and "already has model.toml" in again.stderr
