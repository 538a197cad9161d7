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
