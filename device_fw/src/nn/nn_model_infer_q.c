#include "nn.h"

/* The whole quantized student on one window of calibrated counts. logits: int32[4] in Q(f_out).
 * bit-exact with harness.quant.intref.model_forward_q. */
uint8_t nn_model_infer_q(const nn_gru_model_q_t *m, const int16_t *x, int32_t *logits) {
    /* 4-byte aligned and zero beyond the hidden size: the blocked kernels read x in pairs. */
    int16_t h[NN_MAX_HIDDEN] __attribute__((aligned(4))) = {0};
    int16_t a[NN_MAX_HIDDEN] __attribute__((aligned(4))) = {0};
    int16_t scratch[6 * NN_MAX_HIDDEN] __attribute__((aligned(4)));
    for (uint16_t t = 0; t < m->window; t++) {
        nn_input_layer_s16(m, x + t * NN_CHANNELS, a);
        nn_gru_step_s16(m, a, h, scratch);
    }
    return nn_model_head_q(m, h, logits);
}
