#include "nn.h"

#if NN_BLK_DSP
/* The Cortex-M4 kernel of the common case (out_bits 16, out a multiple of 4, in_pad a multiple of
 * 8 and at most 64, y 4-byte aligned), in assembly because it needs every register. Per 8 inputs
 * one unit: LDM of x[i..i+7] (4 words), and per input pair LDM of the 4 rows' weight words and 4
 * SMLAD: 21 instructions for 32 MACs. The units are unrolled 8 times with no loop: every block of
 * 4 rows enters them n8 units before their end (one LDR PC of the entry address computed once per
 * call). Per block of 4 rows: LDM of the 4 biases, 4 ASR + 4 SSAT, 2 PKHBT and one STRD. Same
 * blocked layout and the same sums as the C path of nn_fully_connected_blk_s32 (int32, proven not
 * to overflow). Declared in nn.h. */
#define NN_M4_PAIR(xr) \
    "    ldmia.w r0!, {r6, r7, r8, lr}\n" \
    "    smlad  r9, r6, " xr ", r9\n" \
    "    smlad  r10, r7, " xr ", r10\n" \
    "    smlad  r11, r8, " xr ", r11\n" \
    "    smlad  r12, lr, " xr ", r12\n"
#define NN_M4_UNIT "    ldmia.w r1!, {r2, r3, r4, r5}\n" NN_M4_PAIR("r2") NN_M4_PAIR("r3") NN_M4_PAIR("r4") NN_M4_PAIR("r5")
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
    "    sub    sp, sp, #24\n"
    /* frame: bias pointer [sp, #0], x [sp, #4], y [sp, #8], entry [sp, #12], tail [sp, #16];
     * stack arguments: n_blocks [sp, #60], n8 [sp, #64], shift [sp, #68] */
    "    str    r1, [sp, #0]\n"
    "    str    r2, [sp, #4]\n"
    "    str    r3, [sp, #8]\n"
    "    ldr    r4, [sp, #68]\n"
    "    adr.w  r5, 6f\n"
    "    movs   r6, #56\n"                 /* bytes per tail (checked below) */
    "    mla    r5, r4, r6, r5\n"
    "    subs   r5, r5, #(56 - 1)\n"       /* tail of shift s: 6f + (s - 1) * 56, Thumb */
    "    str    r5, [sp, #16]\n"
    "    ldr    r4, [sp, #64]\n"
    "    adr.w  r5, 3f\n"
    "    movs   r6, #84\n"                 /* bytes per unit (checked below) */
    "    mls    r5, r4, r6, r5\n"          /* entry = end of the units - n8 units */
    "    orr    r5, r5, #1\n"              /* Thumb */
    "    str    r5, [sp, #12]\n"
    "1:  ldr    r1, [sp, #0]\n"
    "    ldmia  r1!, {r9-r12}\n"           /* accumulators = the 4 biases (rounding folded in) */
    "    str    r1, [sp, #0]\n"
    "    ldr    r1, [sp, #4]\n"
    "    ldr    pc, [sp, #12]\n"
    "2:\n"
    NN_M4_UNIT
    "4:\n"
    NN_M4_UNIT NN_M4_UNIT NN_M4_UNIT NN_M4_UNIT NN_M4_UNIT NN_M4_UNIT NN_M4_UNIT
    "3:  ldr    pc, [sp, #16]\n"          /* the tail of this shift */
    "    .if (4b - 2b) - 84\n"
    "    .error \"nn_fc_blk16_m4: a unit is not 84 bytes\"\n"
    "    .endif\n"
    "    .if (3b - 2b) - 8 * 84\n"
    "    .error \"nn_fc_blk16_m4: the units are not 8 * 84 bytes\"\n"
    "    .endif\n"
    "    .balign 4\n"
    "6:\n"
    "    .irp s, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31\n"
    "    ssat   r9, #16, r9, asr #\\s\n"
    "    ssat   r10, #16, r10, asr #\\s\n"
    "    ssat   r11, #16, r11, asr #\\s\n"
    "    ssat   r12, #16, r12, asr #\\s\n"
    "    pkhbt  r9, r9, r10, lsl #16\n"
    "    pkhbt  r11, r11, r12, lsl #16\n"
    "    ldr.w  r3, [sp, #8]\n"
    "    strd   r9, r11, [r3], #8\n"
    "    str.w  r3, [sp, #8]\n"
    "    ldr.w  r2, [sp, #60]\n"
    "    subs.w r2, r2, #1\n"
    "    str.w  r2, [sp, #60]\n"
    "    bne.w  1b\n"
    "    b.w    7f\n"
    "    .endr\n"
    "7:\n"
    "    .if (7b - 6b) - 31 * 56\n"
    "    .error \"nn_fc_blk16_m4: a tail is not 56 bytes\"\n"
    "    .endif\n"
    "    add    sp, sp, #24\n"
    "    pop    {r4-r11, pc}\n"
    "    .size nn_fc_blk16_m4, . - nn_fc_blk16_m4\n"
    "    .text\n");
#undef NN_M4_UNIT
#undef NN_M4_PAIR
#endif
