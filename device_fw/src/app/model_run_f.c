/* model_run_f.c: model_infer for the float image. */
#include <string.h>

#include "model.h"

uint8_t model_infer(const int16_t *x, uint32_t *scores) {
    float logits[NN_CLASSES];
    const uint8_t cls = nn_model_infer_f32(&model_f, x, logits);
    memcpy(scores, logits, sizeof logits);
    return cls;
}
