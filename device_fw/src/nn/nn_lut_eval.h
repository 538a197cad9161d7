/* nn_lut_eval.h: the table interpolation of nn_sigmoid_s16 and nn_tanh_s16, also inlined into the
 * GRU step. All in 32 bits: |x| <= 2^15 and the format shift to Q12 is at most 15 either way. */
#ifndef NN_LUT_EVAL_H
#define NN_LUT_EVAL_H
#include "nn.h"

/* How a pre-activation format reaches Q12: x12 = ((x << lsh) + add) >> rsh, round half up. */
typedef struct {
    int32_t add;
    int8_t lsh, rsh;
} nn_to_q12_t;

static inline nn_to_q12_t nn_to_q12(int frac_in) {
    const int s = frac_in - NN_LUT_IN_FRAC;
    nn_to_q12_t c = {s > 0 ? (int32_t)1 << (s - 1) : 0, (int8_t)(s < 0 ? -s : 0), (int8_t)(s > 0 ? s : 0)};
    return c;
}

/* x (frac_in, through c) -> Q12, clamped to [-range, range] (the top maps to exactly lut[256], via
 * the table's extra entry), then linear interpolation in steps of 2^step_shift (Q12).
 * bit-exact with harness.quant.intref._lut_eval. frac_in >= -3 (the exporter checks). */
static inline int16_t nn_lut_eval_q12(int32_t x, nn_to_q12_t c, const int16_t *lut, int32_t range, int step_shift) {
    const int32_t x12 = ((x * (1 << c.lsh)) + c.add) >> c.rsh;
    const int32_t span = (2 * range) << NN_LUT_IN_FRAC;
    int32_t u = x12 + (range << NN_LUT_IN_FRAC);
    u = u < 0 ? 0 : u > span ? span : u;
    const int32_t idx = u >> step_shift;
    const int32_t frac = u & ((1 << step_shift) - 1);
    const int32_t y0 = lut[idx];
    return (int16_t)(y0 + (((lut[idx + 1] - y0) * frac + (1 << (step_shift - 1))) >> step_shift));
}

static inline int16_t nn_lut_eval(int16_t x, int frac_in, const int16_t *lut, int32_t range, int step_shift) {
    return nn_lut_eval_q12(x, nn_to_q12(frac_in), lut, range, step_shift);
}
#endif
