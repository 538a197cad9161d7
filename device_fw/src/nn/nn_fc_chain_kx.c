#include "nn.h"

#if !NN_BLK_DSP
/* 2^15 (the chained layout's offset) times the sum of x[0..n), modulo 2^32 (nn.h, wc). */
uint32_t nn_fc_chain_kx(const int16_t *x, uint32_t n) {
    uint32_t sum = 0, i = 0;
    for (; i + 4u <= n; i += 4u) {
        sum += (uint32_t)((int32_t)x[i] + x[i + 1] + x[i + 2] + x[i + 3]);
    }
    for (; i < n; i++) {
        sum += (uint32_t)(int32_t)x[i];
    }
    return sum << 15; /* CHAIN_OFFSET * sum x, mod 2^32 */
}
#endif
