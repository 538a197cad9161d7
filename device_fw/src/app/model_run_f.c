/* model_run_f.c: model_infer for the float image. */
#include <string.h>

#include "model.h"

uint8_t model_infer(const int16_t *x, uint32_t *scores) {
    float logits[NN_CLASSES];
    const uint8_t cls = nn_model_infer_f32(&model_f, x, logits);
    memcpy(scores, logits, sizeof logits);
    return cls;
}

static float stream_h[MODEL_STREAM_SLOTS][NN_MAX_HIDDEN];
static float stream_a[NN_MAX_HIDDEN];
static float stream_scratch[6 * NN_MAX_HIDDEN];

void model_stream_begin(unsigned slot) {
    for (unsigned j = 0; j < NN_MAX_HIDDEN; j++) {
        stream_h[slot][j] = 0.0f;
    }
}

void model_stream_input(const int16_t *x3) { nn_input_layer_f32(&model_f, x3, stream_a); }

void model_stream_step(unsigned slot) { nn_gru_step_f32(&model_f, stream_a, stream_h[slot], stream_scratch); }

uint8_t model_stream_head(unsigned slot, uint32_t *scores) {
    float logits[NN_CLASSES];
    const uint8_t cls = nn_model_head_f32(&model_f, stream_h[slot], logits);
    memcpy(scores, logits, sizeof logits);
    return cls;
}
