"""``hil bench link``: how the verdict survives a noisy link.

For each fault kind (and all kinds at once) x rate, one device run with seeded faults injected
between the harness and the emulated device (harness.device.linkfaults), compared with a clean run of the
same case: windows verified, failed explicitly, silently wrong (verified but different from the
reference: must be 0), whether the stream was aborted, resends, and wall time relative to the
clean run (host time, noisy: read it as a ratio within one run of the bench).
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

__all__ = ["LinkBenchRow", "format_link_bench", "run_link_bench"]

RATES = (0.001, 0.01, 0.05)


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

    @property
    def ratio(self) -> float:
        return self.seconds / self.clean_seconds if self.clean_seconds else float("nan")


def _silently_wrong(run: DeviceRun) -> int:
    """Mismatches: windows whose reply passed every link check (intact) but differs from the
    reference (bit-exact for integer variants, class and 1e-3 for float)."""
    return run.n_mismatches


def run_link_bench(fx: FixtureSet, models: ModelDescriptor, board: str, variant: str = "w8a16",
                   limit: int | None = None, kinds: tuple[str, ...] | None = None,
                   rates: tuple[float, ...] = RATES, seed: int = 1,
                   log: Callable[[str], None] = print) -> list[LinkBenchRow]:
    """Run the clean baseline, then every (kind, rate); kinds default to each kind and ``all``."""
    kinds = kinds or (*FAULT_KINDS, "all")
    x = fx.calibrated_x()
    n = len(x) if limit is None else min(limit, len(x))
    ws = fx.windows
    ref = load_reference(models, variant, x[:n], list(zip(ws.bout[:n].tolist(), ws.start[:n].tolist(), strict=True)))
    build_firmware(f"{board}-qemu", variant)  # before the clock starts: every run then reuses the image
    rows: list[LinkBenchRow] = []
    with tempfile.TemporaryDirectory(prefix="hil-bench-link-") as tmp:
        def one(faults: LinkFaults | None, tag: str) -> tuple[DeviceRun, float]:
            t0 = time.monotonic()
            run = run_device(make_target("qemu", board, variant), fx, models, Path(tmp) / f"{tag}.jsonl",
                             limit=n, log=lambda m: None, reference=ref, link_faults=faults, depth=1)
            return run, time.monotonic() - t0

        clean, clean_s = one(None, "clean")
        log(f"clean: {clean.n_verified}/{n} verified in {clean_s:.1f} s")
        rows.append(LinkBenchRow("none", 0.0, n, clean.n_verified, len(clean.failures), _silently_wrong(clean),
                                 clean.aborted is not None, int(clean.link["retries"]),  # type: ignore[call-overload]
                                 "-", clean_s, clean_s))
        for kind in kinds:
            for rate in rates:
                faults = LinkFaults.parse(f"{kind}:{rate}", seed=seed)
                run, secs = one(faults, f"{kind}-{rate}")
                row = LinkBenchRow(kind, rate, n, run.n_verified, len(run.failures), _silently_wrong(run),
                                   run.aborted is not None, int(run.link["retries"]),  # type: ignore[call-overload]
                                   str(run.link.get("faults_injected", "")), secs, clean_s)
                rows.append(row)
                log(format_row(row))
    return rows


def format_row(r: LinkBenchRow) -> str:
    return (f"{r.fault:<8}{r.rate * 100:>6.1f}%{r.verified:>6}/{r.windows:<5}{r.failed:>7}  silently wrong "
            f"{r.silently_wrong:<3} aborted {'yes' if r.aborted else 'no ':<4}{r.retries:>8}{r.seconds:>9.1f} s"
            f"{r.ratio:>7.2f}x")


def format_link_bench(rows: list[LinkBenchRow], board: str, variant: str) -> str:
    head = (f"{'fault':<8}{'rate':>7}{'verified':>12}{'failed':>7}  {'':<18}{'':<12}{'retries':>8}{'time':>11}"
            f"{'x clean':>8}")
    lines = [f"hil bench link: qemu {board}/{variant}; faults drawn per frame, both directions, seeded; time is host "
             "wall time (noisy: compare as ratios within this run)", head, "-" * len(head)]
    lines += [format_row(r) for r in rows]
    return "\n".join(lines)


def rows_as_json(rows: list[LinkBenchRow]) -> list[dict[str, object]]:
    return [{**asdict(r), "ratio": r.ratio} for r in rows]
