/* nn_requant32_inline.h: 32-bit requantization for values the exporter or the arithmetic bounds
 * keep inside int32 (no 64-bit operation on the path). */
#ifndef NN_REQUANT32_INLINE_H
#define NN_REQUANT32_INLINE_H
#include <stdint.h>

/* Saturate to int16 (one SSAT on Arm). Equals nn_sat16. */
static inline int32_t nn_sat16_inline(int32_t v) {
#if defined(__ARM_FEATURE_SAT) && !defined(NN_PURE_C)
    return __builtin_arm_ssat(v, 16);
#else
    return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
#endif
}

/* ReLU and saturation to int16 at once: clamp to [0, 32767] (one USAT #15 on Arm). */
static inline int32_t nn_relu_sat16_inline(int32_t v) {
#if defined(__ARM_FEATURE_SAT) && !defined(NN_PURE_C)
    return __builtin_arm_usat(v, 15);
#else
    return v > 32767 ? 32767 : v < 0 ? 0 : v;
#endif
}

/* Saturate v to a signed `bits`-wide integer (SSAT for the common widths). */
static inline int32_t nn_sat_bits32(int32_t v, int bits) {
#if defined(__ARM_FEATURE_SAT) && !defined(NN_PURE_C)
    if (bits == 16) {
        return __builtin_arm_ssat(v, 16);
    }
    if (bits == 8) {
        return __builtin_arm_ssat(v, 8);
    }
#endif
    const int32_t hi = (int32_t)((1u << (bits - 1)) - 1u);
    const int32_t lo = -hi - 1;
    return v > hi ? hi : v < lo ? lo : v;
}

/* (acc + 2^(shift-1)) >> shift, saturated to `bits`; shift in [1, 31], bits in [2, 31], and
 * acc + 2^(shift-1) must not overflow int32 (the caller's bound). Equals nn_requant_inline. */
static inline int32_t nn_requant32(int32_t acc, int shift, int bits) {
    return nn_sat_bits32((acc + (int32_t)(1u << (shift - 1))) >> shift, bits);
}
#endif
