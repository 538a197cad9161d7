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

void nn_fully_connected_blk_s32(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits) {
    if (out_bits == 16 && (fc->out & 3u) == 0u && (fc->in_pad & 7u) == 0u && ((uintptr_t)y & 3u) == 0u &&
        fc->out != 0u) {
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

#else /* !NN_BLK_DSP: the chained layout (nn.h, wc) */

/* y[o] = sat((sum_i w[o][i] * x[i] + bias_r[o]) >> shift, out_bits) from the chained layout; kx =
 * nn_fc_chain_kx(x, in). All sums modulo 2^32 (uint32_t: defined wrap-around); the exporter's
 * proof bounds every row's true value below 2^31, so the recovered int32 values are exact. */
static inline void nn_chain_store4(int16_t *y, uint32_t left, const int32_t acc[4], int shift, int out_bits) {
    for (uint32_t r = 0; r < 4u && r < left; r++) {
        y[r] = (int16_t)nn_sat_bits32(acc[r] >> shift, out_bits);
    }
}

uint32_t nn_fc_chain_kx(const int16_t *x, uint32_t n) {
    uint32_t sum = 0, i = 0;
    for (; i + 4u <= n; i += 4u) {
        sum += (uint32_t)((int32_t)x[i] + x[i + 1] + x[i + 2] + x[i + 3]);
    }
    for (; i < n; i++) {
        sum += (uint32_t)(int32_t)x[i];
    }
    return sum << 15; /* CHAIN_OFFSET * sum x, mod 2^32 */
}

#if defined(__ARM_ARCH_7M__) && !defined(NN_PURE_C)
/* The Cortex-M3 kernel of the common case (out_bits 16, out a multiple of 4, in a multiple of 8,
 * y 4-byte aligned), in assembly for the registers: per input one LDRSH of x, one LDM of the
 * block's three words, three MLA, one ASR and one MLA (7 instructions for 4 MACs); per block the
 * chain resolved by three SUB with LSL #16, then ASR, SSAT and two BFI for one STRD.
 *   void nn_fc_chain16_m3(const uint32_t *wc, const int32_t *init, const int16_t *x, int16_t *y,
 *                         uint32_t n_blocks, uint32_t n8, int32_t shift, uint32_t kx);  n >= 1 */
void nn_fc_chain16_m3(const uint32_t *wc, const int32_t *init, const int16_t *x, int16_t *y, uint32_t n_blocks,
                      uint32_t n8, int32_t shift, uint32_t kx);
#define NN_M3_IN(o) \
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
    NN_M3_IN(0) NN_M3_IN(1) NN_M3_IN(2) NN_M3_IN(3) NN_M3_IN(4) NN_M3_IN(5) NN_M3_IN(6) NN_M3_IN(7)
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

void nn_fc_blk_chain(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits, uint32_t kx) {
#if defined(__ARM_ARCH_7M__) && !defined(NN_PURE_C)
    if (out_bits == 16 && (fc->out & 3u) == 0u && (fc->in & 7u) == 0u && ((uintptr_t)y & 3u) == 0u &&
        fc->out != 0u && fc->in != 0u) {
        nn_fc_chain16_m3(fc->wc, fc->bias_r, x, y, fc->out >> 2, fc->in >> 3, fc->shift, kx);
        return;
    }
#endif
    const uint32_t *wp = fc->wc;
    const int32_t *bp = fc->bias_r;
    const uint32_t n = fc->in;
    for (uint32_t o = 0; o < fc->out; o += 4, bp += 4) {
        uint32_t pab = (uint32_t)bp[0] - kx, pbc = (uint32_t)bp[1] - kx, pcd = (uint32_t)bp[2] - kx;
        uint32_t td = (uint32_t)bp[3];
        for (uint32_t i = 0; i < n; i++, wp += 3) {
            const uint32_t xi = (uint32_t)(int32_t)x[i];
            pab += wp[0] * xi;
            pbc += wp[1] * xi;
            pcd += wp[2] * xi;
            td += (uint32_t)((int32_t)wp[2] >> 16) * xi;
        }
        const uint32_t sc = pcd - (td << 16), sb = pbc - (sc << 16), sa = pab - (sb << 16);
        const int32_t acc[4] = {(int32_t)sa, (int32_t)sb, (int32_t)sc, (int32_t)td};
        nn_chain_store4(y + o, fc->out - o, acc, fc->shift, out_bits);
    }
}

void nn_fully_connected_blk_s32(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits) {
    nn_fc_blk_chain(fc, x, y, out_bits, nn_fc_chain_kx(x, fc->in));
}
#endif
