#include "nn.h"

#if defined(__ARM_ARCH_7M__) && !defined(NN_PURE_C)
/* The Cortex-M3 kernel of the common case (out_bits 16, out a multiple of 4, in a multiple of 8,
 * y 4-byte aligned), in assembly for the registers: per input one LDRSH of x, one LDM of the
 * block's three words, three MLA, one ASR and one MLA (7 instructions for 4 MACs); per block the
 * chain resolved by three SUB with LSL #16, then ASR, SSAT and two BFI for one STRD. The same
 * sums as the C path of nn_fc_blk_chain. Declared in nn.h. */
#define NN_M3_IN \
    "    ldrsh  r3, [r1], #2\n" \
    "    ldmia  r0!, {r4-r6}\n" \
    "    mla    r7, r4, r3, r7\n" \
    "    mla    r8, r5, r3, r8\n" \
    "    mla    r9, r6, r3, r9\n" \
    "    asr    r6, r6, #16\n" \
    "    mla    r10, r6, r3, r10\n"
__asm__(
    "    .section .text.nn_fc_chain16_m3,\"ax\",%progbits\n"
    "    .syntax unified\n"
    "    .thumb\n"
    "    .balign 4\n"
    "    .global nn_fc_chain16_m3\n"
    "    .type nn_fc_chain16_m3, %function\n"
    "    .thumb_func\n"
    "nn_fc_chain16_m3:\n"
    "    push   {r4-r11, lr}\n"
    "    sub    sp, sp, #8\n"
    "    str    r1, [sp, #0]\n"            /* initial accumulators */
    "    str    r2, [sp, #4]\n"            /* x */
    "    mov    lr, r3\n"                  /* y */
    /* stack arguments: n_blocks [sp, #44], n8 [sp, #48], shift [sp, #52], kx [sp, #56] */
    "    ldr    r12, [sp, #52]\n"
    "    ldr    r11, [sp, #56]\n"
    "1:  ldr    r1, [sp, #0]\n"
    "    ldmia  r1!, {r7-r10}\n"
    "    str    r1, [sp, #0]\n"
    "    subs   r7, r7, r11\n"
    "    subs   r8, r8, r11\n"
    "    subs   r9, r9, r11\n"
    "    ldr    r1, [sp, #4]\n"
    "    ldr    r2, [sp, #48]\n"
    "2:\n"
    NN_M3_IN NN_M3_IN NN_M3_IN NN_M3_IN NN_M3_IN NN_M3_IN NN_M3_IN NN_M3_IN
    "    subs   r2, r2, #1\n"
    "    bne    2b\n"
    "    sub    r9, r9, r10, lsl #16\n"    /* S_c = P_cd - 2^16 S_d */
    "    sub    r8, r8, r9, lsl #16\n"     /* S_b = P_bc - 2^16 S_c */
    "    sub    r7, r7, r8, lsl #16\n"     /* S_a = P_ab - 2^16 S_b */
    "    asr    r7, r7, r12\n"
    "    asr    r8, r8, r12\n"
    "    asr    r9, r9, r12\n"
    "    asr    r10, r10, r12\n"
    "    ssat   r7, #16, r7\n"
    "    ssat   r8, #16, r8\n"
    "    ssat   r9, #16, r9\n"
    "    ssat   r10, #16, r10\n"
    "    bfi    r7, r8, #16, #16\n"
    "    bfi    r9, r10, #16, #16\n"
    "    strd   r7, r9, [lr], #8\n"
    "    ldr    r2, [sp, #44]\n"
    "    subs   r2, r2, #1\n"
    "    str    r2, [sp, #44]\n"
    "    bne    1b\n"
    "    add    sp, sp, #8\n"
    "    pop    {r4-r11, pc}\n"
    "    .size nn_fc_chain16_m3, . - nn_fc_chain16_m3\n"
    "    .text\n");
#undef NN_M3_IN
#endif
