"""`hil doctor`: what this machine has for each target, and what is missing, before a run finds out.

Every check is a :class:`Check`: its name, whether it is needed (``need``: which targets cannot run
without it) and what was found. A missing tool that a target needs says how to get it. The exit
status of `hil doctor` is 0 when every check needed by the QEMU target passes, else 1."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass

from harness.report.provenance import first_line

__all__ = ["TARGET_NAMES", "Check", "doctor", "format_doctor", "ready_for"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str
    """what was found (a version, a path, a count), or why not"""
    need: str
    """which targets need it: 'qemu', 'renode', 'board', 'all' or 'optional'"""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _tool(name: str, cmd: list[str], need: str, how: str) -> Check:
    line = first_line(cmd)
    return Check(name, line is not None, line or f"not found ({how})", need)


def _qemu_machines() -> Check:
    from harness.config.boards import BOARDS

    want = sorted({b.qemu.machine for b in BOARDS.values() if b.qemu is not None})
    if shutil.which("qemu-system-arm") is None:
        return Check("QEMU machines", False, f"no qemu-system-arm to ask for {', '.join(want)}", "qemu")
    r = subprocess.run(["qemu-system-arm", "-machine", "help"], capture_output=True, text=True, timeout=30)
    have = {line.split()[0] for line in r.stdout.splitlines()[1:] if line.strip()}
    missing = [m for m in want if m not in have]
    return Check("QEMU machines", not missing, ", ".join(want) + (f"; missing: {', '.join(missing)}" if missing
                                                                   else " (every board's machine)"), "qemu")


def _package(name: str, need: str, extra: str = "") -> Check:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return Check(f"python: {name}", True, version(name), need)
    except PackageNotFoundError:
        how = f"pip install 'cattle-hil[{extra}]'" if extra else f"pip install {name}"
        return Check(f"python: {name}", False, f"not installed ({how})", need)


def _probes() -> Check:
    if importlib.util.find_spec("pyocd") is None:
        return Check("debug probes", False, "pyocd not installed", "board")
    try:
        from pyocd.core.helpers import ConnectHelper

        probes = ConnectHelper.get_all_connected_probes(blocking=False, print_wait_message=False)
    except Exception as exc:  # a probe backend (libusb) that cannot start: say so, do not crash
        return Check("debug probes", False, f"pyocd could not list probes ({type(exc).__name__}: {exc})", "board")
    ids = [p.unique_id for p in probes]
    return Check("debug probes", bool(ids), ", ".join(ids) if ids else "none attached", "board")


def _ports() -> Check:
    from serial.tools import list_ports

    ports = [p.device for p in list_ports.comports()]
    return Check("serial ports", bool(ports), ", ".join(ports) if ports else "none", "board")


def _case() -> list[Check]:
    from harness.assets import FIXTURES, IN_CHECKOUT, PACKAGE, version
    from harness.config.descriptor import PACKAGED_DESCRIPTOR, load_descriptor
    from harness.data.fixtures import load_fixtures

    out = [Check("harness", True, f"cattle-hil {version()} at {PACKAGE} ("
                 + ("a git checkout" if IN_CHECKOUT else "an installed package") + ")", "all")]
    try:
        model = load_descriptor(PACKAGED_DESCRIPTOR)
        fx = load_fixtures(model.fixtures_dir, model)
        out.append(Check("packaged model and fixtures", True, f"{model.summary()}; {len(fx.windows)} windows in "
                         f"{model.fixtures_dir}", "all"))
    except (OSError, ValueError) as exc:
        out.append(Check("packaged model and fixtures", False, f"{FIXTURES}: {exc}", "all"))
    return out


def doctor() -> list[Check]:
    """Every check, in the order `hil doctor` prints them."""
    from harness.device.targets.renode import renode_executable

    apt = "apt-get install {} (scripts/bootstrap.sh does)"
    checks = [
        Check("python", sys.version_info >= (3, 11), sys.version.split()[0], "all"),
        *_case(),
        _tool("make", ["make", "--version"], "all", apt.format("make")),
        _tool("arm-none-eabi-gcc", ["arm-none-eabi-gcc", "--version"], "all",
              apt.format("gcc-arm-none-eabi libnewlib-arm-none-eabi")),
        _tool("gcc (host builds)", ["gcc", "--version"], "optional", apt.format("gcc")),
        _tool("clang (fuzzer)", ["clang", "--version"], "optional", apt.format("clang libclang-rt-14-dev")),
        _tool("qemu-system-arm", ["qemu-system-arm", "--version"], "qemu", apt.format("qemu-system-arm")),
        _qemu_machines(),
    ]
    exe = renode_executable()
    checks.append(Check("renode", exe is not None, exe or "not found (set HIL_RENODE or put renode on PATH; not "
                        "packaged for Debian or PyPI)", "renode"))
    checks += [_package("torch", "all"), _package("onnxruntime", "optional", "onnx"), _package("pyocd", "board"),
               _package("labgrid", "labgrid", "labgrid"), _probes(), _ports()]
    return checks


TARGET_NAMES = ("qemu", "renode", "board", "labgrid")
"""the targets whose readiness `hil doctor` reports"""


def ready_for(checks: list[Check], target: str) -> bool:
    """Every check that ``target`` (or every target) needs passed."""
    return all(c.ok for c in checks if c.need in ("all", target))


def format_doctor(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'ok' if c.ok else '--':<3}{c.name:<{width + 2}}{c.found}" + ("" if c.ok or c.need == "optional"
                                                                           else f"   [needed by: {c.need}]")
             for c in checks]
    lines.append("")
    lines.append("targets: " + ", ".join(f"{t} {'ready' if ready_for(checks, t) else 'not ready'}"
                                         for t in TARGET_NAMES))
    return "\n".join(lines)

