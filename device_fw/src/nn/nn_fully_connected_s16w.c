#include "nn.h"

/* y[o] = sat(requant(sum_i w[o][i] * x[i] + bias[o], fc->shift), out_bits).
 * w: int16[out][in] (frac fw), x: int16[in] (frac fx), bias: int32 at frac fw + fx.
 * Products are int32; they accumulate in int64 (acc_q: frac fw + fx), so no layer can overflow.
 * bit-exact with harness.quant.intref.nn_fully_connected. */
void nn_fully_connected_s16w(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits) {
    const int16_t *w = fc->w16;
    for (uint16_t o = 0; o < fc->out; o++) {
        int64_t acc_q = fc->bias[o];
        const int16_t *row = w + (uint32_t)o * fc->in;
        for (uint16_t i = 0; i < fc->in; i++) {
            acc_q += (int32_t)row[i] * (int32_t)x[i];
        }
        y[o] = (int16_t)nn_requant(acc_q, fc->shift, out_bits);
    }
}
