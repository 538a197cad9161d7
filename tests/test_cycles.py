"""The cycle model (harness.bench.cycles): TRM timings per instruction on hand-written trace
snippets, the taken / not-taken decision from successive blocks, and one QEMU run of a real image."""

from __future__ import annotations

import subprocess

import numpy as np
from conftest import CATTLE, FIXTURES, REPO, needs_qemu

from harness.bench.cycles import (
    CORES,
    EXC_ENTRY,
    EXC_RETURN,
    Insn,
    block_cycles,
    parse_insn,
    parse_trace_cycles,
    split_mnemonic,
)

M3, M4 = CORES["cortex-m3"], CORES["cortex-m4"]


def _block(*asm: str, at: int = 0x100) -> list[Insn]:
    """Instructions as QEMU's in_asm prints them, 32-bit encodings, from address ``at``."""
    out = []
    for text in asm:
        mn, _, ops = text.partition(" ")
        out.append(Insn(at, 4, mn, ops.strip()))
        at += 4
    return out


def _cost(core: object, *asm: str, next_pc: int | None = None) -> tuple[int, int]:
    return block_cycles(_block(*asm), core, next_pc)  # type: ignore[arg-type]


def test_mnemonics_split_into_base_and_condition() -> None:
    assert split_mnemonic("bne") == ("b", "ne")
    assert split_mnemonic("bls.w") == ("b", "ls")
    assert split_mnemonic("bl") == ("bl", "")
    assert split_mnemonic("blx") == ("blx", "")
    assert split_mnemonic("bics") == ("bic", "")
    assert split_mnemonic("ldrsh.w") == ("ldrsh", "")
    assert split_mnemonic("strhlt") == ("strh", "lt")
    assert split_mnemonic("rsblt.w") == ("rsb", "lt")
    assert split_mnemonic("vmla.f32") == ("vmla", "")
    assert split_mnemonic("ittet") == ("it", "")


def test_an_in_asm_line_parses_into_address_size_mnemonic_and_operands() -> None:
    ins = parse_insn("0x000008a0:  e8f1 3402  ldrd     r3, r4, [r1], #8")
    assert ins is not None and (ins.addr, ins.size, ins.base, ins.operands) == (0x8A0, 4, "ldrd", "r3, r4, [r1], #8")
    short = parse_insn("0x000008f8:  3a01       subs     r2, #1")
    assert short is not None and (short.size, short.base, short.fallthrough) == (2, "sub", 0x8FA)


def test_ldm_of_four_registers_costs_five_on_the_m4_and_the_m3() -> None:
    assert _cost(M4, "ldm.w r0!, {r5, r6, r7, r8}") == (5, 0)
    assert _cost(M4, "ldm.w r0!, {r0-r3}") == (5, 0)
    assert _cost(M3, "ldmia r0!, {r4-r6}") == (4, 0)
    assert _cost(M4, "push.w {r4, r5, r6, r7, r8, sb, sl, fp, lr}") == (10, 0)


def test_pop_with_pc_costs_one_plus_n_plus_a_refill() -> None:
    assert _cost(M4, "pop.w {r4, r5, r6, pc}", next_pc=0x2000) == (5, 1)


def test_smlad_is_one_cycle_on_the_m4_and_mla_two_on_the_m3() -> None:
    assert _cost(M4, "smlad sb, r5, r3, sb") == (1, 0)
    assert _cost(M4, "mla r7, r4, r3, r7") == (1, 0)
    assert _cost(M3, "mla r7, r4, r3, r7") == (2, 0)
    assert _cost(M3, "mul r0, r1, r2") == (1, 0)
    assert _cost(M3, "umull r0, r1, r2, r3") == (5, 0)  # worst case of the TRM's 3-5
    assert _cost(M4, "umull r0, r1, r2, r3") == (1, 0)
    assert _cost(M3, "udiv r0, r1, r2") == (12, 0)  # worst case of 2-12


def test_neighbouring_single_loads_pipeline_as_in_the_trms_examples() -> None:
    # Cortex-M3 TRM section 3.3 "Load/store timings", the same text in the M4 TRM and TI SWCU185G
    assert _cost(M4, "ldr r0, [r1]", "ldr r1, [r2]") == (3, 0)  # "normally three cycles total"
    assert _cost(M3, "ldr r0, [r1, r2]", "str r0, [r3, #20]") == (3, 0)
    assert _cost(M3, "ldr r0, [r1, r2]", "str r1, [r3, r2]") == (3, 0)
    assert _cost(M4, "ldr r0, [r1, r5]", "ldr r1, [r2]", "ldr r2, [r3, #4]") == (4, 0)  # "four cycles"
    # the first load's destination forms the second's address: no pipelining
    assert _cost(M4, "ldr r0, [r1]", "ldr r2, [r0]") == (4, 0)
    # LDRD and LDM never pipeline
    assert _cost(M4, "ldr r0, [r1]", "ldrd r3, r4, [r2], #8") == (5, 0)


def test_blocking_loads_cost_what_the_trm_says_with_a_three_cycle_refill() -> None:
    # "LDR PC,[any] ... at least five cycles"; "TBB and TBH ... at least six cycles" (P = 3)
    fixed, refills = _cost(M3, "ldr pc, [sp], #4", next_pc=0x2000)
    assert fixed + 3 * refills == 5
    fixed, refills = _cost(M4, "tbb [pc, r0]", next_pc=0x2000)
    assert fixed + 3 * refills == 6


def test_an_address_written_by_the_preceding_data_processing_instruction_stalls_a_cycle() -> None:
    assert _cost(M4, "add r1, r2, #4", "ldr r0, [r1]") == (4, 0)
    assert _cost(M4, "add r3, r2, #4", "ldr r0, [r1]") == (3, 0)
    assert _cost(M4, "str r0, [r1, #4]") == (1, 0)  # "STR Rx,[Ry,#imm] is always one cycle"
    assert _cost(M4, "str r0, [r1, r2]") == (2, 0)


def test_a_conditional_branch_costs_one_plus_p_taken_and_one_not_taken() -> None:
    blk = _block("subs r2, #1", "bne #0x100")
    assert block_cycles(blk, M4, 0x100) == (2, 1)  # taken: next block starts at the target
    assert block_cycles(blk, M4, blk[-1].fallthrough) == (2, 0)  # not taken: the fall-through
    assert block_cycles(_block("cbz r5, #0x6c4"), M3, 0x6C4) == (1, 1)
    assert block_cycles(_block("cbz r5, #0x6c4"), M3, 0x104) == (1, 0)
    # unconditional branches always refill
    assert block_cycles(_block("b.w #0x200"), M4, 0x200) == (1, 1)
    assert block_cycles(_block("bl #0x200"), M4, 0x200) == (1, 1)
    assert block_cycles(_block("bx lr"), M4, 0x300) == (1, 1)


def test_the_m4_matrix_loop_costs_the_issues_hand_count() -> None:
    """nn_fc_blk16_m4's loop: 2 LDRD + 4 LDM{4} + 16 SMLAD + SUBS + BNE = 44 + P cycles per 32 MACs
    (issue 24: 45-47 for P = 1..3)."""
    half = ["ldrd r3, r4, [r1], #8", "ldm.w r0!, {r5, r6, r7, r8}", "smlad sb, r5, r3, sb", "smlad sl, r6, r3, sl",
            "smlad fp, r7, r3, fp", "smlad ip, r8, r3, ip", "ldm.w r0!, {r5, r6, r7, r8}", "smlad sb, r5, r4, sb",
            "smlad sl, r6, r4, sl", "smlad fp, r7, r4, fp", "smlad ip, r8, r4, ip"]
    assert _cost(M4, *half, *half, "subs r2, #1", "bne #0x100", next_pc=0x100) == (44, 1)


def test_the_m3_chain_loop_costs_three_point_eight_four_to_three_point_nine_one_per_mac() -> None:
    step = ["ldrsh r3, [r1], #2", "ldmia r0!, {r4, r5, r6}", "mla r7, r4, r3, r7", "mla r8, r5, r3, r8",
            "mla sb, r6, r3, sb", "asr r6, r6, #16", "mla sl, r6, r3, sl"]
    fixed, refills = _cost(M3, *(step * 8), "subs r2, r2, #1", "bne #0x100", next_pc=0x100)
    assert (fixed, refills) == (122, 1)  # issue 24: 3.84-3.91 cycles per MAC
    assert f"{(fixed + refills) / 32:.2f}-{(fixed + 3 * refills) / 32:.2f}" == "3.84-3.91"


_TRACE = """\
IN: loop
0x00000100:  3a01       subs     r2, #1
0x00000102:  d1fd       bne      #0x100

Trace 0: 0x7f0000000100 [00800408/00000100/00000110/ff020200] loop
Trace 0: 0x7f0000000100 [00800408/00000100/00000110/ff020200] loop
Trace 0: 0x7f0000000100 [00800408/00000100/00000110/ff020200] loop
----------------
IN: after
0x00000104:  4770       bx       lr

Trace 0: 0x7f0000000200 [00800408/00000104/00000110/ff020200] after
Taking exception 5 [IRQ] on CPU 0
...taking pending nonsecure exception 16
----------------
IN: handler
0x00000400:  4770       bx       lr

Trace 0: 0x7f0000000300 [00800408/00000400/00000110/ff020200] handler
Taking exception 8 [QEMU v7M exception exit] on CPU 0
Exception return: magic PC fffffff9 previous exception 16
...successful exception return
Trace 0: 0x7f0000000100 [00800408/00000100/00000110/ff020200] loop
Stopped execution of TB chain before 0x7f0000000100 [00000100] loop
"""


def test_the_trace_decides_taken_branches_from_the_next_block_and_charges_exceptions() -> None:
    t = parse_trace_cycles(_TRACE.splitlines(), M4)
    # loop runs 3 times (the 4th was stopped before it ran): taken, taken, not taken
    assert t.instructions["loop"] == 6
    assert (t.fixed["loop"], t.refills["loop"]) == (6, 2)
    assert (t.fixed["after"], t.refills["after"]) == (1, 1)
    assert t.fixed["exception entry"] == EXC_ENTRY and t.fixed["exception return"] == EXC_RETURN
    assert t.exceptions == 1
    assert t.cycles(2) == 6 + 2 * 2 + 1 + 2 + 1 + 2 + EXC_ENTRY + EXC_RETURN


def test_a_rewound_block_is_charged_only_up_to_the_io_instruction() -> None:
    trace = """\
IN: io
0x00000100:  2001       movs     r0, #1
0x00000102:  6008       str      r0, [r1]
0x00000104:  6048       str      r0, [r1, #4]
0x00000106:  4770       bx       lr

Trace 0: 0x7f0000000100 [00800408/00000100/00000110/ff020200] io
cpu_io_recompile: rewound execution of TB to 00000102
"""
    t = parse_trace_cycles(trace.splitlines(), M4)
    assert t.instructions["io"] == 1 and t.cycles() == 1


@needs_qemu
def test_a_real_image_costs_more_cycles_than_instructions_and_a_sane_cycles_per_mac() -> None:
    from harness.bench.fwprofile import GROUPS, group_of, infer_cycles
    from harness.data.fixtures import load_fixtures
    from harness.device.targets.base import firmware_image
    from harness.training.train import load_model

    elf = firmware_image("eartag-qemu", "w8a16")
    r = subprocess.run(["make", "-s", "-j2", "-C", str(REPO / "device_fw"), str(elf.relative_to(REPO / "device_fw"))],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    t = infer_cycles("eartag", elf, np.asarray(fx.calibrated_x()[:1]), M4)
    assert not t.unclassified, t.unclassified
    syms = [s for s in t.instructions if group_of(s) != GROUPS[-1][0]]
    instr, cycles = t.total_instructions(syms), t.cycles(2, syms)
    assert 300_000 < instr < 1_000_000
    assert cycles >= instr and t.cycles(1) >= t.total_instructions()
    model = load_model(CATTLE.models_dir / "student")
    per_mac = cycles / model.macs()  # type: ignore[attr-defined]
    assert 1.0 < per_mac < 4.0, per_mac
    matrix = [s for s in syms if s.startswith("nn_fc_blk16_m4")]
    loop = t.cycles(2, matrix) / t.total_instructions(matrix)
    assert 1.6 < loop < 2.1, loop  # the loop: 46 cycles per 24 instructions at P = 2

