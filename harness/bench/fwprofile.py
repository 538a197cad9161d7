"""Where an inference's instructions go, per function, from QEMU's own execution trace.

QEMU runs the image with ``-d in_asm,exec,nochain``: every translated block is logged once with its
instructions (``IN: symbol`` and one line per instruction) and every execution of a block with its
start address and symbol. Summing instructions per symbol over the executions gives an exact
per-function count, up to the rare block cut short by an interrupt (counted whole). The log is
read from a FIFO as QEMU writes it, so nothing large lands on disk.

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
from pathlib import Path

import numpy as np

from harness.device.client import DeviceClient, open_transport
from harness.device.targets.base import die_with_parent
from harness.device.targets.qemu import free_port, qemu_command

__all__ = ["GROUPS", "group_counts", "infer_profile", "parse_trace"]

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


def _session(board: str, elf: Path, window: np.ndarray | None) -> Counter[str]:
    with tempfile.TemporaryDirectory(prefix="hil-trace-") as tmp:
        fifo = Path(tmp) / "trace"
        os.mkfifo(fifo)
        port = free_port()
        cmd = [*qemu_command(board, elf, port), "-d", "in_asm,exec,nochain", "-D", str(fifo)]
        result: list[Counter[str]] = []
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)

        def reader() -> None:
            with fifo.open(errors="replace") as fh:
                result.append(parse_trace(fh))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        try:
            c = DeviceClient(open_transport(f"socket://127.0.0.1:{port}"), f"trace:{board}", latency_budget_s=120.0)
            c.hello()
            if window is not None:
                c.infer(1, window)
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
    with_infer = _session(board, elf, window)
    hello_only = _session(board, elf, None)
    delta = Counter({k: v - hello_only.get(k, 0) for k, v in with_infer.items()})
    return Counter({k: v for k, v in delta.items() if v > 0})


def group_counts(counts: Counter[str]) -> dict[str, int]:
    """Per-function counts summed into GROUPS."""
    out = {g: 0 for g, _ in GROUPS}
    for sym, n in counts.items():
        for g, prefixes in GROUPS:
            if any(sym.startswith(p) for p in prefixes):
                out[g] += n
                break
    return out
