#include "nn_lut_eval.h"

/* sigmoid: int16 in Q(frac_in) -> Q15 (1.0 saturates to 32767). Table over [-8, 8), step 2^-4,
 * linear interpolation. bit-exact with harness.quant.intref.nn_sigmoid_s16. */
int16_t nn_sigmoid_s16(int16_t x, int frac_in) { return nn_lut_eval(x, frac_in, nn_sigmoid_lut, 8, 8); }
