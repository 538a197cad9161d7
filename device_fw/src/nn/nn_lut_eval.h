/* nn_lut_eval.h: the shared table interpolation of nn_sigmoid_s16 and nn_tanh_s16. */
#ifndef NN_LUT_EVAL_H
#define NN_LUT_EVAL_H
#include "nn.h"
#include "nn_requant_inline.h"

/* x (frac_in) -> Q12, clamp to [-range, range), table step 2^-k_step... see intref._lut_eval. */
static inline int16_t nn_lut_eval(int16_t x, int frac_in, const int16_t *lut, int32_t range, int step_shift) {
    const int32_t x12 = nn_requant_inline(x, frac_in - NN_LUT_IN_FRAC, 32);
    const int32_t lo = -(range << NN_LUT_IN_FRAC);
    const int32_t hi = (range << NN_LUT_IN_FRAC) - 1;
    if (x12 > hi) {
        return lut[256];
    }
    const int32_t u = (x12 < lo ? lo : x12) - lo;
    const int32_t idx = u >> step_shift;
    const int32_t frac = u & ((1 << step_shift) - 1);
    const int32_t y0 = lut[idx];
    const int32_t y1 = lut[idx + 1];
    return (int16_t)(y0 + (((y1 - y0) * frac + (1 << (step_shift - 1))) >> step_shift));
}
#endif
