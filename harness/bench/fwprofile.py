"""Where an inference's instructions go, per function, from QEMU's own execution trace.

QEMU runs the image with ``-d in_asm,exec,nochain,int``: every translated block is logged once
with its instructions (``IN: symbol`` and one line per instruction), every execution of a block
with its start address and symbol, and every exception entry and return. Summing instructions per
symbol over the executions gives an exact per-function count, up to the rare block that QEMU
rewinds for an I/O access or stops before it starts (counted whole here; :func:`infer_cycles`,
which reads the same trace through the cycle model of :mod:`harness.bench.cycles`, counts them
exactly). The log is read from a FIFO as QEMU writes it, so nothing large lands on disk.

Two sessions are traced: hello only, and hello plus one Infer; their difference is the cost of
one Infer exchange, by function. ``hil bench fw --breakdown`` groups it into kernels.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import numpy as np

from harness.bench.cycles import CoreTiming, TraceCycles, parse_trace_cycles
from harness.device.client import DeviceClient, open_transport
from harness.device.targets.base import die_with_parent
from harness.device.targets.qemu import free_port, qemu_command

__all__ = ["GROUPS", "group_counts", "group_of", "infer_cycles", "infer_profile", "parse_trace"]

_T = TypeVar("_T")

_TRACE = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")
_INSN = re.compile(r"^0x([0-9a-f]+):\s")

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("matrix kernels", ("nn_fully_connected_", "nn_fc_")),
    ("GRU elementwise", ("nn_gru_", "nn_sigmoid_", "nn_tanh_", "nn_sat16", "nn_requant")),
    ("input layer", ("nn_input_layer_",)),
    ("model glue, head activations, argmax",
     ("nn_model_infer_", "nn_model_head_", "nn_relu_", "nn_argmax_", "model_infer")),
    ("soft-float and libm", ("__aeabi_", "__", "expf", "tanhf", "expm1f", "__ieee754")),
    ("protocol, UART and main loop", ("",)),
)
"""Function-name prefixes per group, first match wins (the last group takes the rest)."""


def parse_trace(lines: object) -> Counter[str]:
    """Instructions executed per symbol, from QEMU ``in_asm,exec,nochain`` log lines."""
    size: dict[int, int] = {}
    sym_of: dict[int, str] = {}
    counts: Counter[str] = Counter()
    block_pc: int | None = None
    block_sym = ""
    n = 0
    for line in lines:  # type: ignore[attr-defined]
        if line.startswith("Trace"):
            m = _TRACE.match(line)
            if m:
                pc = int(m.group(1), 16)
                sym = line.rsplit("]", 1)[1].strip() or sym_of.get(pc, "?")
                counts[sym] += size.get(pc, 1)
            continue
        if line.startswith("IN:"):
            if block_pc is not None:
                size[block_pc], sym_of[block_pc] = n, block_sym
            block_pc, block_sym, n = None, line[3:].strip(), 0
            continue
        m = _INSN.match(line)
        if m:
            if block_pc is None:
                block_pc = int(m.group(1), 16)
            n += 1
        elif not line.strip() and block_pc is not None:
            size[block_pc], sym_of[block_pc] = n, block_sym
            block_pc = None
    return counts


def _session(board: str, elf: Path, windows: Iterable[np.ndarray], parse: Callable[[Iterable[str]], _T]) -> _T:
    with tempfile.TemporaryDirectory(prefix="hil-trace-") as tmp:
        fifo = Path(tmp) / "trace"
        os.mkfifo(fifo)
        port = free_port()
        cmd = [*qemu_command(board, elf, port), "-d", "in_asm,exec,nochain,int", "-D", str(fifo)]
        result: list[_T] = []
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)

        def reader() -> None:
            with fifo.open(errors="replace") as fh:
                result.append(parse(fh))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        try:
            c = DeviceClient(open_transport(f"socket://127.0.0.1:{port}"), f"trace:{board}", latency_budget_s=120.0)
            c.hello()
            for i, w in enumerate(windows):
                c.infer(i + 1, w)
            c.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            th.join(timeout=120)
        if not result:
            raise RuntimeError(f"QEMU trace of {elf} could not be read")
        return result[0]


def infer_profile(board: str, elf: Path, window: np.ndarray) -> Counter[str]:
    """Instructions per function of one Infer exchange (request in, inference, Result out)."""
    with_infer = _session(board, elf, [window], parse_trace)
    hello_only = _session(board, elf, [], parse_trace)
    delta = Counter({k: v - hello_only.get(k, 0) for k, v in with_infer.items()})
    return Counter({k: v for k, v in delta.items() if v > 0})


def infer_cycles(board: str, elf: Path, windows: np.ndarray, core: CoreTiming) -> TraceCycles:
    """Instructions and modelled cycles per function of ``len(windows)`` Infer exchanges (a session
    with the Infers minus one with only the Hello), by :mod:`harness.bench.cycles`."""
    def parse(lines: Iterable[str]) -> TraceCycles:
        return parse_trace_cycles(lines, core)
    with_infer = _session(board, elf, list(windows), parse)
    hello_only = _session(board, elf, [], parse)
    return with_infer.minus(hello_only)


def group_of(sym: str) -> str:
    """The GROUPS entry a function belongs to."""
    for g, prefixes in GROUPS:
        if any(sym.startswith(p) for p in prefixes):
            return g
    return GROUPS[-1][0]


def group_counts(counts: Counter[str]) -> dict[str, int]:
    """Per-function counts summed into GROUPS."""
    out = {g: 0 for g, _ in GROUPS}
    for sym, n in counts.items():
        out[group_of(sym)] += n
    return out
