#include "nn.h"

/* Dispatch on the layer's weight layout (nn_fc_q_t): blocked with a proven 32-bit bound, else the
 * 64-bit reference kernel of its weight width. */
void nn_fully_connected_q(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits) {
    if (fc->wb != 0 || fc->wc != 0) {
        nn_fully_connected_blk_s32(fc, x, y, out_bits);
    } else if (fc->w8 != 0) {
        nn_fully_connected_s8w(fc, x, y, out_bits);
    } else {
        nn_fully_connected_s16w(fc, x, y, out_bits);
    }
}
