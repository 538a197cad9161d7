#include "nn.h"

/* Dispatch on the weight width of the layer. */
void nn_fully_connected_q(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits) {
    if (fc->w8 != 0) {
        nn_fully_connected_s8w(fc, x, y, out_bits);
    } else {
        nn_fully_connected_s16w(fc, x, y, out_bits);
    }
}
