#include "nn.h"

/* Index of the largest value; the lowest index wins a tie. */
uint8_t nn_argmax_s32(const int32_t *x, uint8_t n) {
    uint8_t best = 0;
    for (uint8_t i = 1; i < n; i++) {
        if (x[i] > x[best]) {
            best = i;
        }
    }
    return best;
}
