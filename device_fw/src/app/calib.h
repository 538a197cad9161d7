/* calib.h: orientation calibration applied on the device in stream mode. */
#ifndef CALIB_H
#define CALIB_H
#include <stdint.h>

/* Rotate one raw sample int16[3] about z by (c, s) in Q14 (see calib.c). */
void calib_rotate_xy_q14(int16_t c, int16_t s, const int16_t *in, int16_t *out);
#endif
