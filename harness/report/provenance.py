"""Where a run came from: date, host, harness commit, tool versions, command line, inputs. Goes
into the report's provenance block and ``report.json``."""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from harness.assets import CHECKOUT, IN_CHECKOUT, PACKAGE, version

__all__ = ["collect_provenance", "file_sha256"]

_REPO = CHECKOUT


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def first_line(cmd: list[str]) -> str | None:
    """The first line a tool prints (stdout, else stderr), or None when it is not there or fails to run."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git() -> dict[str, object]:
    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(_REPO), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    if not IN_CHECKOUT:
        return {"commit": None, "dirty": None, "installed_at": str(PACKAGE),
                "source": f"installed package cattle-hil {version()} (not a git checkout)"}
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None, "installed_at": str(PACKAGE),
            "source": f"git checkout {CHECKOUT}"}


def collect_provenance(argv: list[str] | None = None) -> dict[str, object]:
    """Everything about the run that is not a device result."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(pkg: str) -> str | None:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return None

    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"name": platform.node(), "os": platform.platform(), "cpu": _cpu(), "cores": os.cpu_count()},
        "harness": {"version": ver("cattle-hil"), **_git()},
        "command": shlex.join(argv if argv is not None else sys.argv),
        "tools": {
            "qemu": first_line(["qemu-system-arm", "--version"]),
            "renode": first_line(["renode", "--version"]),
            "arm-none-eabi-gcc": first_line(["arm-none-eabi-gcc", "--version"]),
            "python": platform.python_version(), "numpy": ver("numpy"), "torch": ver("torch"),
            "pyserial": ver("pyserial"), "construct": ver("construct"), "pyocd": ver("pyocd"),
        },
    }
