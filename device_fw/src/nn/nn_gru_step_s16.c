#include "nn.h"
#include "nn_lut_eval.h"
#include "nn_requant32_inline.h"
#include "nn_requant_inline.h"

/* One GRU step, torch semantics: r = sig(Wir a + bir + Whr h + bhr), z likewise,
 * n = tanh(Win a + bin + r * (Whn h + bhn)), h' = (1 - z) n + z h = n + z (h - n).
 * a: int16[H] (frac f_a), 4-byte aligned; h: int16[H] Q(abits-1), updated in place, 4-byte
 * aligned; scratch: int16[6H], 4-byte aligned.
 *
 * The elementwise part runs in 32 bits: gate_r_q15 * nh fits (|.| <= 2^15 * 2^15) and so does the
 * mix (|(1 - z) n + z h| <= 2^15 * 2^15 in Q30); sigmoid and tanh are inlined, branch-free table
 * lookups with the format conversions computed once per step. A model whose formats put rn_shift
 * outside 1..30 takes the 64-bit requantization there (a separate loop).
 * bit-exact with harness.quant.intref.nn_gru_step. */
/* The elementwise part for 16-bit activations (h is Q15, no rescaling of h), in three passes so
 * that each loop's few constants stay in registers: r, then z (each gate written over its input
 * half in scratch), then the candidate and the mix. Lookups through nn_lut_gate (its form
 * nn_lut_gate_r). */
/* A constant the compiler must keep in a register (so that x * y + c is one MLA on Arm, not MUL
 * and ADD #c); the identity elsewhere. */
static inline int32_t nn_in_reg(int32_t v) {
#if defined(__arm__) && !defined(NN_PURE_C)
    __asm__("" : "+r"(v));
#endif
    return v;
}

/* nn_lut_gate with the rounding constant passed in (see nn_in_reg). bit-exact with nn_lut_gate. */
static inline int32_t nn_lut_gate_r(int32_t x, nn_lut_map_t c, const int16_t *lut, int span_bits, int step_shift,
                                    int32_t half) {
    int32_t u = (x * c.mul + c.add) >> c.rsh;
#if defined(__ARM_FEATURE_SAT) && !defined(NN_PURE_C)
    u = __builtin_arm_usat(u, span_bits);
#else
    const int32_t top = ((int32_t)1 << span_bits) - 1;
    u = u < 0 ? 0 : u > top ? top : u;
#endif
    const int32_t idx = u >> step_shift;
    const int32_t y0 = lut[idx];
    return y0 + (((lut[idx + 1] - y0) * (u & ((1 << step_shift) - 1)) + half) >> step_shift);
}

static inline __attribute__((always_inline)) void nn_gru_elementwise_a16_body(const uint32_t H, int16_t *scratch,
                                                                             int16_t *h, nn_lut_map_t cr,
                                                                             nn_lut_map_t cz, nn_lut_map_t cn,
                                                                             int rn_shift) {
    int16_t *ri = scratch, *zi = scratch + 2 * H;
    const int16_t *rh = scratch + H, *zh = scratch + 3 * H, *ni = scratch + 4 * H, *nh = scratch + 5 * H;
    const int32_t half8 = nn_in_reg(1 << 7), half7 = nn_in_reg(1 << 6), half_mix = nn_in_reg(1 << (NN_GATE_FRAC - 1));
    for (uint32_t j = 0; j < H; j++) {
        ri[j] = (int16_t)nn_lut_gate_r(nn_sat16_inline((int32_t)ri[j] + rh[j]), cr, nn_sigmoid_lut, 16, 8, half8);
    }
    for (uint32_t j = 0; j < H; j++) {
        zi[j] = (int16_t)nn_lut_gate_r(nn_sat16_inline((int32_t)zi[j] + zh[j]), cz, nn_sigmoid_lut, 16, 8, half8);
    }
    const int32_t rn_round = (int32_t)1 << (rn_shift - 1);
    for (uint32_t j = 0; j < H; j++) {
        const int32_t gate_z_q15 = zi[j];
        const int32_t rnh = nn_sat16_inline((ri[j] * nh[j] + rn_round) >> rn_shift);
        const int32_t cand_q15 = nn_lut_gate_r(nn_sat16_inline((int32_t)ni[j] + rnh), cn, nn_tanh_lut, 15, 7, half7);
        const int32_t mix_q30 = cand_q15 * ((1 << NN_GATE_FRAC) - gate_z_q15) + (gate_z_q15 * h[j] + half_mix);
        h[j] = (int16_t)nn_sat16_inline(mix_q30 >> NN_GATE_FRAC);
    }
}

/* The body specialised where it pays: maps with rsh 0 (pre-activations at most Q12, the usual
 * case) and the usual hidden sizes, so that shifts by 0 vanish and every array is at a constant
 * offset from one pointer (fewer registers, no spills). */
__attribute__((noinline)) static void nn_gru_elementwise_a16(uint32_t H, int16_t *scratch, int16_t *h,
                                                             nn_lut_map_t cr, nn_lut_map_t cz, nn_lut_map_t cn,
                                                             int rn_shift) {
    if (cr.rsh == 0 && cz.rsh == 0 && cn.rsh == 0) {
        const nn_lut_map_t r0 = {cr.mul, cr.add, 0}, z0 = {cz.mul, cz.add, 0}, n0 = {cn.mul, cn.add, 0};
        if (H == 32u) {
            nn_gru_elementwise_a16_body(32u, scratch, h, r0, z0, n0, rn_shift);
            return;
        }
        if (H == 64u) {
            nn_gru_elementwise_a16_body(64u, scratch, h, r0, z0, n0, rn_shift);
            return;
        }
    }
    nn_gru_elementwise_a16_body(H, scratch, h, cr, cz, cn, rn_shift);
}

#if NN_BLK_DSP
#include <arm_acle.h>
/* Word access to int16 pairs; the arrays are 4-byte aligned (nn_gru_step_s16's contract). */
typedef uint32_t __attribute__((may_alias)) nn_gru_u32_t;

/* PKHBT / PKHTB (GCC writes UXTH + ORR for the C form): (lo.low, hi.low) and (lo.high, hi.high). */
static inline uint32_t nn_pk_low(uint32_t lo, uint32_t hi) {
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}
static inline uint32_t nn_pk_high(uint32_t lo, uint32_t hi) {
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(hi), "r"(lo));
    return r;
}

/* Two lookups of nn_lut_gate at once for the DSP path, from the packed table (nn_sigmoid_lutp,
 * nn_tanh_lutp): x2 holds two sat16 inputs (low, high half), the map's rsh is 0 and its mul below
 * 2^15 (so that u = x * mul + add is one SMLAxB). Returns the two results packed the same way.
 * Per lane u = usat(x * mul + add), y = lut[u >> s] + ((dy * (u & (2^s - 1)) + 2^(s-1)) >> s), dy
 * from the high half of the table word by SMLATB. One PKHBT joins the two corrections (the high
 * one's shift folded into its LSL), one the two table values, one SADD16 adds them (exact: each
 * lane's sum lies between two table entries). bit-exact with nn_lut_gate. */
static inline __attribute__((always_inline)) uint32_t nn_lut_pair_pk(uint32_t x2, int32_t mul, int32_t add,
                                                                     const uint32_t *lutp, const unsigned span_bits,
                                                                     const int step_shift) {
    const uint32_t u0 = __usat(__smlabb((int32_t)x2, mul, add), span_bits);
    const uint32_t u1 = __usat(__smlatb((int32_t)x2, mul, add), span_bits);
    const uint32_t w0 = lutp[u0 >> step_shift], w1 = lutp[u1 >> step_shift];
    const uint32_t mask = (1u << step_shift) - 1u;
    const int32_t t0 = __smlatb((int32_t)w0, (int32_t)(u0 & mask), 1 << (step_shift - 1)) >> step_shift;
    const int32_t t1 = __smlatb((int32_t)w1, (int32_t)(u1 & mask), 1 << (step_shift - 1));
    uint32_t d;
    __asm__("pkhbt %0, %1, %2, lsl %3" : "=r"(d) : "r"(t0), "r"(t1), "I"(16 - step_shift));
    return (uint32_t)__sadd16((int32_t)nn_pk_low(w0, w1), (int32_t)d);
}

/* The a16 elementwise part on the DSP extension, two hidden units per word (H even), in three passes
 * over words: (1) r, and with it the candidate's pre-activation sat16(ni + sat16((r nh + round) >>
 * rn_shift)), written over ni; (2) z, written over zi; (3) the candidate and the mix, h' =
 * sat16(((1 - z) n + z h + 2^14) >> 15) as one SMLAD per unit of (h, n) against (z, 2^15 - z) (the
 * sigmoid table stays below 2^15, so 2^15 - z fits int16; USUB16 from 0x8000 gives it per lane).
 * Saturating sums by QADD16, lookups by nn_lut_pair_pk. Maps with rsh 0 and mul < 2^15 only.
 * bit-exact with nn_gru_elementwise_a16. */
static inline __attribute__((always_inline)) void nn_gru_elementwise_a16_dsp_body(
    const uint32_t H, int16_t *scratch, int16_t *h, nn_lut_map_t cr, nn_lut_map_t cz, nn_lut_map_t cn, int rn_shift) {
    const nn_gru_u32_t *ri = (const nn_gru_u32_t *)(const void *)scratch;
    const nn_gru_u32_t *rh = (const nn_gru_u32_t *)(const void *)(scratch + H);
    nn_gru_u32_t *zi = (nn_gru_u32_t *)(void *)(scratch + 2 * H);
    const nn_gru_u32_t *zh = (const nn_gru_u32_t *)(const void *)(scratch + 3 * H);
    nn_gru_u32_t *ni = (nn_gru_u32_t *)(void *)(scratch + 4 * H);
    const nn_gru_u32_t *nh = (const nn_gru_u32_t *)(const void *)(scratch + 5 * H);
    nn_gru_u32_t *h2 = (nn_gru_u32_t *)(void *)h;
    const uint32_t n2 = H >> 1;
    const int32_t rn_round = (int32_t)1 << (rn_shift - 1);
    for (uint32_t j = 0; j < n2; j++) {
        const uint32_t r2 = nn_lut_pair_pk((uint32_t)__qadd16((int32_t)ri[j], (int32_t)rh[j]), cr.mul, cr.add,
                                           nn_sigmoid_lutp, 16, 8);
        const uint32_t nh2 = nh[j];
        const int32_t rnh0 = __ssat(__smlabb((int32_t)r2, (int32_t)nh2, rn_round) >> rn_shift, 16);
        const int32_t rnh1 = __ssat(__smlatt((int32_t)r2, (int32_t)nh2, rn_round) >> rn_shift, 16);
        ni[j] = (uint32_t)__qadd16((int32_t)ni[j], (int32_t)nn_pk_low((uint32_t)rnh0, (uint32_t)rnh1));
    }
    for (uint32_t j = 0; j < n2; j++) {
        zi[j] = nn_lut_pair_pk((uint32_t)__qadd16((int32_t)zi[j], (int32_t)zh[j]), cz.mul, cz.add, nn_sigmoid_lutp,
                               16, 8);
    }
    for (uint32_t j = 0; j < n2; j++) {
        const uint32_t c2 = nn_lut_pair_pk(ni[j], cn.mul, cn.add, nn_tanh_lutp, 15, 7);
        const uint32_t z2 = zi[j], hv = h2[j];
        const uint32_t nz2 = __usub16(0x80008000u, z2); /* 2^15 - z per lane */
        const int32_t m0 = __ssat(__smlad((int32_t)nn_pk_low(hv, c2), (int32_t)nn_pk_low(z2, nz2),
                                          1 << (NN_GATE_FRAC - 1)) >> NN_GATE_FRAC, 16);
        const int32_t m1 = __ssat(__smlad((int32_t)nn_pk_high(hv, c2), (int32_t)nn_pk_high(z2, nz2),
                                          1 << (NN_GATE_FRAC - 1)) >> NN_GATE_FRAC, 16);
        h2[j] = nn_pk_low((uint32_t)m0, (uint32_t)m1);
    }
}
/* The body with H known at compile time for the usual sizes: every array then sits at a constant
 * offset from one pointer (fewer registers, no spills). */
__attribute__((noinline)) static void nn_gru_elementwise_a16_dsp(uint32_t H, int16_t *scratch, int16_t *h,
                                                                 nn_lut_map_t cr, nn_lut_map_t cz, nn_lut_map_t cn,
                                                                 int rn_shift) {
    if (H == 32u) {
        nn_gru_elementwise_a16_dsp_body(32u, scratch, h, cr, cz, cn, rn_shift);
    } else if (H == 64u) {
        nn_gru_elementwise_a16_dsp_body(64u, scratch, h, cr, cz, cn, rn_shift);
    } else {
        nn_gru_elementwise_a16_dsp_body(H, scratch, h, cr, cz, cn, rn_shift);
    }
}
#endif

/* One gate half: W x + b to 16 bits. On the DSP extension the common case goes straight to the
 * assembly kernel (the conditions of nn_fully_connected_blk_s32's, y 4-byte aligned by the
 * contract: scratch is, and H is even there), skipping two levels of dispatch per layer. */
static inline void nn_gate_fc16(const nn_fc_q_t *fc, const int16_t *x, int16_t *y) {
#if NN_BLK_DSP
    const uint32_t out = fc->out, in_pad = fc->in_pad;
    if (fc->wb != 0 && out != 0u && (out & 3u) == 0u && in_pad != 0u && in_pad <= 64u && (in_pad & 7u) == 0u &&
        fc->shift >= 1 && fc->shift <= 31 && ((uintptr_t)y & 3u) == 0u) {
        nn_fc_blk16_m4(fc->wb, fc->bias_r, x, y, out >> 2, in_pad >> 3, fc->shift);
        return;
    }
#endif
    nn_fully_connected_q(fc, x, y, 16);
}

#if !NN_BLK_DSP
/* One gate half in the chained layout: on the Cortex-M3 the common case goes straight to the
 * 8-row assembly kernel (nn_fc_blk_chain's conditions for it), skipping a level of dispatch. */
static inline void nn_gate_chain16(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, uint32_t kx) {
#if defined(__ARM_ARCH_7M__) && !defined(NN_PURE_C)
    const uint32_t out = fc->out, in = fc->in;
    if (out != 0u && (out & 7u) == 0u && in - 8u <= 56u && (in & 7u) == 0u && fc->shift >= 1 && fc->shift <= 31 &&
        (((uintptr_t)x | (uintptr_t)y) & 3u) == 0u) {
        nn_fc_chain16x8_m3(fc->wc, fc->bias_r, x, y, out >> 3, in >> 3, fc->shift, kx);
        return;
    }
#endif
    nn_fc_blk_chain(fc, x, y, 16, kx);
}
#endif

void nn_gru_step_s16(const nn_gru_model_q_t *m, const int16_t *a, int16_t *h, int16_t *scratch) {
    const uint16_t H = m->hidden;
    int16_t *ri = scratch, *rh = scratch + H, *zi = scratch + 2 * H;
    int16_t *zh = scratch + 3 * H, *ni = scratch + 4 * H, *nh = scratch + 5 * H;
#if !NN_BLK_DSP
    if (m->r.i.wc != 0 && m->z.i.wc != 0 && m->n.i.wc != 0 && m->r.h.wc != 0 && m->z.h.wc != 0 &&
        m->n.h.wc != 0) { /* chained layout: the sum of each shared input once, not once per gate */
        const uint32_t kx_a = nn_fc_chain_kx(a, m->r.i.in), kx_h = nn_fc_chain_kx(h, m->r.h.in);
        nn_gate_chain16(&m->r.i, a, ri, kx_a);
        nn_gate_chain16(&m->r.h, h, rh, kx_h);
        nn_gate_chain16(&m->z.i, a, zi, kx_a);
        nn_gate_chain16(&m->z.h, h, zh, kx_h);
        nn_gate_chain16(&m->n.i, a, ni, kx_a);
        nn_gate_chain16(&m->n.h, h, nh, kx_h);
    } else
#endif
    {
        nn_gate_fc16(&m->r.i, a, ri);
        nn_gate_fc16(&m->r.h, h, rh);
        nn_gate_fc16(&m->z.i, a, zi);
        nn_gate_fc16(&m->z.h, h, zh);
        nn_gate_fc16(&m->n.i, a, ni);
        nn_gate_fc16(&m->n.h, h, nh);
    }
    const int up = NN_GATE_FRAC - (m->abits - 1);
    const int rn_shift = NN_GATE_FRAC + m->f_pre_nh - m->f_pre_n;
    const nn_to_q12_t cr = nn_to_q12(m->f_pre_r), cz = nn_to_q12(m->f_pre_z), cn = nn_to_q12(m->f_pre_n);
    const int abits = m->abits;
    if (rn_shift >= 1 && rn_shift <= 30 && abits == 16 && m->f_pre_r <= 27 && m->f_pre_z <= 27 &&
        m->f_pre_n <= 27 && NN_LUT_SPAN_OK(8, 16) && NN_LUT_SPAN_OK(4, 15)) {
        const nn_lut_map_t mr = nn_lut_map(m->f_pre_r, 8), mz = nn_lut_map(m->f_pre_z, 8);
        const nn_lut_map_t mn = nn_lut_map(m->f_pre_n, 4);
#if NN_BLK_DSP
        if ((H & 1u) == 0u && mr.rsh == 0 && mz.rsh == 0 && mn.rsh == 0 && mr.mul < 32768 && mz.mul < 32768 &&
            mn.mul < 32768) {
            nn_gru_elementwise_a16_dsp(H, scratch, h, mr, mz, mn, rn_shift);
            return;
        }
#endif
        nn_gru_elementwise_a16(H, scratch, h, mr, mz, mn, rn_shift);
        return;
    }
    if (rn_shift >= 1 && rn_shift <= 30) {
        const int32_t rn_round = (int32_t)1 << (rn_shift - 1);
        for (uint32_t j = 0; j < H; j++) {
            const int32_t gate_r_q15 = nn_lut_eval_q12(nn_sat16_inline((int32_t)ri[j] + rh[j]), cr, nn_sigmoid_lut, 8, 8);
            const int32_t gate_z_q15 = nn_lut_eval_q12(nn_sat16_inline((int32_t)zi[j] + zh[j]), cz, nn_sigmoid_lut, 8, 8);
            const int32_t rnh = nn_sat16_inline((gate_r_q15 * nh[j] + rn_round) >> rn_shift);
            const int32_t cand_q15 = nn_lut_eval_q12(nn_sat16_inline((int32_t)ni[j] + rnh), cn, nn_tanh_lut, 4, 7);
            const int32_t h_q15 = (int32_t)h[j] * (1 << up);
            const int32_t mix_q30 = cand_q15 * ((1 << NN_GATE_FRAC) - gate_z_q15) + gate_z_q15 * h_q15;
            const int32_t hnew_q15 = (mix_q30 + (1 << (NN_GATE_FRAC - 1))) >> NN_GATE_FRAC;
            h[j] = (int16_t)(up >= 1 ? nn_requant32(hnew_q15, up, abits) : nn_sat_bits32(hnew_q15, abits));
        }
        return;
    }
    for (uint32_t j = 0; j < H; j++) {
        const int32_t gate_r_q15 = nn_lut_eval_q12(nn_sat16_inline((int32_t)ri[j] + rh[j]), cr, nn_sigmoid_lut, 8, 8);
        const int32_t gate_z_q15 = nn_lut_eval_q12(nn_sat16_inline((int32_t)zi[j] + zh[j]), cz, nn_sigmoid_lut, 8, 8);
        const int32_t rnh = nn_requant_inline((int64_t)gate_r_q15 * nh[j], rn_shift, 16);
        const int32_t cand_q15 = nn_lut_eval_q12(nn_sat16_inline((int32_t)ni[j] + rnh), cn, nn_tanh_lut, 4, 7);
        const int32_t h_q15 = (int32_t)h[j] * (1 << up);
        const int32_t mix_q30 = cand_q15 * ((1 << NN_GATE_FRAC) - gate_z_q15) + gate_z_q15 * h_q15;
        const int32_t hnew_q15 = (mix_q30 + (1 << (NN_GATE_FRAC - 1))) >> NN_GATE_FRAC;
        h[j] = (int16_t)(up >= 1 ? nn_requant32(hnew_q15, up, abits) : nn_sat_bits32(hnew_q15, abits));
    }
}
