#include <string.h>

#include "nn.h"
#include "nn_requant_inline.h"
#if defined(__ARM_FEATURE_SIMD32) && !defined(NN_PURE_C)
#include <arm_acle.h>
#endif

/* y[o] = sat(requant(sum_i w[o][i] * x[i] + bias[o], fc->shift), out_bits).
 * w: int8[out][in] (frac fw), x: int16[in] (frac fx), bias: int32 at frac fw + fx.
 * Products are int32; they accumulate in int64 (acc_q: frac fw + fx), so no layer can overflow and
 * the order of the additions does not matter: the DSP path (SXTB16 unpacks four weights into two
 * pairs, SMLALD does two MACs, Cortex-M4) is bit-exact with the pure C path.
 * bit-exact with harness.quant.intref.nn_fully_connected. */
void nn_fully_connected_s8w(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits) {
    const int8_t *wp = fc->w8;
    const uint32_t n_in = fc->in;
    for (uint32_t o = 0; o < fc->out; o++) {
        int64_t acc_q = fc->bias[o];
        const int16_t *xp = x;
        uint32_t n4 = n_in >> 2;
#if defined(__ARM_FEATURE_SIMD32) && !defined(NN_PURE_C)
        while (n4-- != 0u) {
            uint32_t w4, x01, x23;
            memcpy(&w4, wp, sizeof w4);
            memcpy(&x01, xp, sizeof x01);
            memcpy(&x23, xp + 2, sizeof x23);
            const int16x2_t w02 = __sxtb16(w4);             /* (w0, w2) */
            const int16x2_t w13 = __sxtb16((w4 >> 8) | (w4 << 24)); /* (w1, w3): rotate right by 8 */
            const int16x2_t x02 = (int16x2_t)((x01 & 0xFFFFu) | (x23 << 16));       /* (x0, x2) */
            const int16x2_t x13 = (int16x2_t)((x01 >> 16) | (x23 & 0xFFFF0000u));   /* (x1, x3) */
            acc_q = __smlald(w02, x02, acc_q);
            acc_q = __smlald(w13, x13, acc_q);
            wp += 4;
            xp += 4;
        }
#else
        while (n4-- != 0u) { /* unrolled by 4 */
            acc_q += (int32_t)wp[0] * xp[0];
            acc_q += (int32_t)wp[1] * xp[1];
            acc_q += (int32_t)wp[2] * xp[2];
            acc_q += (int32_t)wp[3] * xp[3];
            wp += 4;
            xp += 4;
        }
#endif
        for (uint32_t r = n_in & 3u; r != 0u; r--) {
            acc_q += (int32_t)*wp++ * *xp++;
        }
        y[o] = (int16_t)nn_requant_inline(acc_q, fc->shift, out_bits);
    }
}
