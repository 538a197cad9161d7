#include "nn.h"
#include "nn_requant_inline.h"

/* One GRU step, torch semantics: r = sig(Wir a + bir + Whr h + bhr), z likewise,
 * n = tanh(Win a + bin + r * (Whn h + bhn)), h' = (1 - z) n + z h = n + z (h - n).
 * a: int16[H] (frac f_a); h: int16[H] Q(abits-1), updated in place; scratch: int16[6H].
 * bit-exact with harness.quant.intref.nn_gru_step. */
void nn_gru_step_s16(const nn_gru_model_q_t *m, const int16_t *a, int16_t *h, int16_t *scratch) {
    const uint16_t H = m->hidden;
    int16_t *ri = scratch, *rh = scratch + H, *zi = scratch + 2 * H;
    int16_t *zh = scratch + 3 * H, *ni = scratch + 4 * H, *nh = scratch + 5 * H;
    nn_fully_connected_q(&m->r.i, a, ri, 16);
    nn_fully_connected_q(&m->r.h, h, rh, 16);
    nn_fully_connected_q(&m->z.i, a, zi, 16);
    nn_fully_connected_q(&m->z.h, h, zh, 16);
    nn_fully_connected_q(&m->n.i, a, ni, 16);
    nn_fully_connected_q(&m->n.h, h, nh, 16);
    const int up = NN_GATE_FRAC - (m->abits - 1);
    const int rn_shift = NN_GATE_FRAC + m->f_pre_nh - m->f_pre_n;
    for (uint16_t j = 0; j < H; j++) {
        const int32_t gate_r_q15 = nn_sigmoid_s16(nn_sat16((int32_t)ri[j] + rh[j]), m->f_pre_r);
        const int32_t gate_z_q15 = nn_sigmoid_s16(nn_sat16((int32_t)zi[j] + zh[j]), m->f_pre_z);
        const int32_t rnh = nn_requant_inline((int64_t)gate_r_q15 * nh[j], rn_shift, 16);
        const int32_t cand_q15 = nn_tanh_s16(nn_sat16((int32_t)ni[j] + rnh), m->f_pre_n);
        const int64_t h_q15 = (int64_t)h[j] * ((int64_t)1 << up);
        const int64_t mix_q30 = ((int64_t)(1 << NN_GATE_FRAC) - gate_z_q15) * cand_q15 + gate_z_q15 * h_q15;
        const int32_t hnew_q15 = nn_requant_inline(mix_q30, NN_GATE_FRAC, 32);
        h[j] = (int16_t)nn_requant_inline(hnew_q15, up, m->abits);
    }
}
