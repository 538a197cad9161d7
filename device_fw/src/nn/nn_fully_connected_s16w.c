#include <string.h>

#include "nn.h"
#include "nn_requant_inline.h"
#if defined(__ARM_FEATURE_SIMD32) && !defined(NN_PURE_C)
#include <arm_acle.h>
#endif

/* y[o] = sat(requant(sum_i w[o][i] * x[i] + bias[o], fc->shift), out_bits).
 * w: int16[out][in] (frac fw), x: int16[in] (frac fx), bias: int32 at frac fw + fx.
 * Products are int32; they accumulate in int64 (acc_q: frac fw + fx), so no layer can overflow and
 * the order of the additions does not matter: the DSP path (two MACs per SMLALD, Cortex-M4) is
 * bit-exact with the pure C path. bit-exact with harness.quant.intref.nn_fully_connected. */
void nn_fully_connected_s16w(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits) {
    const int16_t *wp = fc->w16;
    const uint32_t n_in = fc->in;
    for (uint32_t o = 0; o < fc->out; o++) {
        int64_t acc_q = fc->bias[o];
        const int16_t *xp = x;
#if defined(__ARM_FEATURE_SIMD32) && !defined(NN_PURE_C)
        for (uint32_t n2 = n_in >> 1; n2 != 0u; n2--) {
            int16x2_t w2, x2;
            memcpy(&w2, wp, sizeof w2); /* unaligned LDR: rows of odd length start mid-word */
            memcpy(&x2, xp, sizeof x2);
            acc_q = __smlald(w2, x2, acc_q);
            wp += 2;
            xp += 2;
        }
        if (n_in & 1u) {
            acc_q += (int32_t)*wp++ * *xp++;
        }
#else
        uint32_t n4 = n_in >> 2;
        while (n4-- != 0u) { /* unrolled by 4 */
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
#endif
        y[o] = (int16_t)nn_requant_inline(acc_q, fc->shift, out_bits);
    }
}
