#include "nn.h"

/* h1 = relu(W_h1 h + b_h1) (abits), logits = W_out h1 + b_out (16 bits, Q(f_out)), argmax.
 * bit-exact with the last three lines of harness.quant.intref.model_forward_q. */
uint8_t nn_model_head_q(const nn_gru_model_q_t *m, const int16_t *h, int32_t *logits) {
    int16_t h1[NN_MAX_HIDDEN] __attribute__((aligned(4))) = {0};
    int16_t out[NN_CLASSES + 4];
    nn_fully_connected_q(&m->h1, h, h1, m->abits);
    nn_relu_s16(h1, m->hidden);
    nn_fully_connected_q(&m->out, h1, out, 16);
    for (int k = 0; k < NN_CLASSES; k++) {
        logits[k] = out[k];
    }
    return nn_argmax_s32(logits, NN_CLASSES);
}
