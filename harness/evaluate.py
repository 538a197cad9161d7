"""One device run, end to end: start the target, hello, check the model, stream the windows, and
score the results against the labels, the reference and the acceptance thresholds."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from harness.boards import BOARDS
from harness.client import DeviceClient, open_transport
from harness.data.fixtures import FixtureSet
from harness.energy import estimate_energy
from harness.metrics import BitExact, FloatAgreement, Latency, Scores, compare_bit_exact, compare_float, score
from harness.reference import FLOAT_TOLERANCE, Reference, load_reference
from harness.run import RunHeader, stream_windows
from harness.targets.base import Target
from protocol import TimeBase

__all__ = ["ACCEPTANCE_FILE", "DeviceRun", "check_acceptance", "image_size", "load_thresholds", "run_device"]

ACCEPTANCE_FILE = Path(__file__).with_name("acceptance.json")


@dataclass
class DeviceRun:
    board: str
    variant: str
    target: str
    info: dict[str, object]
    n: int
    labels: Scores
    reference_labels: Scores
    versus_reference: BitExact | FloatAgreement
    time_unit: str
    device_time: Latency
    """in time_unit (emulated instructions, or cycles)"""
    device_us: Latency
    rtt_ms: Latency
    energy_uj_mean: float
    energy_basis: str
    journal: str
    resets: list[str]
    link: dict[str, int]
    flash_bytes: int | None = None
    ram_bytes: int | None = None
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    cycles: list[int] = field(default_factory=list)
    """raw time-base readings per window"""
    device_ms: list[float] = field(default_factory=list)
    """per window, at the real board clock"""
    device_classes: list[int] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.checks)

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["versus_reference"]["kind"] = "bit_exact" if isinstance(self.versus_reference, BitExact) else "float"
        d["passed"] = self.passed
        return d


def image_size(elf: Path) -> tuple[int, int] | None:
    """(flash, static RAM) bytes of an ELF from arm-none-eabi-size, or None without the tool."""
    tool = shutil.which("arm-none-eabi-size")
    if tool is None or not elf.is_file():
        return None
    out = subprocess.run([tool, "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sec = {p[0]: int(p[1]) for p in (ln.split() for ln in out.splitlines()) if len(p) >= 3 and p[1].isdigit()}
    flash = sum(sec.get(s, 0) for s in (".text", ".ARM.exidx", ".data"))
    ram = sum(sec.get(s, 0) for s in (".data", ".bss", ".noinit"))
    return flash, ram


def load_thresholds(path: Path = ACCEPTANCE_FILE) -> dict[str, dict[str, dict[str, object]]]:
    try:
        return json.loads(path.read_text())["thresholds"]  # type: ignore[no-any-return]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: acceptance thresholds missing") from None


def run_device(
    target: Target,
    fixtures: FixtureSet,
    models_dir: Path,
    journal: Path,
    resume: bool = False,
    limit: int | None = None,
    progress: Callable[[Iterator[int], int], Iterator[int]] | None = None,
    log: Callable[[str], None] = print,
    reference: Reference | None = None,
    depth: int | None = None,
) -> DeviceRun:
    """Run every fixture window through ``target``; the target is stopped afterwards.

    ``depth``: requests in flight (default 1 on QEMU, for exact instruction counts; 2 elsewhere,
    so the device never waits for the link)."""
    if depth is None:
        depth = 1 if target.kind == "qemu" else 2
    x = fixtures.calibrated_x()
    n = len(x) if limit is None else min(limit, len(x))
    ref = reference or load_reference(models_dir, target.variant, x[:n])
    board = BOARDS[target.board]
    with target:
        url = target.start()
        ser = open_transport(url)
        client = DeviceClient(ser, target.description, latency_budget_s=_latency_budget(target), on_log=log)
        try:
            info = client.hello()
            client.check_model(ref.model_hash, f"{target.variant} ({models_dir})")
            header = RunHeader(target.board, target.variant, target.kind, info.model_hash.hex(), info.build_id,
                               fixtures.sha256, n, info.time_base, info.clock_hz)
            results = stream_windows(client, x, header, journal, resume=resume, limit=limit, progress=progress,
                                     depth=depth)
            info = client.hello()  # stack high-water mark after the run; detects a reset during it
        finally:
            client.close()
    idx = np.array(sorted(results))
    if len(idx) != n or (idx != np.arange(n)).any():
        raise RuntimeError(f"{target.description}: {len(idx)} results for {n} windows")
    dev_scores = np.array([results[i].scores for i in idx])
    dev_cls = np.array([results[i].cls for i in idx])
    cycles = np.array([results[i].cycles for i in idx], dtype=np.float64)
    rtt = np.array([results[i].rtt_s for i in idx]) * 1e3
    y = fixtures.windows.y[:n]
    vs: BitExact | FloatAgreement
    if ref.exact:
        vs = compare_bit_exact(idx, dev_scores, ref.logits[:n])
        if not (dev_cls == ref.classes[:n]).all():
            i = int(np.flatnonzero(dev_cls != ref.classes[:n])[0])
            vs = BitExact(vs.n, vs.n_exact, vs.first_mismatch or f"window {i}: class {dev_cls[i]} vs {ref.classes[i]}")
    else:
        vs = compare_float(idx, dev_scores, ref.logits[:n], FLOAT_TOLERANCE)
    if info.time_base == TimeBase.SYSTICK_ICOUNT:
        unit = "instructions (QEMU -icount; 1 instruction = 1 cycle assumed)"
        dev_time = cycles / board.qemu.ticks_per_instruction
        dev_us = dev_time / board.clock_hz * 1e6
    else:
        unit = "cycles (DWT)"
        dev_time = cycles
        dev_us = cycles / info.clock_hz * 1e6
    energy = estimate_energy(target.board, float(dev_time.mean()))
    run = DeviceRun(
        board=target.board, variant=target.variant, target=target.kind,
        info={k: (v.hex() if isinstance(v, bytes) else v) for k, v in asdict(info).items()},
        n=n, labels=score(y, dev_cls, 4), reference_labels=score(y, ref.classes[:n], 4), versus_reference=vs,
        time_unit=unit, device_time=Latency.of(dev_time), device_us=Latency.of(dev_us), rtt_ms=Latency.of(rtt),
        energy_uj_mean=energy.joules * 1e6, energy_basis=energy.basis, journal=str(journal),
        resets=[str(r) for r in client.stats.resets],
        link={"retries": client.stats.retries, "bad_frames": client.stats.bad_frames},
        cycles=[int(c) for c in cycles], device_ms=[float(v) / 1e3 for v in dev_us],
        device_classes=[int(c) for c in dev_cls],
    )
    elf = getattr(target, "elf", None)
    if isinstance(elf, Path):
        sizes = image_size(elf)
        if sizes is not None:
            run.flash_bytes, run.ram_bytes = sizes
    return run


def _latency_budget(target: Target) -> float:
    try:
        ms = float(load_thresholds()[target.board][target.variant]["max_latency_ms"])  # type: ignore[arg-type]
    except (KeyError, FileNotFoundError):
        ms = 1000.0
    return ms / 1e3 * (20.0 if target.kind == "qemu" else 1.5) + 1.0


Thresholds = dict[str, dict[str, dict[str, object]]]


def check_acceptance(run: DeviceRun, thresholds: Thresholds) -> list[tuple[str, bool, str]]:
    """Every acceptance check for this board and variant, as (name, passed, detail)."""
    t = thresholds.get(run.board, {}).get(run.variant)
    if t is None:
        return [("thresholds", False, f"no acceptance thresholds for {run.board}/{run.variant}")]
    b = BOARDS[run.board]
    checks: list[tuple[str, bool, str]] = []
    vs = run.versus_reference
    if isinstance(vs, BitExact):
        checks.append(("bit-exact", vs.all_exact, f"{vs.n_exact}/{vs.n} windows" + (
            f"; first mismatch {vs.first_mismatch}" if vs.first_mismatch else "")))
    else:
        checks.append(("float agreement", vs.within_tolerance,
                       f"class agreement {vs.class_agreement:.2%}, max |dlogit| {vs.max_abs_err:.2e} "
                       f"(tolerance {vs.tolerance:g})"
                       + (f"; {vs.first_disagreement}" if vs.first_disagreement else "")))
    checks.append(("scores as reference", run.labels == run.reference_labels,
                   f"device MCC {run.labels.mcc:.4f}, reference MCC {run.reference_labels.mcc:.4f}"))
    min_acc = float(t["min_accuracy"])  # type: ignore[arg-type]
    checks.append(("accuracy", run.labels.accuracy >= min_acc, f"{run.labels.accuracy:.3f} >= {min_acc}"))
    max_ms = float(t["max_latency_ms"])  # type: ignore[arg-type]
    checks.append(("latency", run.device_us.max / 1e3 <= max_ms,
                   f"max {run.device_us.max / 1e3:.2f} ms <= {max_ms} ms"))
    max_uj = float(t["max_energy_uj"])  # type: ignore[arg-type]
    checks.append(("energy", run.energy_uj_mean <= max_uj, f"{run.energy_uj_mean:.1f} uJ <= {max_uj} uJ (estimate)"))
    if run.flash_bytes is not None and run.ram_bytes is not None:
        stack = int(run.info.get("stack_used", 0))  # type: ignore[call-overload]
        checks.append(("flash", run.flash_bytes <= b.flash_bytes, f"{run.flash_bytes} <= {b.flash_bytes} B"))
        checks.append(("RAM", run.ram_bytes + stack <= b.ram_bytes,
                       f"static {run.ram_bytes} + stack {stack} <= {b.ram_bytes} B"))
    checks.append(("no reset", not run.resets, "; ".join(run.resets) or "boot counter unchanged"))
    run.checks = checks
    return checks
