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

/* The GRU loop's form of the same lookup, with fewer operations: the table coordinate
 * u = x12 + (range << 12) is (x * mul + add) >> rsh, add folding the rounding and the range offset
 * (exact: the offset is a multiple of 2^rsh); for -3 <= frac_in <= 27 nothing leaves int32
 * (|x * mul + add| < 2^30 + 2^15 + 2^14). u is clamped to [0, 2^span_bits - 1] (one USAT), not
 * to [0, span] with span = 2^span_bits: the same result, because at u = span - 1 the interpolation
 * rounds to lut[256] when the table's last step is at most 2^(step_shift - 1), which the exporter
 * checks (harness.quant.export.render_tables). bit-exact with nn_lut_eval_q12. */
typedef struct {
    int32_t mul, add, rsh;
} nn_lut_map_t;

static inline nn_lut_map_t nn_lut_map(int frac_in, int32_t range) {
    const int s = frac_in - NN_LUT_IN_FRAC;
    nn_lut_map_t c;
    c.mul = s < 0 ? (int32_t)1 << -s : 1;
    c.rsh = s > 0 ? s : 0;
    c.add = (s > 0 ? (int32_t)1 << (s - 1) : 0) + ((range << NN_LUT_IN_FRAC) << c.rsh);
    return c;
}

#define NN_LUT_SPAN_OK(range, span_bits) ((2 * (range) << NN_LUT_IN_FRAC) == (1 << (span_bits)))

static inline int32_t nn_lut_gate(int32_t x, nn_lut_map_t c, const int16_t *lut, int span_bits, int step_shift) {
    int32_t u = (x * c.mul + c.add) >> c.rsh;
#if defined(__ARM_FEATURE_SAT) && !defined(NN_PURE_C)
    u = __builtin_arm_usat(u, span_bits);
#else
    const int32_t top = ((int32_t)1 << span_bits) - 1;
    u = u < 0 ? 0 : u > top ? top : u;
#endif
    const int32_t idx = u >> step_shift;
    const int32_t y0 = lut[idx];
    return y0 + (((lut[idx + 1] - y0) * (u & ((1 << step_shift) - 1)) + (1 << (step_shift - 1))) >> step_shift);
}

static inline int16_t nn_lut_eval(int16_t x, int frac_in, const int16_t *lut, int32_t range, int step_shift) {
    return nn_lut_eval_q12(x, nn_to_q12(frac_in), lut, range, step_shift);
}
#endif
