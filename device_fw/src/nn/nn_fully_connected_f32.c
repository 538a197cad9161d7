#include "nn.h"

/* y = W x + b in float. w: [out][in]. */
void nn_fully_connected_f32(const float *w, const float *b, uint16_t out, uint16_t in, const float *x, float *y) {
    for (uint16_t o = 0; o < out; o++) {
        float acc = b[o];
        const float *row = w + (uint32_t)o * in;
        for (uint16_t i = 0; i < in; i++) {
            acc += row[i] * x[i];
        }
        y[o] = acc;
    }
}
