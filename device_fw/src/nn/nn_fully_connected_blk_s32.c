#include "nn.h"
#include "nn_requant32_inline.h"
#if NN_BLK_DSP
#include <arm_acle.h>
#endif

/* y[o] = sat((sum_i w[o][i] * x[i] + bias_r[o]) >> shift, out_bits), four rows per pass over x,
 * from one of the two blocked layouts of nn_fc_q_t: wb (SMLAD pairs) on cores with the DSP
 * extension (NN_BLK_DSP, the Cortex-M4), wc (chained rows) elsewhere (the Cortex-M3, host builds).
 * The exporter proved for every row |bias_r| + sum |w| max|x| < 2^31, so 32-bit arithmetic is exact
 * and both layouts give the 64-bit reference's result (nn_fully_connected_s8w / _s16w) whatever the
 * order of the additions. Arguments: x int16[in_pad] (4-byte aligned, zero beyond in), y
 * int16[out], out_bits 8..16. bit-exact with harness.quant.intref.nn_fully_connected. */

#if NN_BLK_DSP
/* Word access to int16 pairs; the arrays are 4-byte aligned (generated with aligned(4)). */
typedef uint32_t __attribute__((may_alias)) nn_u32_alias_t;

void nn_fully_connected_blk_s32(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits) {
    if (out_bits == 16 && (fc->out & 3u) == 0u && (fc->in_pad & 7u) == 0u && fc->in_pad != 0u &&
        fc->in_pad <= 64u && fc->shift >= 1 && fc->shift <= 31 && ((uintptr_t)y & 3u) == 0u && fc->out != 0u) {
        nn_fc_blk16_m4(fc->wb, fc->bias_r, x, y, fc->out >> 2, fc->in_pad >> 3, fc->shift);
        return;
    }
    const int16_t *wp = fc->wb;
    const int32_t *bp = fc->bias_r;
    const uint32_t n2 = fc->in_pad >> 1;
    const int shift = fc->shift;
    for (uint32_t o = 0; o < fc->out; o += 4) {
        int32_t acc0 = bp[0], acc1 = bp[1], acc2 = bp[2], acc3 = bp[3];
        const int16_t *xp = x;
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

#else /* !NN_BLK_DSP: the chained layout (nn.h, wc), nn_fc_blk_chain */
void nn_fully_connected_blk_s32(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits) {
    nn_fc_blk_chain(fc, x, y, out_bits, nn_fc_chain_kx(x, fc->in));
}
#endif
