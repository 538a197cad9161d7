"""``hil bench link``: how the verdict survives a noisy link.

For each fault kind (and all kinds at once) x rate, one device run with seeded faults injected
between the harness and the emulated device, compared with clean runs of the same case: windows
verified, failed explicitly, silently wrong (verified but different from the reference: must be
0), whether the stream was aborted, resends, and wall time relative to the clean runs (host time,
noisy: read it as a ratio within one run of the bench). On a shared machine the load drifts over
the minutes a bench takes, so a clean run is made before every faulted row and after the last,
and each row is compared with the mean of the clean runs on either side of it. Faults are drawn
per frame or per byte (harness.device.linkfaults), inside the harness process or, with ``proxy``,
in a TCP proxy on the real transport path (harness.device.linkproxy); the clean runs then go
through the same proxy, injecting nothing. Stalls add their own time: a row's budget is the
clean time plus the stall time it injected.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.config.descriptor import ModelDescriptor
from harness.data.fixtures import FixtureSet
from harness.device.linkfaults import FAULT_KINDS, LinkFaults
from harness.device.targets import make_target
from harness.device.targets.base import build_firmware
from harness.reference import load_reference
from harness.verdict.evaluate import DeviceRun, run_device

__all__ = ["RATES", "LinkBenchRow", "format_link_bench", "run_link_bench"]

RATES = {"frame": (0.001, 0.01, 0.05), "byte": (0.001, 0.01)}
"""Default rates per unit."""
BYTE_PLAN_SKIPS = {("stall", 0.01), ("all", 0.01)}
"""Per byte, the default plan leaves out 1 % stalls (about six a window: minutes of stall per run)
and 1 % of all kinds at once: the goals are set at 0.1 % of every kind and of all at once, and at
1 % of drops, flips, duplicates and garbage."""


@dataclass(frozen=True)
class LinkBenchRow:
    fault: str
    rate: float
    windows: int
    verified: int
    failed: int
    silently_wrong: int
    aborted: bool
    retries: int
    injected: str
    seconds: float
    clean_seconds: float
    """the mean of the clean runs just before and just after this row"""
    stall_seconds: float = 0.0
    """stall time the row injected (both directions summed)"""
    unit: str = "frame"

    @property
    def ratio(self) -> float:
        """Wall time over the clean run's."""
        return self.seconds / self.clean_seconds if self.clean_seconds else float("nan")

    @property
    def ratio_net(self) -> float:
        """Wall time less the injected stall time, over the clean run's."""
        return (self.seconds - self.stall_seconds) / self.clean_seconds if self.clean_seconds else float("nan")

    @property
    def verified_share(self) -> float:
        return self.verified / self.windows if self.windows else float("nan")


def _stall_seconds(run: DeviceRun) -> float:
    faults = run.link.get("faults")
    if not isinstance(faults, dict):
        return 0.0
    return sum(float(c.get("stall_ms", 0)) for c in faults.values() if isinstance(c, dict)) / 1e3


def run_link_bench(fx: FixtureSet, models: ModelDescriptor, board: str, variant: str = "w8a16",
                   limit: int | None = None, kinds: tuple[str, ...] | None = None,
                   rates: tuple[float, ...] | None = None, seed: int = 1, unit: str = "frame",
                   proxy: bool = False, part_bytes: int | None = None, stall_s: float | None = None,
                   log: Callable[[str], None] = print) -> list[LinkBenchRow]:
    """Run the clean baseline, then every (kind, rate); kinds default to each kind and ``all``."""
    default_plan = kinds is None and rates is None
    kinds = kinds or (*FAULT_KINDS, "all")
    rates = rates or RATES[unit]
    for kind in kinds:  # every spec is checked before the first emulator starts
        LinkFaults.parse(f"{kind}:0.5", unit=unit, stall_s=stall_s)
    x = fx.calibrated_x()
    n = len(x) if limit is None else min(limit, len(x))
    ws = fx.windows
    ref = load_reference(models, variant, x[:n], list(zip(ws.bout[:n].tolist(), ws.start[:n].tolist(), strict=True)))
    build_firmware(f"{board}-qemu", variant)  # before the clock starts: every run then reuses the image
    rows: list[LinkBenchRow] = []
    with tempfile.TemporaryDirectory(prefix="hil-bench-link-") as tmp:
        def one(faults: LinkFaults | None, tag: str) -> tuple[DeviceRun, float]:
            if faults is None and proxy:  # the clean run goes through the same proxy, injecting nothing
                faults = LinkFaults.parse("flip:0", unit=unit)
            t0 = time.monotonic()
            run = run_device(make_target("qemu", board, variant), fx, models, Path(tmp) / f"{tag}.jsonl",
                             limit=n, log=lambda m: None, reference=ref, link_faults=faults, depth=1,
                             link_proxy=proxy, part_bytes=part_bytes)
            return run, time.monotonic() - t0

        def clean_run(i: int) -> float:
            run, secs = one(None, f"clean-{i}")
            log(f"clean {i}: {run.n_verified}/{n} verified in {secs:.1f} s")
            if run.n_verified != n or run.n_mismatches:
                raise RuntimeError(f"bench link: the clean run {i} verified {run.n_verified}/{n} windows "
                                   f"({run.n_mismatches} mismatched): the baseline itself is broken")
            if i == 0:
                rows.append(LinkBenchRow("none", 0.0, n, run.n_verified, len(run.failures), run.n_mismatches,
                                         run.aborted is not None, int(run.link["retries"]),  # type: ignore[call-overload]
                                         str(run.link.get("faults_injected") or "-"), secs, secs, 0.0, unit))
            return secs

        before = clean_run(0)
        plan = [(k, r) for k in kinds for r in rates
                if not (unit == "byte" and default_plan and (k, r) in BYTE_PLAN_SKIPS)]
        for i, (kind, rate) in enumerate(plan, 1):
            faults = LinkFaults.parse(f"{kind}:{rate}", seed=seed, unit=unit, stall_s=stall_s)
            run, secs = one(faults, f"{kind}-{rate}")
            after = clean_run(i)
            row = LinkBenchRow(kind, rate, n, run.n_verified, len(run.failures), run.n_mismatches,
                               run.aborted is not None, int(run.link["retries"]),  # type: ignore[call-overload]
                               str(run.link.get("faults_injected", "")), secs, (before + after) / 2,
                               _stall_seconds(run), unit)
            rows.append(row)
            log(format_row(row))
            before = after
    return rows


def format_row(r: LinkBenchRow) -> str:
    return (f"{r.fault:<8}{r.rate * 100:>6.1f}%{r.verified:>6}/{r.windows:<5}{r.verified_share * 100:>7.1f}%"
            f"{r.failed:>7}  silently wrong {r.silently_wrong:<3} aborted {'yes' if r.aborted else 'no ':<4}"
            f"{r.retries:>8}{r.seconds:>9.1f} s{r.stall_seconds:>8.1f} s{r.ratio:>7.2f}x{r.ratio_net:>7.2f}x")


def format_link_bench(rows: list[LinkBenchRow], board: str, variant: str, proxy: bool = False,
                      part_bytes: int | None = None) -> str:
    unit = rows[0].unit if rows else "frame"
    head = (f"{'fault':<8}{'rate':>7}{'verified':>12}{'share':>8}{'failed':>7}  {'':<18}{'':<12}{'retries':>8}"
            f"{'time':>11}{'stalls':>10}{'x clean':>8}{'net':>8}")
    where = "a TCP proxy process on the socket path" if proxy else "the harness process (pyserial wrapper)"
    parts = "" if part_bytes is None else (f"; windows in parts of {part_bytes} bytes" if part_bytes
                                           else "; whole windows (one Infer frame each)")
    lines = [f"hil bench link: qemu {board}/{variant}; faults drawn per {unit}, both directions, seeded, injected in "
             f"{where}{parts}; time is host wall time (noisy: compare as ratios within this run); net = (time - "
             "injected stall time) / clean time; clean time = mean of the clean runs before and after the row",
             head, "-" * len(head)]
    lines += [format_row(r) for r in rows]
    return "\n".join(lines)


def rows_as_json(rows: list[LinkBenchRow]) -> list[dict[str, object]]:
    return [{**asdict(r), "ratio": r.ratio, "ratio_net": r.ratio_net} for r in rows]
