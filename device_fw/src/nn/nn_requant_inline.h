/* nn_requant_inline.h: the body of nn_requant, inlined into the kernels' inner loops (it runs once
 * per output element). nn_requant.c exports the same function for callers outside the kernels. */
#ifndef NN_REQUANT_INLINE_H
#define NN_REQUANT_INLINE_H
#include <stdint.h>

/* Shift right by shift > 0 rounding half up (arithmetic shift), or left by -shift (saturating
 * first so the shift cannot overflow), then saturate to a signed `bits`-wide integer.
 * bit-exact with harness.quant.intref.nn_requant. bits in [2, 32], shift in [-30, 62]. */
static inline int32_t nn_requant_inline(int64_t acc, int shift, int bits) {
    int64_t v;
    if (shift > 0) {
        v = (acc + ((int64_t)1 << (shift - 1))) >> shift;
    } else {
        const int64_t lim = (int64_t)1 << (62 + shift);
        if (acc < -lim) {
            acc = -lim;
        } else if (acc > lim - 1) {
            acc = lim - 1;
        }
        v = acc * ((int64_t)1 << -shift);
    }
    const int64_t hi = ((int64_t)1 << (bits - 1)) - 1;
    const int64_t lo = -hi - 1;
    return (int32_t)(v > hi ? hi : v < lo ? lo : v);
}
#endif
