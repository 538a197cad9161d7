#include "nn.h"
#include "nn_requant_inline.h"

/* See nn_requant_inline.h. bit-exact with harness.quant.intref.nn_requant. */
int32_t nn_requant(int64_t acc, int shift, int bits) { return nn_requant_inline(acc, shift, bits); }
