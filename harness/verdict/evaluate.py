"""One device run, end to end: start the target, hello, check the model, stream the windows, and
score the results against the labels, the reference and the acceptance thresholds.

Every window ends verified or failed with its reason; every case ends with a DeviceRun (also one
that could not start: :func:`failed_run`), so a report is always written."""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from harness.config.boards import BOARDS
from harness.config.descriptor import VARIANT_NAMES, ModelDescriptor
from harness.config.thresholds import Thresholds
from harness.data.fixtures import FixtureSet
from harness.device.client import (
    PART_BYTES,
    DeviceClient,
    DeviceError,
    DeviceTimeout,
    ModelMismatch,
    fault_text,
    open_transport,
)
from harness.device.linkfaults import FaultyPort, LinkFaults
from harness.device.linkproxy import LinkProxy
from harness.device.run import RunHeader, WindowResult, harness_version, inputs_sha256, stream_windows
from harness.device.targets.base import Target, WrongBoard
from harness.energy import MEASURE_WINDOWS, EnergyEstimate, PowerMeter, estimate_energy, measure_energy
from harness.reference import Reference, load_reference
from harness.verdict.metrics import BitExact, FloatAgreement, Latency, Scores, compare_bit_exact, compare_float, score
from protocol import Info, TimeBase

__all__ = ["CaseMismatch", "DeviceRun", "board_family", "check_acceptance", "check_case", "failed_run", "image_size",
           "run_device"]


@dataclass
class DeviceRun:
    board: str
    variant: str
    target: str
    info: dict[str, object]
    n: int
    """windows asked for"""
    labels: Scores
    """device classes against the labels, over the verified windows"""
    reference_labels: Scores
    versus_reference: BitExact | FloatAgreement
    time_unit: str
    device_time: Latency
    """in time_unit (emulated instructions, Renode virtual cycles, or DWT cycles)"""
    device_us: Latency
    rtt_ms: Latency
    energy_uj_mean: float
    energy_basis: str
    journal: str
    resets: list[str]
    link: dict[str, object]
    flash_bytes: int | None = None
    ram_bytes: int | None = None
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    cycles: list[int] = field(default_factory=list)
    """raw time-base readings per window that replied intact"""
    device_ms: list[float] = field(default_factory=list)
    """per window that replied intact, at the real board clock"""
    device_classes: list[int] = field(default_factory=list)
    window_index: list[int] = field(default_factory=list)
    """fixture index of every window that replied intact, verified or mismatched (device_classes,
    cycles, device_ms follow it)"""
    failures: list[dict[str, object]] = field(default_factory=list)
    """windows that could not be verified: index, window id, reason, resends"""
    aborted: str | None = None
    """why the stream stopped before every window was tried (None: it did not)"""
    boot_fault: str | None = None
    """the fault record the device reported at the first hello, in words"""
    mismatches: list[dict[str, object]] = field(default_factory=list)
    """mismatched windows (an intact reply that differs from the reference): window, got, want
    (first 50)"""
    n_mismatches: int = 0
    per_animal: dict[str, dict[str, float]] = field(default_factory=dict)
    """per cow: windows that replied, accuracy, and the reference's accuracy on the same windows"""
    device_logs: list[str] = field(default_factory=list)
    image: str | None = None
    """the ELF that ran (None: a board target with --no-flash)"""
    image_sha256: str | None = None
    wall_s: float = 0.0
    """host wall time of the whole device run (start, stream, stop)"""
    class_names: list[str] = field(default_factory=list)
    """the model's classes in output order (the descriptor's), naming the confusion matrix's rows"""
    reference: str = ""
    """what the device was checked against (reference kind and file)"""

    def per_class(self) -> list[dict[str, object]]:
        """Precision, recall and support of every class, from the confusion matrix."""
        cm = np.array(self.labels.confusion, dtype=np.int64)
        out: list[dict[str, object]] = []
        for k, name in enumerate(self.class_names):
            support, predicted = int(cm[k].sum()), int(cm[:, k].sum())
            out.append({"class": name, "support": support,
                        "recall": float(cm[k, k]) / support if support else None,
                        "precision": float(cm[k, k]) / predicted if predicted else None})
        return out

    def measured(self) -> dict[str, object]:
        """The measured values of this run, flat, with their units in the names (JUnit properties)."""
        m: dict[str, object] = {
            "windows": self.n, "windows_verified": self.n_verified, "windows_mismatched": self.n_mismatches,
            "windows_failed": len(self.failures),
            "accuracy": round(self.labels.accuracy, 6), "macro_f1": round(self.labels.macro_f1, 6),
            "mcc": round(self.labels.mcc, 6), "device_time_unit": self.time_unit,
            "device_time_p50": self.device_time.p50, "device_time_max": self.device_time.max,
            "latency_p50_ms": round(self.device_us.p50 / 1e3, 4), "latency_p95_ms": round(self.device_us.p95 / 1e3, 4),
            "latency_max_ms": round(self.device_us.max / 1e3, 4), "rtt_p50_ms": round(self.rtt_ms.p50, 3),
            "energy_uj": round(self.energy_uj_mean, 4), "energy_basis": self.energy_basis,
            "flash_bytes": self.flash_bytes, "ram_bytes": self.ram_bytes,
            "stack_bytes": self.info.get("stack_used"), "resends": self.link.get("retries", 0),
            "resets": len(self.resets), "device_run_wall_s": round(self.wall_s, 3),
        }
        for c in self.per_class():
            m[f"recall_{c['class']}"] = None if c["recall"] is None else round(float(c["recall"]), 6)  # type: ignore[arg-type]
        return m

    @property
    def n_replied(self) -> int:
        """Windows whose reply arrived intact (verified or mismatch)."""
        return len(self.device_classes)

    @property
    def n_verified(self) -> int:
        """Windows whose reply matches the reference (bit-exact, or the float tolerance): one word,
        one meaning; an intact reply that differs is a mismatch, a reply that never came a failure."""
        return self.n_replied - self.n_mismatches

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> DeviceRun:
        """The inverse of as_dict (a run read back from report.json, e.g. a baseline)."""
        return _run_from_dict(d)

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["versus_reference"]["kind"] = "bit_exact" if isinstance(self.versus_reference, BitExact) else "float"
        d["passed"] = self.passed
        d["n_verified"] = self.n_verified
        d["n_replied"] = self.n_replied
        return d


def _run_from_dict(d: dict[str, Any]) -> DeviceRun:
    names = {f.name for f in fields(DeviceRun)}
    kw = {k: v for k, v in d.items() if k in names}
    lab = {**d["labels"], "confusion": tuple(tuple(r) for r in d["labels"]["confusion"])}
    ref = {**d["reference_labels"], "confusion": tuple(tuple(r) for r in d["reference_labels"]["confusion"])}
    kw["labels"], kw["reference_labels"] = Scores(**lab), Scores(**ref)
    vs = dict(d["versus_reference"])
    kind = vs.pop("kind")
    kw["versus_reference"] = BitExact(**vs) if kind == "bit_exact" else FloatAgreement(**vs)
    for k in ("device_time", "device_us", "rtt_ms"):
        kw[k] = Latency(**d[k])
    kw["checks"] = [tuple(c) for c in d.get("checks", [])]
    return DeviceRun(**kw)


def board_family(name: str) -> str:
    """The board an Info board name belongs to: ``collar-qemu`` -> ``collar`` (board names may
    hold dashes themselves: ``acme-tag-qemu`` -> ``acme-tag``)."""
    return name.removesuffix("-qemu")


def image_size(elf: Path) -> tuple[int, int] | None:
    """(flash, static RAM) bytes of an ELF, from its section headers (pyelftools): flash = every
    allocated section with contents (code, read-only data, the initial values of .data); RAM =
    every allocated writable section (.data, .bss, .noinit, ...). None when the file is missing."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    if not elf.is_file():
        return None
    shf_write, shf_alloc = 0x1, 0x2
    flash = ram = 0
    try:
        with elf.open("rb") as fh:
            for sec in ELFFile(fh).iter_sections():
                flags, size = int(sec["sh_flags"]), int(sec["sh_size"])
                if not flags & shf_alloc or size == 0:
                    continue
                if sec["sh_type"] != "SHT_NOBITS":
                    flash += size
                if flags & shf_write:
                    ram += size
    except ELFError:
        return None
    return flash, ram


def _empty_scores(n_classes: int) -> Scores:
    return Scores(0, 0.0, 0.0, 0.0, tuple(tuple(0 for _ in range(n_classes)) for _ in range(n_classes)))


class CaseMismatch(ModelMismatch):
    """The device's hello describes another case than the one asked for (model hash, window,
    channels, classes, variant, output format): the message names both sides of every difference."""


def check_case(info: Info, model: ModelDescriptor, variant: str, where: str, ref: Reference) -> None:
    """Refuse a device whose hello does not describe ``variant`` of ``model`` with the reference
    ``ref``, before any window is sent: every difference in one message, the device's value against
    the case's."""
    checks: list[tuple[str, object, object, str]] = [
        ("model hash", info.model_hash.hex(), ref.model_hash.hex(), f"the reference, {ref.source}"),
        ("window", info.window_len, model.window, f"model.window of {model.source.name}"),
        ("channels", info.channels, model.channels, f"model.channels of {model.source.name}"),
        ("classes", info.n_classes, model.n_classes, f"model.classes of {model.source.name}"),
        ("variant", _variant_name(info.variant), variant, "the case"),
    ]
    if ref.exact:
        checks.append(("output Q fraction bits", info.output_frac_bits, ref.out_frac, "the reference"))
    diffs = [f"{what} {got} (device) vs {want} ({src})" for what, got, want, src in checks if got != want]
    if diffs:
        raise CaseMismatch(f"{where}: the device's hello does not match the case {variant} of {model.source}: "
                           + "; ".join(diffs) + f" (device build {info.build_id}): wrong firmware for this model, "
                           "or the wrong descriptor, or a stale reference (re-run `hil export` and rebuild)")


def _variant_name(v: int) -> str:
    return VARIANT_NAMES[v] if 0 <= v < len(VARIANT_NAMES) else f"#{v}"


def _image_sha256(target: Target) -> str | None:
    """sha256 of the ELF the target runs (None: a board tested with what is already on it)."""
    elf = getattr(target, "elf", None)
    if isinstance(elf, Path) and getattr(target, "flash", True) and elf.is_file():
        return hashlib.sha256(elf.read_bytes()).hexdigest()
    return None


def failed_run(board: str, variant: str, target: str, n: int, reason: str, classes: Sequence[str]) -> DeviceRun:
    """A case that produced no verified window (the target did not start, the device was refused):
    it is reported, with the reason, and fails."""
    z = Latency(0.0, 0.0, 0.0, 0.0)
    run = DeviceRun(board=board, variant=variant, target=target, info={}, n=n, labels=_empty_scores(len(classes)),
                    reference_labels=_empty_scores(len(classes)), versus_reference=BitExact(0, 0, None), time_unit="-",
                    device_time=z, device_us=z, rtt_ms=z, energy_uj_mean=0.0, energy_basis="-", journal="",
                    resets=[], link={}, aborted=reason, class_names=list(classes))
    run.checks = [("run", False, reason)]
    return run


def run_device(
    target: Target,
    fixtures: FixtureSet,
    model: ModelDescriptor,
    journal: Path,
    resume: bool = False,
    limit: int | None = None,
    progress: Callable[[Iterator[int], int], Iterator[int]] | None = None,
    log: Callable[[str], None] = print,
    reference: Reference | None = None,
    depth: int | None = None,
    link_faults: LinkFaults | None = None,
    link_proxy: bool = False,
    part_bytes: int | None = None,
    abort_after: int | None = None,
    latency_budget_ms: float | None = None,
    meter: PowerMeter | None = None,
) -> DeviceRun:
    """Run every fixture window through ``target``; the target is stopped afterwards.

    Every window ends verified or failed with its reason; a failed window does not stop the run.
    Raises (the case cannot run at all): TargetUnavailable, ConnectionError, DeviceTimeout at the
    first hello, ModelMismatch, ProtocolMismatch, WrongBoard, CaseMismatch.

    ``model``: the model descriptor; the reference of ``target.variant`` comes from it unless
    ``reference`` is given.

    ``depth``: requests in flight (default 1 on the emulators, QEMU and Renode, for exact instruction
    counts; 2 on boards, so the device never waits for the link). ``link_faults``: inject seeded
    link faults between the harness and the device (harness.device.linkfaults), inside the harness
    or, with ``link_proxy``, in a TCP proxy process on the real transport path
    (harness.device.linkproxy). ``meter``: measure the energy per inference with this power meter
    over a batch of MEASURE_WINDOWS inferences after the stream (real boards; the report then says
    "measured"); without one the energy is the board-table estimate. ``part_bytes``: sample bytes per
    Part (default the client's PART_BYTES; 0: whole windows). ``abort_after``: stop the stream after this
    many windows in a row failed (default MAX_CONSECUTIVE_FAILURES; 0: never)."""
    t_start = time.monotonic()
    if depth is None:
        depth = 1 if target.kind in ("qemu", "renode") else 2
    x = fixtures.calibrated_x()
    n = len(x) if limit is None else min(limit, len(x))
    ws = fixtures.windows
    keys = list(zip(ws.bout[:n].tolist(), ws.start[:n].tolist(), strict=True))
    ref = reference or load_reference(model, target.variant, x[:n], keys)
    board = BOARDS[target.board]
    proxy_summary = ""
    proxy_counts: dict[str, dict[str, int]] = {}
    with target, tempfile.TemporaryDirectory(prefix="hil-proxy-") as proxy_dir, contextlib.ExitStack() as stack:
        url = target.start()
        proxy = None
        if link_faults is not None and link_proxy:
            proxy = stack.enter_context(LinkProxy(link_faults, Path(proxy_dir) / "injected.json"))
            url = proxy.start(url)
        ser = open_transport(url)
        if link_faults is not None and proxy is None:
            ser = FaultyPort(ser, link_faults)  # type: ignore[assignment]
        budget_s = (latency_budget_ms if latency_budget_ms is not None else 1000.0) / 1e3
        budget_s = budget_s * (20.0 if target.kind in ("qemu", "renode") else 1.5) + 1.0
        client = DeviceClient(ser, target.description, latency_budget_s=budget_s, on_log=log,
                              part_bytes=PART_BYTES if part_bytes is None else part_bytes)
        try:
            try:
                info = client.hello()
            except DeviceTimeout as exc:
                raise DeviceTimeout(f"{exc}{target.diagnostics()}") from None
            if board_family(info.board) != target.board:
                raise WrongBoard(f"{target.description}: the device says it is board {info.board!r}, "
                                 f"not a {target.board!r}: wrong image for this board")
            boot_fault = fault_text(info) if info.fault_flags else None
            check_case(info, model, target.variant, target.description, ref)
            header = RunHeader(target.board, target.variant, target.kind, info.model_hash.hex(), info.build_id,
                               fixtures.sha256, inputs_sha256(x[:n]), n, info.time_base, info.clock_hz,
                               image_sha256=_image_sha256(target), harness_version=harness_version())
            outcome = stream_windows(client, x, header, journal, resume=resume, limit=limit, progress=progress,
                                     depth=depth, **({} if abort_after is None else {"abort_after": abort_after}))
            measured: EnergyEstimate | None = None
            if meter is not None and outcome.aborted is None:
                measured = _measure(client, meter, x[:n], outcome.results, board.supply_v, budget_s)
            if outcome.aborted is None:
                with contextlib.suppress(DeviceError, DeviceTimeout):
                    # stack high-water mark after the run; detects a reset during it
                    info = client.hello(at_window=n - 1)
        finally:
            client.close()
            if proxy is not None:
                proxy_counts = proxy.stop()
                proxy_summary = proxy.injected_summary()
    results = outcome.results
    idx = np.array(sorted(results), dtype=np.int64)
    y = fixtures.windows.y[:n]
    if len(idx):
        dev_scores = np.array([results[i].scores for i in idx])
        dev_cls = np.array([results[i].cls for i in idx])
        cycles = np.array([results[i].cycles for i in idx], dtype=np.float64)
        rtt = np.array([results[i].rtt_s for i in idx]) * 1e3
        labels, ref_labels = score(y[idx], dev_cls, model.n_classes), score(y[idx], ref.classes[idx], model.n_classes)
    else:
        dev_scores = np.zeros((0, model.n_classes))
        dev_cls = np.zeros(0, dtype=np.int64)
        cycles = rtt = np.zeros(1)
        labels = ref_labels = _empty_scores(model.n_classes)
    vs: BitExact | FloatAgreement
    mism: list[dict[str, object]] = []
    if len(idx):
        want_l = ref.logits[idx]
        if ref.exact:
            bad = np.flatnonzero((np.asarray(dev_scores, dtype=np.int64) != want_l).any(axis=1)
                                | (dev_cls != ref.classes[idx]))
        else:
            bad = np.flatnonzero((np.abs(dev_scores - want_l) > float(ref.tolerance or 0.0)).any(axis=1)
                                | (dev_cls != ref.classes[idx]))
        as_score = int if ref.exact else float  # integer scores stay integers in report.json and the tables
        mism = [{"window": int(idx[j]), "got_class": int(dev_cls[j]), "want_class": int(ref.classes[idx[j]]),
                 "got": [as_score(v) for v in dev_scores[j]], "want": [as_score(v) for v in want_l[j]]}
                for j in bad]
    cows = fixtures.windows.cow[:n]
    per_animal = {}
    for cow in sorted(set(cows[idx].tolist())) if len(idx) else []:
        m = cows[idx] == cow
        per_animal[cow] = {"windows": int(m.sum()), "accuracy": float((dev_cls[m] == y[idx][m]).mean()),
                           "reference_accuracy": float((ref.classes[idx][m] == y[idx][m]).mean())}
    if ref.exact:
        vs = compare_bit_exact(idx, dev_scores, ref.logits[idx])
        if not (dev_cls == ref.classes[idx]).all():
            j = int(np.flatnonzero(dev_cls != ref.classes[idx])[0])
            vs = BitExact(vs.n, vs.n_exact, vs.first_mismatch or
                          f"window {int(idx[j])}: class {dev_cls[j]} vs {ref.classes[idx[j]]}")
    else:
        vs = compare_float(idx, dev_scores, ref.logits[idx], float(ref.tolerance or 0.0))
    not_exact = (f"; not exact: with {depth} requests in flight the UART receive interrupts of the next "
                 "window are counted inside the inference (use depth 1 for exact counts)") if depth > 1 else ""
    if info.time_base == TimeBase.SYSTICK_ICOUNT:
        unit = ("instructions (QEMU -icount; ms and energy count 1 instruction as 1 cycle, not a cycle estimate: "
                "real cores take more, see hil bench fw's est. cycles)" + not_exact)
        dev_time = cycles / board.qemu_machine().ticks_per_instruction
        dev_us = dev_time / board.clock_hz * 1e6
    elif target.kind == "renode":
        unit = (f"instructions ({target.time_base_note()}; ms and energy count 1 instruction as 1 cycle, not a cycle "
                f"estimate: real cores take more, see hil bench fw's est. cycles){not_exact}")
        dev_time = cycles
        dev_us = cycles / info.clock_hz * 1e6
    else:
        unit = "cycles (DWT CYCCNT on silicon)"
        dev_time = cycles
        dev_us = cycles / info.clock_hz * 1e6
    energy = measured or estimate_energy(target.board, float(dev_time.mean()),
                                         "cycles" if unit.startswith("cycles") else "instructions as cycles")
    run = DeviceRun(
        board=target.board, variant=target.variant, target=target.kind,
        info={k: (v.hex() if isinstance(v, bytes) else v) for k, v in asdict(info).items()},
        n=n, labels=labels, reference_labels=ref_labels, versus_reference=vs,
        time_unit=unit, device_time=Latency.of(dev_time), device_us=Latency.of(dev_us), rtt_ms=Latency.of(rtt),
        energy_uj_mean=energy.joules * 1e6, energy_basis=energy.basis, journal=str(journal),
        resets=[str(r) for r in client.stats.resets],
        link={**client.stats.as_dict(), "windows_sent": outcome.sent,
              **({"faults_injected": ser.injected_summary(), "faults": ser.injected()}
                 if isinstance(ser, FaultyPort) else {}),
              **({"faults_injected": proxy_summary, "faults": proxy_counts} if proxy is not None else {})},
        cycles=[int(c) for c in cycles[: len(idx)]], device_ms=[float(v) / 1e3 for v in dev_us[: len(idx)]],
        device_classes=[int(c) for c in dev_cls], window_index=[int(i) for i in idx],
        failures=[asdict(f) for f in outcome.failures.values()], aborted=outcome.aborted, boot_fault=boot_fault,
        mismatches=mism[:50], n_mismatches=len(mism), per_animal=per_animal, device_logs=list(client.stats.logs),
        class_names=list(model.classes), reference=ref.source,
    )
    elf = getattr(target, "elf", None)
    if isinstance(elf, Path) and getattr(target, "flash", True):
        run.image = str(elf)
        run.image_sha256 = hashlib.sha256(elf.read_bytes()).hexdigest() if elf.is_file() else None
        sizes = image_size(elf)
        if sizes is not None:
            run.flash_bytes, run.ram_bytes = sizes
    run.wall_s = time.monotonic() - t_start
    return run


def _measure(client: DeviceClient, meter: PowerMeter, x: np.ndarray, results: dict[int, WindowResult],
             supply_v: float, budget_s: float) -> EnergyEstimate:
    """Run a batch of windows again while the meter records; each must give the class it gave
    in the stream (a device that answers differently now is not the device that was verified)."""
    idx = sorted(results)[:MEASURE_WINDOWS]

    def batch() -> int:
        for k, i in enumerate(idx):
            r = client.infer(1_000_000 + k, x[i])
            if r.cls != results[i].cls:
                raise DeviceError(f"window {i}: class {r.cls} during the energy measurement, {results[i].cls} "
                                  "in the stream")
        return len(idx)

    return measure_energy(meter, batch, supply_v, seconds=len(idx) * budget_s + 1.0)


def _floor(name: str, value: float, floor: float | None) -> tuple[str, bool, str] | None:
    if floor is None:
        return None
    ok = bool(value >= floor)
    return (name, ok, f"{name} {value:.3f} {'meets' if ok else 'below'} the floor {floor:g}")


def _num(v: float) -> str:
    """A figure as a reader wants it: whole numbers in full (1048576, not 1.04858e+06), others to 6
    significant digits."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:.6g}"


def _budget(name: str, value: float, budget: float | None, unit: str, what: str = "",
            part: tuple[str, int] | None = None) -> tuple[str, bool, str] | None:
    """``part``: (the part's name, its size in ``unit``), to state the value as a share of the part."""
    if budget is None:
        return None
    ok = bool(value <= budget)
    share = f" ({100 * value / part[1]:.1f} % of the {part[0]}'s {_num(part[1])} {unit})" if part else ""
    return (name, ok, f"{what or name} {_num(value)} {unit}{share} {'within' if ok else 'over'} the budget "
                      f"{_num(budget)} {unit}")


def check_acceptance(run: DeviceRun, thresholds: dict[tuple[str, str], Thresholds]) -> list[tuple[str, bool, str]]:
    """Every acceptance check for this board and variant, as (name, passed, detail); stored in
    ``run.checks``. The CLI and the pytest plugin both use this one rule."""
    if run.checks and run.checks[0][0] == "run":
        return run.checks  # the case never ran: failed_run() said why
    t = thresholds.get((run.board, run.variant))
    if t is None:
        run.checks = [("thresholds", False, f"no acceptance thresholds for {run.board}/{run.variant}")]
        return run.checks
    b = BOARDS[run.board]
    checks: list[tuple[str, bool, str] | None] = []
    fails = run.failures
    detail = f"{run.n_verified}/{run.n} windows verified"
    if run.n_mismatches:
        detail += f"; {run.n_mismatches} mismatched (an intact reply that differs from the reference)"
    if fails:
        detail += f"; {len(fails)} failed: " + "; ".join(f"window {f['index']}: {f['reason']}" for f in fails[:5])
        if len(fails) > 5:
            detail += f"; ... ({len(fails) - 5} more in {run.journal})"
    if run.aborted:
        detail += f"; stream stopped: {run.aborted}"
    checks.append(("every window verified", not fails and run.aborted is None and run.n_verified == run.n, detail))
    checks.append(("no fault at boot", run.boot_fault is None,
                   (run.boot_fault and f"the device reported a fault record at the first hello: {run.boot_fault}")
                   or "no fault record at the first hello"))
    vs = run.versus_reference
    if isinstance(vs, BitExact):
        checks.append(("bit-exact", vs.all_exact and vs.n > 0, f"{vs.n_exact}/{vs.n} verified windows bit-exact" + (
            f"; first mismatch {vs.first_mismatch}" if vs.first_mismatch else "")))
    else:
        checks.append(("float agreement", vs.within_tolerance and vs.n > 0,
                       f"class agreement {vs.class_agreement:.2%}, max |dlogit| {vs.max_abs_err:.2e} "
                       f"(tolerance {vs.tolerance:g})"
                       + (f"; {vs.first_disagreement}" if vs.first_disagreement else "")))
    checks.append(("scores as reference", run.labels == run.reference_labels,
                   f"device MCC {run.labels.mcc:.4f}, reference MCC {run.reference_labels.mcc:.4f} "
                   f"on the same {run.labels.n} windows"))
    checks.append(("windows", run.n_verified >= t.min_windows,
                   f"{run.n_verified} verified windows {'meets' if run.n_verified >= t.min_windows else 'below'} "
                   f"the minimum {t.min_windows}"))
    checks.append(_floor("accuracy", run.labels.accuracy, t.min_accuracy))
    checks.append(_floor("MCC", run.labels.mcc, t.min_mcc))
    cm = np.array(run.labels.confusion)
    if t.min_recall and len(run.class_names) != len(cm):
        checks.append(("recall", False, f"the run names {len(run.class_names)} classes but scored {len(cm)}: the "
                       "recall floors cannot be checked by class name"))
    unknown = sorted(set(t.min_recall) - set(run.class_names))
    if unknown:
        checks.append(("recall", False, f"recall floors for {', '.join(unknown)}, which the model does not have "
                       f"(its classes: {', '.join(run.class_names) or 'none named'})"))
    for k, cname in enumerate(run.class_names if len(run.class_names) == len(cm) else ()):
        floor = t.min_recall.get(cname)
        if floor is None:
            continue
        support = int(cm[k].sum())
        if support == 0:
            checks.append((f"recall {cname}", False, f"recall {cname}: no {cname} window among the verified "
                           f"windows, so its floor {floor:g} cannot be checked"))
            continue
        rec = float(cm[k, k]) / support
        checks.append((f"recall {cname}", rec >= floor, f"recall {cname} {rec:.3f} ({cm[k, k]}/{support}) "
                       f"{'meets' if rec >= floor else 'below'} the floor {floor:g}"))
    checks.append(_budget("latency", run.device_us.max / 1e3, t.max_latency_ms, "ms",
                          f"slowest window ({run.time_unit} at {b.clock_hz / 1e6:g} MHz)"))
    checks.append(_budget("energy", run.energy_uj_mean, t.max_energy_uj, "uJ",
                          f"mean energy per inference ({run.energy_basis})"))
    if run.flash_bytes is not None and run.ram_bytes is not None:
        stack = int(run.info.get("stack_used", 0))  # type: ignore[call-overload]
        checks.append(_budget("flash", run.flash_bytes, t.max_flash_bytes or b.flash_bytes, "B", "flash",
                              (b.part, b.flash_bytes)))
        checks.append(_budget("RAM", run.ram_bytes + stack, t.max_ram_bytes or b.ram_bytes, "B",
                              f"static {run.ram_bytes} B + stack {stack} B =", (b.part, b.ram_bytes)))
    sent = max(1, int(run.link.get("windows_sent", run.n)))  # type: ignore[call-overload]
    retries = int(run.link.get("retries", 0))  # type: ignore[call-overload]
    checks.append(_budget("retry rate", retries / sent, t.max_retry_rate, "resends/window",
                          f"{retries} resends over {sent} windows:"))
    checks.append(("no reset", not run.resets, "; ".join(run.resets) or "boot counter unchanged"))
    run.checks = [c for c in checks if c is not None]
    return run.checks
