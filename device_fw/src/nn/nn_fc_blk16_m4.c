#include "nn.h"

#if NN_BLK_DSP
/* The Cortex-M4 kernel of the common case (out_bits 16, out a multiple of 4, in_pad a multiple of
 * 8, y 4-byte aligned), in assembly because it needs every register: per 8 inputs one LDRD of x
 * per 4 inputs, one LDM of the 4 rows' weight words per input pair, 16 SMLAD and the loop: 24
 * instructions for 32 MACs; per block of 4 rows LDM of the 4 biases, 4 ASR + 4 SSAT, 2 PKHBT and
 * one STRD. Same blocked layout and the same sums as the C path of nn_fully_connected_blk_s32
 * (int32, proven not to overflow). Declared in nn.h. */
__asm__(
    "    .section .text.nn_fc_blk16_m4,\"ax\",%progbits\n"
    "    .syntax unified\n"
    "    .thumb\n"
    "    .balign 4\n"
    "    .global nn_fc_blk16_m4\n"
    "    .type nn_fc_blk16_m4, %function\n"
    "    .thumb_func\n"
    "nn_fc_blk16_m4:\n"
    "    push   {r4-r11, lr}\n"
    "    sub    sp, sp, #8\n"
    "    str    r1, [sp, #0]\n"            /* bias pointer */
    "    str    r2, [sp, #4]\n"            /* x */
    "    mov    lr, r3\n"                  /* y */
    /* stack arguments: n_blocks [sp, #44], n8 [sp, #48], shift [sp, #52] */
    "1:  ldr    r1, [sp, #0]\n"
    "    ldmia  r1!, {r9-r12}\n"           /* accumulators = the 4 biases (rounding folded in) */
    "    str    r1, [sp, #0]\n"
    "    ldr    r1, [sp, #4]\n"
    "    ldr    r2, [sp, #48]\n"
    "2:  ldrd   r3, r4, [r1], #8\n"        /* x[i..i+3] */
    "    ldmia  r0!, {r5-r8}\n"            /* rows 0..3: (w[i], w[i+1]) */
    "    smlad  r9, r5, r3, r9\n"
    "    smlad  r10, r6, r3, r10\n"
    "    smlad  r11, r7, r3, r11\n"
    "    smlad  r12, r8, r3, r12\n"
    "    ldmia  r0!, {r5-r8}\n"            /* rows 0..3: (w[i+2], w[i+3]) */
    "    smlad  r9, r5, r4, r9\n"
    "    smlad  r10, r6, r4, r10\n"
    "    smlad  r11, r7, r4, r11\n"
    "    smlad  r12, r8, r4, r12\n"
    "    ldrd   r3, r4, [r1], #8\n"        /* x[i+4..i+7] */
    "    ldmia  r0!, {r5-r8}\n"
    "    smlad  r9, r5, r3, r9\n"
    "    smlad  r10, r6, r3, r10\n"
    "    smlad  r11, r7, r3, r11\n"
    "    smlad  r12, r8, r3, r12\n"
    "    ldmia  r0!, {r5-r8}\n"
    "    smlad  r9, r5, r4, r9\n"
    "    smlad  r10, r6, r4, r10\n"
    "    smlad  r11, r7, r4, r11\n"
    "    smlad  r12, r8, r4, r12\n"
    "    subs   r2, r2, #1\n"
    "    bne    2b\n"
    "    ldr    r2, [sp, #52]\n"
    "    asr    r9, r9, r2\n"
    "    asr    r10, r10, r2\n"
    "    asr    r11, r11, r2\n"
    "    asr    r12, r12, r2\n"
    "    ssat   r9, #16, r9\n"
    "    ssat   r10, #16, r10\n"
    "    ssat   r11, #16, r11\n"
    "    ssat   r12, #16, r12\n"
    "    pkhbt  r9, r9, r10, lsl #16\n"
    "    pkhbt  r11, r11, r12, lsl #16\n"
    "    strd   r9, r11, [lr], #8\n"
    "    ldr    r2, [sp, #44]\n"
    "    subs   r2, r2, #1\n"
    "    str    r2, [sp, #44]\n"
    "    bne    1b\n"
    "    add    sp, sp, #8\n"
    "    pop    {r4-r11, pc}\n"
    "    .size nn_fc_blk16_m4, . - nn_fc_blk16_m4\n"
    "    .text\n");
#endif
