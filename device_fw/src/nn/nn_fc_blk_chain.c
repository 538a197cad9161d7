#include "nn.h"
#include "nn_requant32_inline.h"

#if !NN_BLK_DSP
/* y[o] = sat((sum_i w[o][i] * x[i] + bias_r[o]) >> shift, out_bits) from the chained layout; kx =
 * nn_fc_chain_kx(x, in). All sums modulo 2^32 (uint32_t: defined wrap-around); the exporter's
 * proof bounds every row's true value below 2^31, so the recovered int32 values are exact. */
static inline void nn_chain_store4(int16_t *y, uint32_t left, const int32_t acc[4], int shift, int out_bits) {
    for (uint32_t r = 0; r < 4u && r < left; r++) {
        y[r] = (int16_t)nn_sat_bits32(acc[r] >> shift, out_bits);
    }
}

void nn_fc_blk_chain(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits, uint32_t kx) {
#if defined(__ARM_ARCH_7M__) && !defined(NN_PURE_C)
    if (out_bits == 16 && (fc->out & 7u) == 0u && (fc->in & 7u) == 0u && fc->in <= 64u &&
        fc->shift >= 1 && fc->shift <= 31 && (((uintptr_t)y | (uintptr_t)x) & 3u) == 0u && fc->out != 0u &&
        fc->in != 0u) {
        nn_fc_chain16x8_m3(fc->wc, fc->bias_r, x, y, fc->out >> 3, fc->in >> 3, fc->shift, kx);
        return;
    }
    if (out_bits == 16 && (fc->out & 3u) == 0u && (fc->in & 7u) == 0u && ((uintptr_t)y & 3u) == 0u &&
        fc->out != 0u && fc->in != 0u) {
        nn_fc_chain16_m3(fc->wc, fc->bias_r, x, y, fc->out >> 2, fc->in >> 3, fc->shift, kx);
        return;
    }
#endif
    const uint32_t *wp = fc->wc;
    const int32_t *bp = fc->bias_r;
    const uint32_t n = fc->in;
    for (uint32_t o = 0; o < fc->out; o += 4, bp += 4) {
        uint32_t pab = (uint32_t)bp[0] - kx, pbc = (uint32_t)bp[1] - kx, pcd = (uint32_t)bp[2] - kx;
        uint32_t td = (uint32_t)bp[3];
        for (uint32_t i = 0; i < n; i++, wp += 3) {
            const uint32_t xi = (uint32_t)(int32_t)x[i];
            pab += wp[0] * xi;
            pbc += wp[1] * xi;
            pcd += wp[2] * xi;
            td += (uint32_t)((int32_t)wp[2] >> 16) * xi;
        }
        const uint32_t sc = pcd - (td << 16), sb = pbc - (sc << 16), sa = pab - (sb << 16);
        const int32_t acc[4] = {(int32_t)sa, (int32_t)sb, (int32_t)sc, (int32_t)td};
        nn_chain_store4(y + o, fc->out - o, acc, fc->shift, out_bits);
    }
}
#endif
