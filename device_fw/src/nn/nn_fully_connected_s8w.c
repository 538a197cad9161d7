#include "nn.h"

/* y[o] = sat(requant(sum_i w[o][i] * x[i] + bias[o], fc->shift), out_bits).
 * w: int8[out][in] (frac fw), x: int16[in] (frac fx), bias: int32 at frac fw + fx.
 * Products are int32; they accumulate in int64 (acc_q: frac fw + fx), so no layer can overflow.
 * bit-exact with harness.quant.intref.nn_fully_connected. */
void nn_fully_connected_s8w(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits) {
    const int8_t *wp = fc->w8;
    const uint32_t n_in = fc->in;
    for (uint32_t o = 0; o < fc->out; o++) {
        int64_t acc_q = fc->bias[o];
        const int16_t *xp = x;
        uint32_t n4 = n_in >> 2;
        while (n4-- != 0u) { /* unrolled by 4; exact integer adds, so any order gives the same sum */
            acc_q += (int32_t)wp[0] * xp[0];
            acc_q += (int32_t)wp[1] * xp[1];
            acc_q += (int32_t)wp[2] * xp[2];
            acc_q += (int32_t)wp[3] * xp[3];
            wp += 4;
            xp += 4;
        }
        for (uint32_t r = n_in & 3u; r != 0u; r--) {
            acc_q += (int32_t)*wp++ * *xp++;
        }
        y[o] = (int16_t)nn_requant(acc_q, fc->shift, out_bits);
    }
}
