"""``hil bench fw``: flash, RAM and device time of every image on QEMU, for the default model and
for a paper-scale workload (256-sample window, H=64: the seed paper's GRU size).

Device time is counted in emulated instructions (QEMU ``-icount``, SysTick read out and divided
by the board table's ticks per instruction): deterministic, the same on every run for the same
image and input. Beside it, an estimate of core cycles: the cycle model of
:mod:`harness.bench.cycles` (the TRM's instruction timings, zero wait states, pipeline refill
P = 2, range P = 1..3) over QEMU's execution trace of the same windows' Infer exchanges; the
inference's functions (everything outside the protocol, UART and main-loop group) give cycles per
instruction, and the estimate is the instruction count times that. The "us @clk" column is
instructions / board clock (1 instruction counted as 1 cycle, as the run report's latency and
energy checks do); "est. us" is the cycle estimate / board clock. The paper-scale model has
trained-architecture shapes but seeded random weights: it measures cost, not accuracy.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.bench.cycles import P_DEFAULT, P_RANGE, core_timing
from harness.config.boards import BOARDS
from harness.data.fixtures import FixtureSet
from harness.device.client import DeviceClient, open_transport
from harness.device.targets import QemuTarget
from harness.device.targets.base import FW_DIR, firmware_image
from harness.quant.calibrate import VARIANTS, quantize_student
from harness.quant.export import render_float, render_quant
from harness.quant.intref import model_forward_q
from harness.quant.model_io import save_quant
from harness.training.models import GruStudent
from harness.training.train import save_model
from harness.verdict.evaluate import image_size

__all__ = ["BenchRow", "build_paper_images", "paper_windows", "run_fw_bench"]

PAPER_WINDOW, PAPER_HIDDEN = 256, 64
WORKLOAD_WINDOWS = 4
TRACE_LIMIT = 150_000_000
"""Instructions above which only the first window of a workload is traced for the cycle estimate
(QEMU's execution trace runs at a few million instructions a second)."""


def paper_windows(fx: FixtureSet, n: int) -> np.ndarray:
    """256-sample windows made of consecutive fixture windows of one cow (real signal, for a
    realistic calibration and realistic data-dependent branches)."""
    x = fx.calibrated_x()
    cow = fx.windows.cows[0]
    seq = x[fx.windows.cow == cow].reshape(-1, 3)
    k = PAPER_WINDOW
    return np.stack([seq[i * k : (i + 1) * k] for i in range(n)]).astype(np.int16)


def build_paper_images(fx: FixtureSet, boards: list[str], log: Callable[[str], None]) -> Path:
    """Seeded H=64, 256-sample student, quantized (calibrated on fixture signal) and exported to
    device_fw/build/paper/; images built as build/fw/<board>-qemu/paper_<variant>/fw.elf."""
    out = FW_DIR / "build" / "paper"
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    classes = [str(v) for _, v in sorted(fx.meta["label_map"].items(), key=lambda kv: int(kv[0]))]  # type: ignore[attr-defined]
    model = GruStudent(PAPER_WINDOW, PAPER_HIDDEN, len(classes))
    calib = paper_windows(fx, 24)
    model.norm.fit(torch.from_numpy(calib.astype(np.float32)))
    save_model(model, out / "student", {"note": "seeded random weights: a cost benchmark, not a classifier"})
    (out / "model_float.c").write_text(render_float(model, out / "student.pt", classes))
    for v in VARIANTS:
        m = quantize_student(model, calib, v)
        save_quant(m, out / f"student_{v}")
        (out / f"model_{v}.c").write_text(render_quant(m, out / f"student_{v}.npz", classes))
    targets = [f"build/fw/{b}-qemu/paper_{v}/fw.elf" for b in boards for v in ("float32", *VARIANTS)]
    r = subprocess.run(["make", "-s", "-j2", "-C", str(FW_DIR), *targets], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"building the paper-scale images failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    log(f"paper-scale images: {len(targets)} built from {out}")
    return out


@dataclass(frozen=True)
class BenchRow:
    board: str
    variant: str
    workload: str
    flash: int
    ram: int
    stack: int
    instructions: tuple[int, ...]
    macs: int
    cpi: tuple[float, ...] = ()
    """Modelled cycles per instruction of the inference's functions at P = 1, 2, 3 (empty: no
    cycle model for the core, or not traced)."""
    traced_windows: int = 0

    @property
    def mean_instr(self) -> float:
        return float(np.mean(self.instructions))

    def cycles(self, p: int = P_DEFAULT) -> float | None:
        """Estimated core cycles per inference (mean over the windows), or None."""
        return self.mean_instr * self.cpi[p - 1] if self.cpi else None


def _measure(board: str, variant: str, elf: Path, windows: np.ndarray) -> tuple[tuple[int, ...], int, np.ndarray]:
    tpi = BOARDS[board].qemu_machine().ticks_per_instruction
    with QemuTarget(board, variant, elf=elf) as t:
        c = DeviceClient(open_transport(t.start()), t.description, latency_budget_s=30.0)
        try:
            c.hello()
            results = [c.infer(i, w) for i, w in enumerate(windows)]
            stack = c.hello().stack_used
        finally:
            c.close()
    return tuple(round(r.cycles / tpi) for r in results), stack, np.array([r.scores for r in results])


def trace_cpi(board: str, elf: Path, windows: np.ndarray, log: Callable[[str], None] = print) -> tuple[float, ...]:
    """Modelled cycles per instruction (P = 1, 2, 3) of the inference's functions over the Infer
    exchanges of ``windows``, from QEMU's execution trace (empty: no model for the board's core)."""
    from harness.bench.fwprofile import GROUPS, group_of, infer_cycles

    core = core_timing(BOARDS[board].core)
    if core is None:
        return ()
    t = infer_cycles(board, elf, windows, core)
    if t.unclassified:
        log(f"{board}/{elf}: mnemonics the cycle model does not know (charged 1 cycle): {dict(t.unclassified)}")
    syms = [s for s in t.instructions if group_of(s) != GROUPS[-1][0]]
    n = t.total_instructions(syms)
    if n == 0:
        raise RuntimeError(f"{board}: the trace of {elf} shows no inference instructions")
    return tuple(t.cycles(p, syms) / n for p in range(P_RANGE[0], P_RANGE[1] + 1))


def run_fw_bench(fx: FixtureSet, models_dir: Path, boards: list[str], repeat: int,
                 log: Callable[[str], None] = print, cycles: bool = True) -> list[BenchRow]:
    from harness.quant.model_io import load_quant
    from harness.training.train import load_model

    paper_dir = build_paper_images(fx, boards, log)
    x = fx.calibrated_x()
    idx = np.linspace(0, len(x) - 1, WORKLOAD_WINDOWS).round().astype(int)
    default = load_model(models_dir / "student")
    assert isinstance(default, GruStudent)
    paper_model = GruStudent(PAPER_WINDOW, PAPER_HIDDEN, default.n_classes)
    workloads = {"default": (x[idx], default.macs(), ""), "paper": (paper_windows(fx, WORKLOAD_WINDOWS),
                                                                    paper_model.macs(), "paper_")}
    default_images = [str(firmware_image(f"{b}-qemu", v).relative_to(FW_DIR))
                      for b in boards for v in ("float32", *VARIANTS)]
    subprocess.run(["make", "-s", "-j2", "-C", str(FW_DIR), *default_images], check=True)
    runs: list[list[BenchRow]] = []
    for rep in range(repeat):
        rows = []
        for board in boards:
            for wl, (wins, macs, prefix) in workloads.items():
                for v in ("float32", *VARIANTS):
                    elf = firmware_image(f"{board}-qemu", f"{prefix}{v}")
                    instr, stack, scores = _measure(board, v, elf, wins)
                    if v != "float32":  # a benchmark image must still compute the right thing
                        m = load_quant((models_dir if wl == "default" else paper_dir) / f"student_{v}")
                        logits, _ = model_forward_q(m, wins)
                        if not np.array_equal(scores, logits):
                            raise RuntimeError(f"{board}/{v}/{wl}: device scores differ from the integer reference")
                    sizes = image_size(elf) or (0, 0)
                    cpi: tuple[float, ...] = ()
                    n_tr = 0
                    if cycles and rep == 0:
                        n_tr = len(wins) if sum(instr) <= TRACE_LIMIT else 1
                        log(f"tracing {board}/{wl}/{v} ({n_tr} window{'s' if n_tr > 1 else ''}) for the cycle model")
                        cpi = trace_cpi(board, elf, wins[:n_tr], log)
                    rows.append(BenchRow(board, v, wl, sizes[0], sizes[1], stack, instr, macs, cpi, n_tr))
        runs.append(rows)
        log(f"run {rep + 1}/{repeat} done")
    for rows in runs[1:]:
        for a, b in zip(runs[0], rows, strict=True):  # (only the first run is traced)
            if a.instructions != b.instructions:
                raise RuntimeError(f"{a.board}/{a.variant}/{a.workload}: instruction counts differ between runs: "
                                   f"{a.instructions} vs {b.instructions}")
    return runs[0]


def format_bench(rows: list[BenchRow], repeat: int) -> str:
    head = (f"{'board':<7}{'workload':<9}{'variant':<8}{'flash B':>9}{'/budget':>9}{'RAM B':>8}{'/budget':>8}"
            f"{'instr/inference':>16}{'us @clk':>12}{'instr/MAC':>10}{'speedup':>9}"
            f"{'est. cycles':>14}{'est. us':>12}{'cyc/MAC':>9}{'P=1..3':>15}")
    lines = [head, "-" * len(head)]
    for r in rows:
        b = BOARDS[r.board]
        fl = next(x for x in rows if x.board == r.board and x.workload == r.workload and x.variant == "float32")
        us = r.mean_instr / b.clock_hz * 1e6
        cyc = r.cycles()
        if cyc is None:
            est = f"{'-':>14}{'-':>12}{'-':>9}{'-':>15}"
        else:
            lo, hi = r.cycles(P_RANGE[0]) or 0.0, r.cycles(P_RANGE[1]) or 0.0
            mark = "*" if r.traced_windows < len(r.instructions) else " "
            est = (f"{cyc:>13,.0f}{mark}{cyc / b.clock_hz * 1e6:>12,.0f}{cyc / r.macs:>9.2f}"
                   f"{f'{lo / r.macs:.2f}-{hi / r.macs:.2f}':>15}")
        lines.append(f"{r.board:<7}{r.workload:<9}{r.variant:<8}{r.flash:>9}{b.flash_bytes:>9}{r.ram + r.stack:>8}"
                     f"{b.ram_bytes:>8}{r.mean_instr:>16,.0f}{us:>12,.0f}{r.mean_instr / r.macs:>10.2f}"
                     f"{fl.mean_instr / r.mean_instr:>8.2f}x{est}")
    lines += [
        f"workloads: default = the trained student (H=32, 50-sample window, {rows[0].macs:,} MACs); "
        f"paper = H=64, 256-sample window ({next(r.macs for r in rows if r.workload == 'paper'):,} MACs), "
        "seeded weights",
        "instructions: QEMU -icount (collar shift 8, ear tag shift 7), SysTick / ticks-per-instruction, mean over "
        f"{WORKLOAD_WINDOWS} windows; identical on every run"
        + (f" (checked: {repeat} runs gave the same counts)" if repeat > 1 else ""),
        "us @clk: instructions / board clock, counting 1 instruction as 1 cycle (the time base of hil run's latency "
        "and energy checks); real Cortex-M cores take more cycles than instructions",
        "est. cycles: an estimate, not a measurement: harness.bench.cycles, the Cortex-M3/M4 TRM instruction timings "
        f"(pipeline refill P = {P_DEFAULT}; cyc/MAC for P = 1..3 beside it; zero wait states, no bus contention; "
        "UMULL/SMULL/UMLAL/SMLAL on the M3 and divides at their worst case) over QEMU's execution trace of the same "
        "windows' Infer exchanges: the inference's functions' cycles per instruction x the instruction count; "
        "est. us = est. cycles / board clock"
        + ("; * = only the first window traced (over "
           f"{TRACE_LIMIT // 1_000_000} M instructions for all)" if any(
               r.cpi and r.traced_windows < len(r.instructions) for r in rows) else ""),
        "RAM: static (.data+.bss+.noinit) + stack high-water mark measured on the device",
        "reference: the seed paper's float MLP took 85 ms per window on the collar (CC2650, 48 MHz)",
    ]
    return "\n".join(lines)


def format_breakdown(fx: FixtureSet, boards: list[str], variants: tuple[str, ...] = ("float32", "w8a16"),
                     log: Callable[[str], None] = print) -> str:
    """Instructions of one Infer exchange (fixture window 0) per group of functions, from QEMU's
    execution trace (harness.bench.fwprofile), per board and variant of the default workload; then
    the cycle model's estimate per group for the same exchange (harness.bench.cycles)."""
    from harness.bench.fwprofile import GROUPS, group_counts, group_of, infer_cycles, infer_profile

    x = fx.calibrated_x()[0]
    names = [g for g, _ in GROUPS]
    short = ["matrix", "GRU elem.", "input", "glue/head", "softfloat", "protocol"]
    head = f"{'board':<7}{'variant':<9}{'total':>11}" + "".join(f"{s:>12}" for s in short)
    lines = [head, "-" * len(head)]
    cyc_lines = [head.replace("  total", "  est.cyc"), "-" * len(head)]
    for board in boards:
        core = core_timing(BOARDS[board].core)
        for v in variants:
            elf = firmware_image(f"{board}-qemu", v)
            log(f"tracing {board}/{v} ...")
            g = group_counts(infer_profile(board, elf, x))
            total = sum(g.values())
            lines.append(f"{board:<7}{v:<9}{total:>11,}" + "".join(f"{g[n]:>12,}" for n in names))
            if core is None:
                continue
            t = infer_cycles(board, elf, x[None], core)
            gc = dict.fromkeys(names, 0)
            for sym in t.fixed.keys() | t.refills.keys():
                gc[group_of(sym)] += t.cycles(P_DEFAULT, [sym])
            cyc_lines.append(f"{board:<7}{v:<9}{sum(gc.values()):>11,}" + "".join(f"{gc[n]:>12,}" for n in names))
    lines += [
        "one Infer exchange (fixture window 0): instructions per group of functions, from QEMU's execution trace "
        "(-d in_asm,exec,nochain,int), a session with the Infer minus one with only the Hello",
        "groups: " + "; ".join(f"{s} = {n}" for s, n in zip(short, names, strict=True)),
        "matrix includes the head's two small layers (1,152 of the 317,952 MACs); protocol = receiving, checking "
        "and answering the Infer frame (COBS, CRC-16, CRC-32, UART, main loop)",
    ]
    if len(cyc_lines) > 2:
        lines += ["", *cyc_lines,
                  "the same exchange in estimated cycles (harness.bench.cycles, TRM timings, "
                  f"P = {P_DEFAULT}, zero wait states); protocol includes the exception entries and returns of the "
                  "UART interrupts"]
    return "\n".join(lines)
