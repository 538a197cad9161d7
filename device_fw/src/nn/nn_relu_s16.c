#include "nn.h"

void nn_relu_s16(int16_t *x, uint16_t n) {
    for (uint16_t i = 0; i < n; i++) {
        if (x[i] < 0) {
            x[i] = 0;
        }
    }
}
