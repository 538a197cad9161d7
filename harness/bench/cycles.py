"""A per-core cycle model applied to QEMU's execution trace: an estimate of core cycles, not a
measurement.

QEMU counts instructions, not cycles (``-icount`` gives every instruction the same virtual time).
This module reads the same trace as :mod:`harness.bench.fwprofile` (``-d in_asm,exec,nochain,int``:
every translated block once with its disassembly, every execution of a block with its start
address, every exception entry and return) and charges every executed instruction its cycles from
the processor's Technical Reference Manual instruction timing table (Cortex-M3 TRM DDI 0337I,
section 3.3: table 3-1 and "Load/store timings"; the same text is in TI SWCU185G, the CC26x0 TRM;
Cortex-M4 TRM DDI 0439, table 3-1, and its FPU chapter for the FPU timings):

- data processing, moves, shifts, compares, saturation, bit-field, DSP add/sub, IT: 1;
- single loads (LDR, LDRB, LDRH, LDRSB, LDRSH, LDREX) 2, and 1 when they directly follow a single
  load whose destination is not part of their address ("LDR [any] are pipelined when possible");
  a single store with an immediate (or no) offset 1 ("STR Rx,[Ry,#imm] is always one cycle"), with
  a register offset 2, or 1 directly after a single load; a load or store whose address register
  the directly preceding data-processing instruction wrote: +1 ("there is no forwarding path");
- LDRD/STRD and LDM/STM/PUSH/POP: 1 + N (N registers; never pipelined); with PC in the list
  1 + N + P; LDR PC: 2 + P; TBB/TBH: 3 + P; MOV/ADD to PC, B, BL, BX, BLX: 1 + P;
- a conditional branch (B<cc>, CBZ, CBNZ, or any PC-writing instruction inside an IT block) at the
  end of a block: 1 + P when the next executed block does not start at the fall-through address
  (taken), 1 otherwise; a branch just before an exception entry counts as not taken;
- Cortex-M3: MUL 1, MLA/MLS 2, UMULL/SMULL 5 and UMLAL/SMLAL 7 (the TRM gives 3-5 and 4-7 with early
  termination on small operands: the model takes the worst case), UDIV/SDIV 12 (2-12, worst case);
- Cortex-M4: every multiply and multiply-accumulate 1 (MUL, MLA, MLS, UMULL, SMULL, UMLAL,
  SMLAL, UMAAL, SMLAD, SMUAD, SMLAxy, SMULxy, SMMLA, ...), UDIV/SDIV 12 (2-12, worst case); FPU:
  VADD/VSUB/VMUL/VABS/VNEG/VCMP/VCVT/VMOV/VMRS/VMSR 1, VMLA/VMLS/VNMLA/VNMLS/VFMA/VFMS/VFNMA/VFNMS 3,
  VDIV/VSQRT 14, VLDR/VSTR 2, VLDM/VSTM/VPUSH/VPOP 1 + N (N words), VMOV of two core registers 2;
- DSB/DMB 1 (B = 0), ISB 1 + P, WFI/WFE 1 (the wait is not counted);
- exception entry 12 (the TRM's interrupt latency), tail-chaining 6; exception return 10 beyond
  the returning instruction (an assumption: the unstacking of 8 words plus the refill);
- a conditional instruction inside an IT block is charged as if it executed (the trace does not
  say whether its condition passed; a failed one costs 1 on silicon).

P, the pipeline refill, is 1 to 3 cycles by the TRM ("depending on the alignment and width of the
target instruction, and whether the processor manages to speculate the address early"). The model
counts refills separately: a figure is ``fixed + P * refills``; the reported estimate takes P = 2
and the range P = 1..3 is given beside it. Memory: zero wait states and no bus contention (the
TRM's tables are for zero-wait-state memory; the emulated machines lm3s6965evb and mps2-an386 run
from zero-wait-state memory; whether the real parts' flash adds wait states or cache misses is not
modelled). Unknown mnemonics are charged 1 and counted (``unclassified``).

The trace is exact about which instructions ran; the exceptions: a block that QEMU rewinds for an
I/O access (``cpu_io_recompile``) is charged only up to the rewound instruction, and a block that
was entered but stopped before its first instruction is not charged.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "CORES",
    "P_DEFAULT",
    "P_RANGE",
    "CoreTiming",
    "Insn",
    "TraceCycles",
    "block_cycles",
    "core_timing",
    "insn_cost",
    "parse_insn",
    "parse_trace_cycles",
    "split_mnemonic",
]

P_DEFAULT = 2
"""The pipeline refill the reported estimate takes (the TRM's range is 1 to 3)."""
P_RANGE = (1, 3)

EXC_ENTRY, EXC_TAILCHAIN, EXC_RETURN = 12, 6, 10


@dataclass(frozen=True)
class CoreTiming:
    """The cycle table of one core: the multiplies and divides that differ between M3 and M4."""

    name: str
    mul: int
    mla: int
    mull: int
    mlal: int
    div: int
    dsp: bool
    """DSP extension (SMLAD and friends, single-cycle on the Cortex-M4)."""
    fpu: bool


CORES: dict[str, CoreTiming] = {
    "cortex-m3": CoreTiming("cortex-m3", mul=1, mla=2, mull=5, mlal=7, div=12, dsp=False, fpu=False),
    "cortex-m4": CoreTiming("cortex-m4", mul=1, mla=1, mull=1, mlal=1, div=12, dsp=True, fpu=False),
    "cortex-m4f": CoreTiming("cortex-m4f", mul=1, mla=1, mull=1, mlal=1, div=12, dsp=True, fpu=True),
}


def core_timing(core: str) -> CoreTiming | None:
    """The cycle table for a board table's ``core`` (None: no model for that core)."""
    return CORES.get(core.lower())


_COND = "eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al"
_BRANCH_RE = re.compile(rf"^(b|bl|blx|bx)({_COND})?$")
_REST_RE = re.compile(rf"^s?({_COND})?$")
_ALU = {
    "add", "adc", "sub", "sbc", "rsb", "mov", "movw", "movt", "mvn", "and", "orr", "eor", "bic", "orn",
    "lsl", "lsr", "asr", "ror", "rrx", "adr", "addw", "subw", "clz", "rbit", "rev", "rev16", "revsh",
    "sxtb", "sxth", "uxtb", "uxth", "sxtab", "sxtah", "uxtab", "uxtah", "sxtb16", "uxtb16", "sxtab16",
    "uxtab16", "ubfx", "sbfx", "bfi", "bfc", "ssat", "usat", "ssat16", "usat16", "pkhbt", "pkhtb", "sel",
    "qadd", "qsub", "qdadd", "qdsub", "sadd16", "ssub16", "sadd8", "ssub8", "sasx", "ssax", "uadd16",
    "usub16", "uadd8", "usub8", "uasx", "usax", "qadd16", "qsub16", "qadd8", "qsub8", "qasx", "qsax",
    "uqadd16", "uqsub16", "uqadd8", "uqsub8", "uqasx", "uqsax", "shadd16", "shsub16", "shadd8", "shsub8",
    "shasx", "shsax", "uhadd16", "uhsub16", "uhadd8", "uhsub8", "uhasx", "uhsax", "usad8", "usada8",
}
_NODEST = {"cmp", "cmn", "tst", "teq", "nop", "cpsid", "cpsie", "msr", "sev", "yield", "clrex", "bkpt", "svc",
           "udf", "wfi", "wfe"}
_MUL = {"mul"}
_MLA = {"mla", "mls"}
_MULL = {"smull", "umull"}
_MLAL = {"smlal", "umlal", "umaal"}
_DSPMUL = {
    "smlad", "smladx", "smlsd", "smlsdx", "smuad", "smuadx", "smusd", "smusdx", "smlald", "smlaldx",
    "smlsld", "smlsldx", "smlabb", "smlabt", "smlatb", "smlatt", "smulbb", "smulbt", "smultb", "smultt",
    "smlawb", "smlawt", "smulwb", "smulwt", "smmul", "smmulr", "smmla", "smmlar", "smmls", "smmlsr",
    "smlalbb", "smlalbt", "smlaltb", "smlaltt",
}
_DIV = {"sdiv", "udiv"}
_LOAD1 = {"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrt", "ldrbt", "ldrht", "ldrsbt", "ldrsht", "ldrex",
          "ldrexb", "ldrexh", "strex", "strexb", "strexh"}
_STORE1 = {"str", "strb", "strh", "strt", "strbt", "strht"}
_LDM = {"ldm", "ldmia", "ldmfd", "ldmdb", "ldmea", "pop"}
_STM = {"stm", "stmia", "stmea", "stmdb", "stmfd", "push"}
_FP1 = {"vadd", "vsub", "vmul", "vnmul", "vabs", "vneg", "vcmp", "vcmpe", "vcvt", "vcvtr", "vcvta", "vcvtn",
        "vcvtp", "vcvtm", "vmrs", "vmsr", "vsel", "vmaxnm", "vminnm", "vrinta", "vrintn", "vrintp", "vrintm",
        "vrintx", "vrintz", "vrintr", "vcvtb", "vcvtt"}
_FP3 = {"vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"}
_FP14 = {"vdiv", "vsqrt"}
_FPLS = {"vldr", "vstr"}
_FPLSM = {"vldm", "vldmia", "vldmdb", "vstm", "vstmia", "vstmdb", "vpush", "vpop"}
_BASES = sorted(_ALU | _NODEST | _MUL | _MLA | _MULL | _MLAL | _DSPMUL | _DIV | _LOAD1 | _STORE1 | _LDM | _STM
                | _FP1 | _FP3 | _FP14 | _FPLS | _FPLSM
                | {"ldrd", "strd", "tbb", "tbh", "cbz", "cbnz", "dsb", "dmb", "isb", "vmov", "it"},
                key=len, reverse=True)
_ALIAS = {"sb": "r9", "sl": "r10", "fp": "r11", "ip": "r12", "r13": "sp", "r14": "lr", "r15": "pc"}


def split_mnemonic(mnemonic: str) -> tuple[str, str]:
    """``(base, condition)`` of a disassembled mnemonic: ``bne`` -> ``("b", "ne")``, ``ldrsh.w`` ->
    ``("ldrsh", "")``, ``rsblt.w`` -> ``("rsb", "lt")``, ``adds`` -> ``("add", "")``. FPU data-type
    suffixes (``.f32``) and width qualifiers (``.w``) are dropped; an unknown mnemonic is its own base."""
    m = mnemonic.lower().split(".", 1)[0]
    if m.startswith("it") and set(m[2:]) <= {"t", "e"}:
        return "it", ""
    b = _BRANCH_RE.match(m)
    if b:
        return b.group(1), b.group(2) or ""
    for base in _BASES:
        if m.startswith(base):
            r = _REST_RE.match(m[len(base):])
            if r:
                return base, r.group(1) or ""
    return m, ""


@dataclass(frozen=True)
class Insn:
    """One disassembled instruction of a translated block."""

    addr: int
    size: int
    mnemonic: str
    operands: str = ""
    base: str = field(init=False)
    cond: str = field(init=False)

    def __post_init__(self) -> None:
        base, cond = split_mnemonic(self.mnemonic)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "cond", cond)

    @property
    def fallthrough(self) -> int:
        return self.addr + self.size


_INSN_RE = re.compile(r"^0x([0-9a-f]+):\s+([0-9a-f]{4}(?: [0-9a-f]{4})?)\s\s+(\S+)\s*(.*?)\s*$")


def parse_insn(line: str) -> Insn | None:
    """An ``in_asm`` line (``0x000008a0:  e8f1 3402  ldrd     r3, r4, [r1], #8``) as an Insn."""
    m = _INSN_RE.match(line)
    if not m:
        return None
    return Insn(int(m.group(1), 16), 2 if len(m.group(2)) == 4 else 4, m.group(3), m.group(4))


def _reg(tok: str) -> str:
    t = tok.strip().lower().rstrip("!")
    return _ALIAS.get(t, t)


def _split_ops(ops: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in ops:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _reglist(ops: str) -> list[str]:
    """The registers of a ``{...}`` list, ranges expanded (``{r0-r3}``, ``{d8-d9}``)."""
    m = re.search(r"\{([^}]*)\}", ops)
    if not m:
        return []
    regs: list[str] = []
    for part in m.group(1).split(","):
        part = part.strip().lower()
        if "-" in part:
            a, b = part.split("-", 1)
            pre = a.rstrip("0123456789")
            regs += [f"{pre}{i}" for i in range(int(a[len(pre):]), int(b[len(pre):]) + 1)]
        elif part:
            regs.append(_reg(part))
    return regs


def _words(regs: list[str]) -> int:
    return sum(2 if r.startswith("d") else 1 for r in regs)


def _addr_regs(ops: str) -> set[str]:
    m = re.search(r"\[([^\]]*)\]", ops)
    if not m:
        return set()
    return {_reg(t) for t in m.group(1).split(",") if re.fullmatch(r"\s*[a-z]+\d*\s*", t)
            and not t.strip().startswith(("lsl", "lsr", "asr", "ror"))}


def _dests(ins: Insn) -> set[str]:
    ops = _split_ops(ins.operands)
    if not ops or ins.base in _NODEST or ins.base == "it":
        return set()
    if ins.base in _MULL or ins.base in _MLAL or ins.base in {"smlald", "smlaldx", "smlsld", "smlsldx",
                                                              "smlalbb", "smlalbt", "smlaltb", "smlaltt"}:
        return {_reg(o) for o in ops[:2]}
    return {_reg(ops[0])}


@dataclass(frozen=True)
class _Prev:
    kind: str  # "load1" (a single load), "alu" (data processing), "store", "plain"
    dests: frozenset[str]


_NONE = _Prev("plain", frozenset())


def insn_cost(ins: Insn, prev: _Prev, core: CoreTiming, taken: bool | None) -> tuple[int, int, _Prev]:
    """``(fixed cycles, pipeline refills, state for the next instruction)`` of one executed
    instruction. ``taken``: for a conditional branch, whether it was taken (None: not known, not
    taken assumed); ignored for other instructions."""
    b, ops = ins.base, ins.operands
    first = _reg(_split_ops(ops)[0]) if ops else ""
    plist = _reglist(ops)
    writes_pc = first == "pc" or "pc" in plist
    cond_taken = 1 if taken else 0
    if b in _LOAD1 or b in _STORE1 or b in {"ldrd", "strd"} or b in _LDM or b in _STM or b in _FPLS \
            or b in _FPLSM or b in {"tbb", "tbh"}:
        addr = {"sp"} if b in {"push", "pop", "vpush", "vpop"} else _addr_regs(ops)
        if b in _LDM or b in _STM:
            addr = {"sp"} if b in {"push", "pop"} else {_reg(_split_ops(ops)[0])}
        stall = 1 if prev.kind == "alu" and prev.dests & addr else 0
        if b in {"tbb", "tbh"}:
            return 3 + stall, 1, _NONE
        if b in _LDM or b in _STM:
            n = len(plist)
            if b in _LDM and "pc" in plist:
                return 1 + n + stall, (1 if not ins.cond else cond_taken), _NONE
            return 1 + n + stall, 0, _NONE
        if b in _FPLSM:
            return 1 + _words(plist) + stall, 0, _NONE
        if b in {"ldrd", "strd"}:
            return 3 + stall, 0, _NONE
        if b in _FPLS:
            return 2 + stall, 0, _NONE
        if b in _LOAD1 and b.startswith("ldr") and first == "pc":
            return 2 + stall, (1 if not ins.cond else cond_taken), _NONE
        pipelined = prev.kind == "load1" and not (prev.dests & addr)
        if b in _STORE1:
            reg_offset = len(addr) > 1  # [Rn, Rm]: base and offset register
            c = 1 if (pipelined or not reg_offset) else 2
            return c + stall, 0, _Prev("store", frozenset())
        c = 1 if pipelined else 2
        nxt = _Prev("load1", frozenset({first}) if b.startswith("ldr") else frozenset())
        return c + stall, 0, nxt
    if b in {"b", "bl", "bx", "blx", "cbz", "cbnz"}:
        conditional = b in {"cbz", "cbnz"} or bool(ins.cond)
        return 1, (cond_taken if conditional else 1), _NONE
    if b in _MUL | _MLA | _MULL | _MLAL | _DSPMUL | _DIV:
        c = (core.mul if b in _MUL else core.mla if b in _MLA else core.mull if b in _MULL
             else core.mlal if b in _MLAL else core.div if b in _DIV else 1)
        return c, 0, _Prev("alu", frozenset(_dests(ins)))
    if b in _FP3:
        return 3, 0, _NONE
    if b in _FP14:
        return 14, 0, _NONE
    if b == "vmov":
        n = len(_split_ops(ops))
        return (2 if n >= 3 else 1), 0, _NONE
    if b in _FP1:
        return 1, 0, _NONE
    if b == "isb":
        return 1, 1, _NONE
    if b in {"dsb", "dmb"}:
        return 1, 0, _NONE
    if writes_pc and b in _ALU:  # MOV PC / ADD PC
        return 1, (1 if not ins.cond else cond_taken), _NONE
    return 1, 0, _Prev("alu", frozenset(_dests(ins))) if (b in _ALU) else _NONE


def _branches(ins: Insn) -> bool:
    """Whether the instruction can change the PC (ends a block with a branch)."""
    b = ins.base
    if b in {"b", "bl", "bx", "blx", "cbz", "cbnz", "tbb", "tbh"}:
        return True
    ops = ins.operands
    if b in _LDM:
        return "pc" in _reglist(ops)
    return bool(ops) and _reg(_split_ops(ops)[0]) == "pc" and (b in _ALU or b in _LOAD1)


def _conditional(ins: Insn) -> bool:
    return ins.base in {"cbz", "cbnz"} or bool(ins.cond)


def block_cycles(insns: list[Insn] | tuple[Insn, ...], core: CoreTiming, next_pc: int | None = None,
                 prev: _Prev = _NONE) -> tuple[int, int]:
    """``(fixed, refills)`` of one execution of a block of instructions; ``next_pc``: where the next
    executed block starts (decides whether a conditional branch at the end was taken; None: not
    taken)."""
    fixed = refills = 0
    for i, ins in enumerate(insns):
        taken = None
        if i == len(insns) - 1 and _branches(ins) and next_pc is not None:
            taken = next_pc != ins.fallthrough
        f, r, prev = insn_cost(ins, prev, core, taken)
        fixed, refills = fixed + f, refills + r
    return fixed, refills


@dataclass
class TraceCycles:
    """Per symbol: instructions executed, fixed cycles and pipeline refills (cycles = fixed + P x
    refills); ``unclassified``: executed instructions whose mnemonic the model does not know, by
    mnemonic (charged 1 each)."""

    instructions: Counter[str] = field(default_factory=Counter)
    fixed: Counter[str] = field(default_factory=Counter)
    refills: Counter[str] = field(default_factory=Counter)
    unclassified: Counter[str] = field(default_factory=Counter)
    exceptions: int = 0

    def cycles(self, p: int = P_DEFAULT, symbols: Iterable[str] | None = None) -> int:
        keys = self.fixed.keys() | self.refills.keys() if symbols is None else symbols
        return sum(self.fixed.get(k, 0) + p * self.refills.get(k, 0) for k in keys)

    def total_instructions(self, symbols: Iterable[str] | None = None) -> int:
        keys = self.instructions.keys() if symbols is None else symbols
        return sum(self.instructions.get(k, 0) for k in keys)

    def minus(self, other: TraceCycles) -> TraceCycles:
        """This session's counts less another's (the Infer exchange: hello + infer minus hello)."""
        def sub(a: Counter[str], b: Counter[str]) -> Counter[str]:
            return Counter({k: v - b.get(k, 0) for k, v in a.items() if v - b.get(k, 0) > 0})
        return TraceCycles(sub(self.instructions, other.instructions), sub(self.fixed, other.fixed),
                           sub(self.refills, other.refills), sub(self.unclassified, other.unclassified),
                           self.exceptions - other.exceptions)


@dataclass
class _Block:
    pc: int
    sym: str
    insns: list[Insn]
    serial: int
    ptr: str = ""
    """QEMU's host address of the translation (the Trace lines name a block by it)."""


_EXC = {"entry": EXC_ENTRY, "tail": EXC_TAILCHAIN, "return": EXC_RETURN}


def parse_trace_cycles(lines: Iterable[str], core: CoreTiming) -> TraceCycles:
    """Cycles per symbol from QEMU ``in_asm,exec,nochain,int`` log lines, by the model above.

    The executions are first reduced to counts of (previous execution, execution) pairs, so each
    distinct pair is costed once: the previous one decides the pipelining of the first instruction
    and whether its own final branch was taken."""
    blocks: dict[str, _Block] = {}
    by_pc: dict[int, _Block] = {}
    translating: _Block | None = None
    pending: _Block | None = None
    pairs: Counter[tuple[object, object]] = Counter()
    seq: list[object] = [None, None]  # the last two executions (keys), for undoing a stopped one
    keys: dict[object, tuple[_Block, int]] = {}
    out = TraceCycles()
    serial = 0

    def push(key: object) -> None:
        pairs[(seq[-1], key)] += 1
        seq[0], seq[1] = seq[1], key

    for line in lines:
        c0 = line[:1]
        if c0 == "T":
            if line.startswith("Trace"):
                parts = line.split(None, 4)
                if len(parts) < 4:
                    continue
                ptr = parts[2]
                try:
                    pc = int(parts[3][1:].split("/")[1], 16)
                except (IndexError, ValueError):
                    continue
                if pending is not None and pending.pc == pc:
                    pending.ptr = ptr
                    blocks[ptr] = pending
                    pending = None
                blk = blocks.get(ptr) or by_pc.get(pc)
                if blk is None:
                    continue
                key = (blk.serial, len(blk.insns))
                keys.setdefault(key, (blk, len(blk.insns)))
                push(key)
            elif line.startswith("Taking exception") and not line.startswith("Taking exception 8 "):
                out.exceptions += 1
                push("entry")
            continue
        if c0 == "0":
            if translating is not None:
                ins = parse_insn(line)
                if ins is not None:
                    translating.insns.append(ins)
            continue
        if c0 == "I" and line.startswith("IN:"):
            serial += 1
            translating = _Block(-1, line[3:].strip() or "?", [], serial)
            continue
        if c0 == ".":
            if line.startswith("...tailchaining"):
                out.exceptions += 1
                push("tail")
            elif line.startswith("...successful exception return"):
                push("return")
            continue
        if c0 == "c" and line.startswith("cpu_io_recompile: rewound execution of TB to"):
            last = seq[-1]
            if isinstance(last, tuple) and last in keys:
                blk, _ = keys[last]
                at = int(line.rsplit(None, 1)[1], 16)
                k = next((i for i, ins in enumerate(blk.insns) if ins.addr == at), len(blk.insns))
                newkey = (blk.serial, k)
                keys.setdefault(newkey, (blk, k))
                pairs[(seq[0], last)] -= 1
                pairs[(seq[0], newkey)] += 1
                seq[1] = newkey
            continue
        if c0 == "S" and line.startswith("Stopped execution of TB chain before"):
            last = seq[-1]
            if isinstance(last, tuple) and last in keys and keys[last][0].ptr == line.split()[6]:
                pairs[(seq[0], last)] -= 1
                seq[1] = seq[0]
            continue
        if translating is not None and not line.strip() and translating.insns:
            translating.pc = translating.insns[0].addr
            by_pc[translating.pc] = translating
            pending = translating
            translating = None
    _cost_pairs(pairs, keys, core, out)
    return out


def _cost_pairs(pairs: Counter[tuple[object, object]], keys: dict[object, tuple[_Block, int]],
                core: CoreTiming, out: TraceCycles) -> None:
    succ: dict[object, Counter[object]] = {}
    n_exec: Counter[object] = Counter()
    for (a, b), n in pairs.items():
        if n <= 0:
            continue
        succ.setdefault(a, Counter())[b] += n
        n_exec[b] += n
        if isinstance(b, str):
            out.fixed[f"exception {b}"] += _EXC[b] * n
            continue
        blk, k = keys[b]
        if k == 0 or not isinstance(a, tuple):
            continue
        # the first instruction's pipelining and address stall depend on the previous instruction
        pblk, pk = keys[a]
        if pk == 0:
            continue
        prev = insn_cost(pblk.insns[pk - 1], _NONE, core, None)[2]
        with_prev = insn_cost(blk.insns[0], prev, core, False)
        alone = insn_cost(blk.insns[0], _NONE, core, False)
        out.fixed[blk.sym] += (with_prev[0] - alone[0]) * n
    for b, n in n_exec.items():
        if isinstance(b, str):
            continue
        blk, k = keys[b]
        insns = blk.insns[:k]
        if not insns:
            continue
        out.instructions[blk.sym] += len(insns) * n
        for ins in insns:
            if ins.base not in _KNOWN:
                out.unclassified[ins.mnemonic] += n
        counted = 0
        for c, m in succ.get(b, Counter()).items():
            # each (b, c) pair is one execution of b followed by c: c decides b's final branch
            if k < len(blk.insns):  # rewound: execution went on at the next instruction
                npc: int | None = insns[-1].fallthrough
            else:
                npc = keys[c][0].insns[0].addr if isinstance(c, tuple) and keys[c][1] else None
            f, r = block_cycles(insns, core, npc)
            out.fixed[blk.sym] += f * m
            out.refills[blk.sym] += r * m
            counted += m
        if counted < n:  # the last execution of the trace (no successor)
            f, r = block_cycles(insns, core, None)
            out.fixed[blk.sym] += f * (n - counted)
            out.refills[blk.sym] += r * (n - counted)


_KNOWN = set(_BASES) | {"b", "bl", "bx", "blx"}
