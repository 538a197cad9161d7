/* calib.c: the orientation calibration of stream mode: one rotation about the sensor z axis. */
#include "calib.h"

/* x' = (c x - s y + 2^13) >> 14, y' = (s x + c y + 2^13) >> 14 (arithmetic shift), saturated to
 * int16; z passes through. c, s: Q14, with c^2 + s^2 near 2^28 (the harness checks), so every
 * product and sum fits int32. bit-exact with harness.data.windows.rotate_xy_q14. */
void calib_rotate_xy_q14(int16_t c, int16_t s, const int16_t *in, int16_t *out) {
    const int32_t x = in[0], y = in[1];
    const int32_t xr = (c * x - s * y + (1 << 13)) >> 14;
    const int32_t yr = (s * x + c * y + (1 << 13)) >> 14;
    out[0] = (int16_t)(xr > 32767 ? 32767 : xr < -32768 ? -32768 : xr);
    out[1] = (int16_t)(yr > 32767 ? 32767 : yr < -32768 ? -32768 : yr);
    out[2] = in[2];
}
