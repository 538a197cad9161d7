#include "nn_lut_eval.h"

/* tanh: int16 in Q(frac_in) -> Q15. Table over [-4, 4), step 2^-5, linear interpolation.
 * bit-exact with harness.quant.intref.nn_tanh_s16. */
int16_t nn_tanh_s16(int16_t x, int frac_in) { return nn_lut_eval(x, frac_in, nn_tanh_lut, 4, 7); }
