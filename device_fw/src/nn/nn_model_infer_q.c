#include "nn.h"

/* The whole quantized student on one window of calibrated counts. logits: int32[4] in Q(f_out).
 * bit-exact with harness.quant.intref.model_forward_q. */
uint8_t nn_model_infer_q(const nn_gru_model_q_t *m, const int16_t *x, int32_t *logits) {
    int16_t h[NN_MAX_HIDDEN] = {0};
    int16_t a[NN_MAX_HIDDEN];
    int16_t scratch[6 * NN_MAX_HIDDEN];
    int16_t h1[NN_MAX_HIDDEN];
    int16_t out[NN_CLASSES];
    for (uint16_t t = 0; t < m->window; t++) {
        int16_t xc[NN_CHANNELS];
        for (int c = 0; c < NN_CHANNELS; c++) {
            xc[c] = nn_sat16((int32_t)x[t * NN_CHANNELS + c] - m->mean[c]);
        }
        nn_fully_connected_q(&m->in, xc, a, m->abits);
        nn_relu_s16(a, m->hidden);
        nn_gru_step_s16(m, a, h, scratch);
    }
    nn_fully_connected_q(&m->h1, h, h1, m->abits);
    nn_relu_s16(h1, m->hidden);
    nn_fully_connected_q(&m->out, h1, out, 16);
    for (int k = 0; k < NN_CLASSES; k++) {
        logits[k] = out[k];
    }
    return nn_argmax_s32(logits, NN_CLASSES);
}
