#include "nn.h"

/* The float student's input layer on one sample: centre, FC to the hidden size, ReLU. */
void nn_input_layer_f32(const nn_gru_model_f_t *m, const int16_t *x, float *a) {
    float xc[NN_CHANNELS];
    for (int c = 0; c < NN_CHANNELS; c++) {
        xc[c] = (float)x[c] - m->mean[c];
    }
    nn_fully_connected_f32(m->w_in, m->b_in, m->hidden, NN_CHANNELS, xc, a);
    for (uint16_t j = 0; j < m->hidden; j++) {
        a[j] = a[j] > 0.0f ? a[j] : 0.0f;
    }
}

/* The float head on a final hidden state; returns the class. */
uint8_t nn_model_head_f32(const nn_gru_model_f_t *m, const float *h, float *logits) {
    float h1[NN_MAX_HIDDEN];
    nn_fully_connected_f32(m->w_h1, m->b_h1, m->hidden, m->hidden, h, h1);
    for (uint16_t j = 0; j < m->hidden; j++) {
        h1[j] = h1[j] > 0.0f ? h1[j] : 0.0f;
    }
    nn_fully_connected_f32(m->w_out, m->b_out, NN_CLASSES, m->hidden, h1, logits);
    return nn_argmax_f32(logits, NN_CLASSES);
}

/* The float student on one window of calibrated counts (float32 within tolerance of torch). */
uint8_t nn_model_infer_f32(const nn_gru_model_f_t *m, const int16_t *x, float *logits) {
    float h[NN_MAX_HIDDEN] = {0};
    float a[NN_MAX_HIDDEN];
    float scratch[6 * NN_MAX_HIDDEN];
    for (uint16_t t = 0; t < m->window; t++) {
        nn_input_layer_f32(m, x + t * NN_CHANNELS, a);
        nn_gru_step_f32(m, a, h, scratch);
    }
    return nn_model_head_f32(m, h, logits);
}
