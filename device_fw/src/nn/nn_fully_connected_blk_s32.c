#include "nn.h"
#include "nn_requant32_inline.h"
#if defined(__ARM_FEATURE_SIMD32) && !defined(NN_PURE_C)
#include <arm_acle.h>
#endif

/* y[o] = sat((sum_i w[o][i] * x[i] + bias_r[o]) >> shift, out_bits), four rows per pass over x.
 * wb: blocked int16 weights, bias_r: bias with 2^(shift-1) folded in (nn_fc_q_t). The exporter
 * proved for every row |bias_r| + sum |w| max|x| < 2^31, so int32 accumulators cannot overflow and
 * the result equals the 64-bit reference whatever the order of the additions: the DSP path (one
 * word of x serves four SMLADs, Cortex-M4) is bit-exact with the pure C path (MLA, Cortex-M3).
 * Arguments: x int16[in_pad] (4-byte aligned, zero beyond in), y int16[out], out_bits 8..16.
 * bit-exact with harness.quant.intref.nn_fully_connected. */
/* Word access to int16 pairs; the arrays are 4-byte aligned (generated with aligned(4)). */
typedef uint32_t __attribute__((may_alias)) nn_u32_alias_t;


#if defined(__ARM_FEATURE_SIMD32) && !defined(NN_PURE_C)
/* The Cortex-M4 kernel of the common case (out_bits 16, out a multiple of 4, in_pad a multiple of
 * 8, y 4-byte aligned), in assembly because it needs every register: per 8 inputs one LDRD of x
 * per 4 inputs, one LDM of the 4 rows' weight words per input pair, 16 SMLAD and the loop: 24
 * instructions for 32 MACs; per block of 4 rows LDM of the 4 biases, 4 ASR + 4 SSAT, 2 PKHBT and
 * one STRD. Same blocked layout and the same sums as the C paths (int32, proven not to overflow).
 *   void nn_fc_blk16_m4(const int16_t *wb, const int32_t *bias_r, const int16_t *x, int16_t *y,
 *                       uint32_t n_blocks, uint32_t n8, int32_t shift);  n_blocks, n8 >= 1 */
void nn_fc_blk16_m4(const int16_t *wb, const int32_t *bias_r, const int16_t *x, int16_t *y, uint32_t n_blocks,
                    uint32_t n8, int32_t shift);
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

void nn_fully_connected_blk_s32(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits) {
#if defined(__ARM_FEATURE_SIMD32) && !defined(NN_PURE_C)
    if (out_bits == 16 && (fc->out & 3u) == 0u && (fc->in_pad & 7u) == 0u && ((uintptr_t)y & 3u) == 0u &&
        fc->out != 0u) {
        nn_fc_blk16_m4(fc->wb, fc->bias_r, x, y, fc->out >> 2, fc->in_pad >> 3, fc->shift);
        return;
    }
#endif
    const int16_t *wp = fc->wb;
    const int32_t *bp = fc->bias_r;
    const uint32_t n2 = fc->in_pad >> 1;
    const int shift = fc->shift;
    for (uint32_t o = 0; o < fc->out; o += 4) {
        int32_t acc0 = bp[0], acc1 = bp[1], acc2 = bp[2], acc3 = bp[3];
        const int16_t *xp = x;
#if defined(__ARM_FEATURE_SIMD32) && !defined(NN_PURE_C)
        /* Two input pairs per iteration: one LDRD of x (x[i..i+3]), four LDRD of weights (two rows'
         * pairs each), eight SMLAD: 15 instructions for 16 MACs with the loop. */
        uint32_t k = n2 >> 1;
        if (k != 0u) {
            uint32_t xa, xb, w0, w1;
            __asm__ volatile(
                "1:\n\t"
                "ldrd   %[xa], %[xb], [%[xp]], #8\n\t"
                "ldrd   %[w0], %[w1], [%[wp]], #8\n\t"
                "smlad  %[a0], %[w0], %[xa], %[a0]\n\t"
                "smlad  %[a1], %[w1], %[xa], %[a1]\n\t"
                "ldrd   %[w0], %[w1], [%[wp]], #8\n\t"
                "smlad  %[a2], %[w0], %[xa], %[a2]\n\t"
                "smlad  %[a3], %[w1], %[xa], %[a3]\n\t"
                "ldrd   %[w0], %[w1], [%[wp]], #8\n\t"
                "smlad  %[a0], %[w0], %[xb], %[a0]\n\t"
                "smlad  %[a1], %[w1], %[xb], %[a1]\n\t"
                "ldrd   %[w0], %[w1], [%[wp]], #8\n\t"
                "smlad  %[a2], %[w0], %[xb], %[a2]\n\t"
                "smlad  %[a3], %[w1], %[xb], %[a3]\n\t"
                "subs   %[k], %[k], #1\n\t"
                "bne    1b\n\t"
                : [a0] "+r"(acc0), [a1] "+r"(acc1), [a2] "+r"(acc2), [a3] "+r"(acc3), [xp] "+r"(xp),
                  [wp] "+r"(wp), [k] "+r"(k), [xa] "=&r"(xa), [xb] "=&r"(xb), [w0] "=&r"(w0), [w1] "=&r"(w1)
                :
                : "cc", "memory");
        }
        if (n2 & 1u) { /* a last input pair */
            const nn_u32_alias_t *x32 = (const nn_u32_alias_t *)(const void *)xp;
            const nn_u32_alias_t *w32 = (const nn_u32_alias_t *)(const void *)wp;
            acc0 = __smlad(w32[0], x32[0], acc0);
            acc1 = __smlad(w32[1], x32[0], acc1);
            acc2 = __smlad(w32[2], x32[0], acc2);
            acc3 = __smlad(w32[3], x32[0], acc3);
            wp += 8;
        }
#else
        /* LDRSH + MLA per MAC, x loaded once for four rows; two input pairs per iteration */
        for (uint32_t k = n2 >> 1; k != 0u; k--) {
            const int32_t x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
            acc0 += wp[0] * x0;
            acc0 += wp[1] * x1;
            acc1 += wp[2] * x0;
            acc1 += wp[3] * x1;
            acc2 += wp[4] * x0;
            acc2 += wp[5] * x1;
            acc3 += wp[6] * x0;
            acc3 += wp[7] * x1;
            acc0 += wp[8] * x2;
            acc0 += wp[9] * x3;
            acc1 += wp[10] * x2;
            acc1 += wp[11] * x3;
            acc2 += wp[12] * x2;
            acc2 += wp[13] * x3;
            acc3 += wp[14] * x2;
            acc3 += wp[15] * x3;
            xp += 4;
            wp += 16;
        }
        if (n2 & 1u) {
            const int32_t x0 = xp[0], x1 = xp[1];
            acc0 += wp[0] * x0 + wp[1] * x1;
            acc1 += wp[2] * x0 + wp[3] * x1;
            acc2 += wp[4] * x0 + wp[5] * x1;
            acc3 += wp[6] * x0 + wp[7] * x1;
            wp += 8;
        }
#endif
        if (out_bits == 16 && fc->out - o >= 4u) { /* the gates' common case: SSAT #16, no branches */
            y[o] = (int16_t)nn_sat16_inline(acc0 >> shift);
            y[o + 1] = (int16_t)nn_sat16_inline(acc1 >> shift);
            y[o + 2] = (int16_t)nn_sat16_inline(acc2 >> shift);
            y[o + 3] = (int16_t)nn_sat16_inline(acc3 >> shift);
        } else {
            const uint32_t left = fc->out - o;
            y[o] = (int16_t)nn_sat_bits32(acc0 >> shift, out_bits);
            if (left > 1u) {
                y[o + 1] = (int16_t)nn_sat_bits32(acc1 >> shift, out_bits);
            }
            if (left > 2u) {
                y[o + 2] = (int16_t)nn_sat_bits32(acc2 >> shift, out_bits);
            }
            if (left > 3u) {
                y[o + 3] = (int16_t)nn_sat_bits32(acc3 >> shift, out_bits);
            }
        }
        bp += 4;
    }
}
