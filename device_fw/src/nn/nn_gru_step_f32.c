#include <math.h>

#include "nn.h"

/* One GRU step in float, torch semantics; within float rounding of the torch student. */
void nn_gru_step_f32(const nn_gru_model_f_t *m, const float *a, float *h, float *scratch) {
    const uint16_t H = m->hidden;
    float *gi = scratch, *gh = scratch + 3 * H;
    nn_fully_connected_f32(m->w_ih, m->b_ih, (uint16_t)(3 * H), H, a, gi);
    nn_fully_connected_f32(m->w_hh, m->b_hh, (uint16_t)(3 * H), H, h, gh);
    for (uint16_t j = 0; j < H; j++) {
        const float r = 1.0f / (1.0f + expf(-(gi[j] + gh[j])));
        const float z = 1.0f / (1.0f + expf(-(gi[H + j] + gh[H + j])));
        const float n = tanhf(gi[2 * H + j] + r * gh[2 * H + j]);
        h[j] = n + z * (h[j] - n);
    }
}
