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
 * half in scratch), then the candidate and the mix. Lookups through nn_lut_gate. */
__attribute__((noinline)) static void nn_gru_elementwise_a16(uint32_t H, int16_t *scratch, int16_t *h,
                                                             nn_lut_map_t cr, nn_lut_map_t cz, nn_lut_map_t cn,
                                                             int rn_shift) {
    int16_t *ri = scratch, *zi = scratch + 2 * H;
    const int16_t *rh = scratch + H, *zh = scratch + 3 * H, *ni = scratch + 4 * H, *nh = scratch + 5 * H;
    for (uint32_t j = 0; j < H; j++) {
        ri[j] = (int16_t)nn_lut_gate(nn_sat16_inline((int32_t)ri[j] + rh[j]), cr, nn_sigmoid_lut, 16, 8);
    }
    for (uint32_t j = 0; j < H; j++) {
        zi[j] = (int16_t)nn_lut_gate(nn_sat16_inline((int32_t)zi[j] + zh[j]), cz, nn_sigmoid_lut, 16, 8);
    }
    const int32_t rn_round = (int32_t)1 << (rn_shift - 1);
    for (uint32_t j = 0; j < H; j++) {
        const int32_t gate_z_q15 = zi[j];
        const int32_t rnh = nn_sat16_inline((ri[j] * nh[j] + rn_round) >> rn_shift);
        const int32_t cand_q15 = nn_lut_gate(nn_sat16_inline((int32_t)ni[j] + rnh), cn, nn_tanh_lut, 15, 7);
        const int32_t mix_q30 = cand_q15 * ((1 << NN_GATE_FRAC) - gate_z_q15) + gate_z_q15 * h[j];
        h[j] = (int16_t)nn_sat16_inline((mix_q30 + (1 << (NN_GATE_FRAC - 1))) >> NN_GATE_FRAC);
    }
}

void nn_gru_step_s16(const nn_gru_model_q_t *m, const int16_t *a, int16_t *h, int16_t *scratch) {
    const uint16_t H = m->hidden;
    int16_t *ri = scratch, *rh = scratch + H, *zi = scratch + 2 * H;
    int16_t *zh = scratch + 3 * H, *ni = scratch + 4 * H, *nh = scratch + 5 * H;
#if !NN_BLK_DSP
    if (m->r.i.wc != 0 && m->z.i.wc != 0 && m->n.i.wc != 0 && m->r.h.wc != 0 && m->z.h.wc != 0 &&
        m->n.h.wc != 0) { /* chained layout: the sum of each shared input once, not once per gate */
        const uint32_t kx_a = nn_fc_chain_kx(a, m->r.i.in), kx_h = nn_fc_chain_kx(h, m->r.h.in);
        nn_fc_blk_chain(&m->r.i, a, ri, 16, kx_a);
        nn_fc_blk_chain(&m->r.h, h, rh, 16, kx_h);
        nn_fc_blk_chain(&m->z.i, a, zi, 16, kx_a);
        nn_fc_blk_chain(&m->z.h, h, zh, 16, kx_h);
        nn_fc_blk_chain(&m->n.i, a, ni, 16, kx_a);
        nn_fc_blk_chain(&m->n.h, h, nh, 16, kx_h);
    } else
#endif
    {
        nn_fully_connected_q(&m->r.i, a, ri, 16);
        nn_fully_connected_q(&m->r.h, h, rh, 16);
        nn_fully_connected_q(&m->z.i, a, zi, 16);
        nn_fully_connected_q(&m->z.h, h, zh, 16);
        nn_fully_connected_q(&m->n.i, a, ni, 16);
        nn_fully_connected_q(&m->n.h, h, nh, 16);
    }
    const int up = NN_GATE_FRAC - (m->abits - 1);
    const int rn_shift = NN_GATE_FRAC + m->f_pre_nh - m->f_pre_n;
    const nn_to_q12_t cr = nn_to_q12(m->f_pre_r), cz = nn_to_q12(m->f_pre_z), cn = nn_to_q12(m->f_pre_n);
    const int abits = m->abits;
    if (rn_shift >= 1 && rn_shift <= 30 && abits == 16 && m->f_pre_r <= 27 && m->f_pre_z <= 27 &&
        m->f_pre_n <= 27 && NN_LUT_SPAN_OK(8, 16) && NN_LUT_SPAN_OK(4, 15)) {
        nn_gru_elementwise_a16(H, scratch, h, nn_lut_map(m->f_pre_r, 8), nn_lut_map(m->f_pre_z, 8),
                               nn_lut_map(m->f_pre_n, 4), rn_shift);
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
