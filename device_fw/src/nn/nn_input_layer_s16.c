#include "nn.h"
#include "nn_requant32_inline.h"
#include "nn_requant_inline.h"

/* The first layer on one sample: xc = sat16(x - mean), a = relu(sat(requant(W xc + b, shift))).
 * W: in the model's `in` layer (3 inputs). With the exporter's 32-bit proof (acc32, bias_r) the
 * sum stays in int32 and the rounding is folded into the bias; otherwise 64-bit as the reference.
 * bit-exact with harness.quant.intref: nn_relu(nn_fully_connected(nn_input_center(x), ...)). */
void nn_input_layer_s16(const nn_gru_model_q_t *m, const int16_t *x, int16_t *a) {
    const nn_fc_q_t *fc = &m->in;
    const int32_t x0 = nn_sat16_inline((int32_t)x[0] - m->mean[0]);
    const int32_t x1 = nn_sat16_inline((int32_t)x[1] - m->mean[1]);
    const int32_t x2 = nn_sat16_inline((int32_t)x[2] - m->mean[2]);
    const int bits = m->abits;
    if (fc->acc32 && fc->w8 != 0 && bits == 16) { /* 16-bit activations: ReLU + saturation in one USAT */
        const int8_t *w = fc->w8;
        const int32_t *b = fc->bias_r;
        const int shift = fc->shift;
        for (uint32_t o = fc->out; o != 0u; o--, w += 3) {
            *a++ = (int16_t)nn_relu_sat16_inline((*b++ + w[0] * x0 + w[1] * x1 + w[2] * x2) >> shift);
        }
        return;
    }
    if (fc->acc32 && fc->w8 != 0) {
        const int8_t *w = fc->w8;
        for (uint32_t o = 0; o < fc->out; o++, w += 3) {
            const int32_t acc = fc->bias_r[o] + w[0] * x0 + w[1] * x1 + w[2] * x2;
            const int32_t v = nn_sat_bits32(acc >> fc->shift, bits);
            a[o] = (int16_t)(v > 0 ? v : 0);
        }
        return;
    }
    const int16_t xc[NN_CHANNELS] = {(int16_t)x0, (int16_t)x1, (int16_t)x2};
    nn_fully_connected_q(fc, xc, a, bits);
    nn_relu_s16(a, fc->out);
}
