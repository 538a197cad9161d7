#include "nn.h"

/* The whole quantized student on one window of calibrated counts. logits: int32[4] in Q(f_out).
 * bit-exact with harness.quant.intref.model_forward_q. */
uint8_t nn_model_infer_q(const nn_gru_model_q_t *m, const int16_t *x, int32_t *logits) {
    /* 4-byte aligned and zero beyond the hidden size: the blocked kernels read x in pairs. */
    int16_t h[NN_MAX_HIDDEN] __attribute__((aligned(4))) = {0};
    int16_t a[NN_MAX_HIDDEN] __attribute__((aligned(4))) = {0};
    int16_t scratch[6 * NN_MAX_HIDDEN] __attribute__((aligned(4)));
    int16_t h1[NN_MAX_HIDDEN] __attribute__((aligned(4))) = {0};
    int16_t out[NN_CLASSES + 4];
    for (uint16_t t = 0; t < m->window; t++) {
        nn_input_layer_s16(m, x + t * NN_CHANNELS, a);
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
