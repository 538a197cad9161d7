/* model_run_q.c: model_infer for the quantized images. */
#include "model.h"

uint8_t model_infer(const int16_t *x, uint32_t *scores) {
    int32_t logits[NN_CLASSES];
    const uint8_t cls = nn_model_infer_q(&model_q, x, logits);
    for (int k = 0; k < NN_CLASSES; k++) {
        scores[k] = (uint32_t)logits[k];
    }
    return cls;
}

static int16_t stream_h[MODEL_STREAM_SLOTS][NN_MAX_HIDDEN] __attribute__((aligned(4)));
static int16_t stream_a[NN_MAX_HIDDEN] __attribute__((aligned(4)));
static int16_t stream_scratch[6 * NN_MAX_HIDDEN] __attribute__((aligned(4)));

void model_stream_begin(unsigned slot) {
    for (unsigned j = 0; j < NN_MAX_HIDDEN; j++) {
        stream_h[slot][j] = 0;
    }
}

void model_stream_input(const int16_t *x3) { nn_input_layer_s16(&model_q, x3, stream_a); }

void model_stream_step(unsigned slot) { nn_gru_step_s16(&model_q, stream_a, stream_h[slot], stream_scratch); }

uint8_t model_stream_head(unsigned slot, uint32_t *scores) {
    int32_t logits[NN_CLASSES];
    const uint8_t cls = nn_model_head_q(&model_q, stream_h[slot], logits);
    for (int k = 0; k < NN_CLASSES; k++) {
        scores[k] = (uint32_t)logits[k];
    }
    return cls;
}
