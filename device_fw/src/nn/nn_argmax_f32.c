#include "nn.h"

uint8_t nn_argmax_f32(const float *x, uint8_t n) {
    uint8_t best = 0;
    for (uint8_t i = 1; i < n; i++) {
        if (x[i] > x[best]) {
            best = i;
        }
    }
    return best;
}
