#include "nn.h"

#if defined(__ARM_ARCH_7M__) && !defined(NN_PURE_C)
/* The Cortex-M3 kernel of the chained layout's common case, two blocks (8 rows) per pass (out a
 * multiple of 8, out_bits 16, in a multiple of 8 and at most 64, x and y 4-byte aligned): per input
 * one LDRSH of x and, per block, one LDM of its three words, three MLA, one ASR and one MLA, so 13
 * instructions for 8 MACs (nn_fc_chain16_m3 takes 7 for 4: the load of x is shared). That needs 14
 * registers for the 8 sums, x, the three words and the two blocks' pointers, so x is copied to the
 * stack first and read at fixed offsets from SP, and the 64 inputs are unrolled with no loop: every
 * pass enters them n8 units of 8 inputs before their end (one LDR PC of the entry address computed
 * once per call). Per pass the two chains resolved by SUB with LSL #16, 8 SSAT with the shift
 * as an immediate (one copy per shift 1..31, entered by LDR PC), 4 BFI and one STM. The same sums as the C path of nn_fc_blk_chain. Declared in nn.h. */
__asm__(
    "    .section .text.nn_fc_chain16x8_m3,\"ax\",%progbits\n"
    "    .syntax unified\n"
    "    .thumb\n"
    "    .macro NN_M3X8_IN off\n"
    "    ldrsh.w r2, [sp, #\\off]\n"
    "    ldmia.w r0!, {r3, r12, lr}\n"
    "    mla    r4, r3, r2, r4\n"
    "    mla    r5, r12, r2, r5\n"
    "    mla    r6, lr, r2, r6\n"
    "    asr.w  lr, lr, #16\n"
    "    mla    r7, lr, r2, r7\n"
    "    ldmia.w r1!, {r3, r12, lr}\n"
    "    mla    r8, r3, r2, r8\n"
    "    mla    r9, r12, r2, r9\n"
    "    mla    r10, lr, r2, r10\n"
    "    asr.w  lr, lr, #16\n"
    "    mla    r11, lr, r2, r11\n"
    "    .endm\n"
    "    .balign 4\n"
    "    .global nn_fc_chain16x8_m3\n"
    "    .type nn_fc_chain16x8_m3, %function\n"
    "    .thumb_func\n"
    "nn_fc_chain16x8_m3:\n"
    "    push   {r4-r11, lr}\n"
    "    sub    sp, sp, #160\n"
    /* frame: x copy [sp, #0..128) (x[0] at 128 - 2 in), bias pointer [sp, #128], y [sp, #132],
     * entry [sp, #136], stride [sp, #140], the SSATs' address [sp, #144]; stack arguments: n_pairs [sp, #196], n8 [sp, #200],
     * shift [sp, #204], kx [sp, #208] */
    "    str    r1, [sp, #128]\n"
    "    str    r3, [sp, #132]\n"
    "    ldr    r12, [sp, #200]\n"
    "    add    r3, sp, #128\n"
    "    sub    r3, r3, r12, lsl #4\n"
    "    mov    lr, r12\n"
    "5:  ldmia  r2!, {r4-r7}\n"            /* x, 8 inputs per pass */
    "    stmia  r3!, {r4-r7}\n"
    "    subs   lr, lr, #1\n"
    "    bne    5b\n"
    "    adr.w  r3, 3f\n"
    "    mov.w  lr, #416\n"                /* bytes per unit of 8 inputs (checked below) */
    "    mls    r3, r12, lr, r3\n"
    "    orr    r3, r3, #1\n"              /* Thumb */
    "    str    r3, [sp, #136]\n"
    "    mov.w  lr, #96\n"                 /* a block's words: 3 per input, 12 bytes */
    "    mul    lr, r12, lr\n"
    "    str    lr, [sp, #140]\n"
    "    add    r1, r0, lr\n"              /* the second block of the pass */
    "    ldr    r3, [sp, #204]\n"
    "    adr.w  r2, 6f\n"
    "    movs   r12, #36\n"                /* bytes per shift's SSATs (checked below) */
    "    mla    r2, r3, r12, r2\n"
    "    subs   r2, r2, #(36 - 1)\n"       /* 6f + (shift - 1) * 36, Thumb */
    "    str    r2, [sp, #144]\n"
    "1:  ldr    r2, [sp, #128]\n"
    "    ldmia  r2!, {r4-r11}\n"           /* the two blocks' initial words */
    "    str    r2, [sp, #128]\n"
    "    ldr    r2, [sp, #208]\n"
    "    sub    r4, r4, r2\n"
    "    sub    r5, r5, r2\n"
    "    sub    r6, r6, r2\n"
    "    sub    r8, r8, r2\n"
    "    sub    r9, r9, r2\n"
    "    sub    r10, r10, r2\n"
    "    ldr    pc, [sp, #136]\n"
    "2:\n"
    "    .irp off, 0, 2, 4, 6, 8, 10, 12, 14\n"
    "    NN_M3X8_IN \\off\n"
    "    .endr\n"
    "4:\n"
    "    .irp off, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 52, 54, 56, 58, 60, 62\n"
    "    NN_M3X8_IN \\off\n"
    "    .endr\n"
    "    .irp off, 64, 66, 68, 70, 72, 74, 76, 78, 80, 82, 84, 86, 88, 90, 92, 94, 96, 98, 100, 102, 104, 106, 108, 110\n"
    "    NN_M3X8_IN \\off\n"
    "    .endr\n"
    "    .irp off, 112, 114, 116, 118, 120, 122, 124, 126\n"
    "    NN_M3X8_IN \\off\n"
    "    .endr\n"
    "3:  sub    r6, r6, r7, lsl #16\n"     /* S_c = P_cd - 2^16 S_d, per block */
    "    .if (4b - 2b) - 416\n"
    "    .error \"nn_fc_chain16x8_m3: a unit is not 416 bytes\"\n"
    "    .endif\n"
    "    .if (3b - 2b) - 8 * 416\n"
    "    .error \"nn_fc_chain16x8_m3: the units are not 8 * 416 bytes\"\n"
    "    .endif\n"
    "    sub    r5, r5, r6, lsl #16\n"
    "    sub    r4, r4, r5, lsl #16\n"
    "    sub    r10, r10, r11, lsl #16\n"
    "    sub    r9, r9, r10, lsl #16\n"
    "    sub    r8, r8, r9, lsl #16\n"
    "    ldr    pc, [sp, #144]\n"         /* the SSATs of this shift */
    "    .balign 4\n"
    "6:\n"
    "    .irp s, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31\n"
    "    ssat   r4, #16, r4, asr #\\s\n"
    "    ssat   r5, #16, r5, asr #\\s\n"
    "    ssat   r6, #16, r6, asr #\\s\n"
    "    ssat   r7, #16, r7, asr #\\s\n"
    "    ssat   r8, #16, r8, asr #\\s\n"
    "    ssat   r9, #16, r9, asr #\\s\n"
    "    ssat   r10, #16, r10, asr #\\s\n"
    "    ssat   r11, #16, r11, asr #\\s\n"
    "    b.w    7f\n"
    "    .endr\n"
    "7:\n"
    "    .if (7b - 6b) - 31 * 36\n"
    "    .error \"nn_fc_chain16x8_m3: a shift's SSATs are not 36 bytes\"\n"
    "    .endif\n"
    "    bfi    r4, r5, #16, #16\n"
    "    bfi    r6, r7, #16, #16\n"
    "    bfi    r8, r9, #16, #16\n"
    "    bfi    r10, r11, #16, #16\n"
    "    ldr    r2, [sp, #132]\n"
    "    stmia  r2!, {r4, r6, r8, r10}\n"
    "    str    r2, [sp, #132]\n"
    "    ldr    r2, [sp, #140]\n"
    "    mov    r0, r1\n"                  /* the next pass: the block after the second */
    "    add    r1, r1, r2\n"
    "    ldr    r2, [sp, #196]\n"
    "    subs   r2, r2, #1\n"
    "    str    r2, [sp, #196]\n"
    "    bne    1b\n"
    "    add    sp, sp, #160\n"
    "    pop    {r4-r11, pc}\n"
    "    .purgem NN_M3X8_IN\n"
    "    .size nn_fc_chain16x8_m3, . - nn_fc_chain16x8_m3\n"
    "    .text\n");
#endif
