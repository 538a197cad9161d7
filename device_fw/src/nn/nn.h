/* nn.h: fixed-point and float kernels of the GRU-MLP student. One function per file, named after
 * the function. Every integer kernel is bit-exact with the function of the same name in
 * harness/quant/intref.py; the rounding rule is nn_requant's (round half up, then saturate). */
#ifndef NN_H
#define NN_H

#include <stdint.h>

#define NN_GATE_FRAC 15   /* sigmoid / tanh outputs: Q15 */
#define NN_LUT_IN_FRAC 12 /* activation inputs are brought to Q12 for the table */
#define NN_MAX_HIDDEN 64
#include "model_dims.h" /* NN_CLASSES, NN_CHANNELS of the model: written by `hil export` */
#if NN_CLASSES < 2
#error "NN_CLASSES: a classifier has at least 2 classes"
#endif

/* A fully connected layer: y = sat(requant(W x + b, shift), out_bits).
 * W: [out][in], frac fw; x: int16[in], frac fx; bias: int32[out] at frac fw + fx;
 * shift = fw + fx - fo. Exactly one weight layout is set:
 *   w8 / w16: row-major int8 / int16, with bias; any shift; 64-bit accumulation
 *             (nn_fully_connected_s8w / _s16w, the reference kernels);
 *   wb:       blocked for nn_fully_connected_blk_s32: rows in blocks of 4 (out padded with zero
 *             rows to a multiple of 4), inputs in pairs (in padded with zeros to in_pad, even);
 *             per block, per input pair i: w[o][i] w[o][i+1] for o = the block's 4 rows; int16
 *             containers whatever the weight width; with bias_r = bias + 2^(shift-1) (the
 *             rounding folded in, int32[out padded]). The exporter uses it only where it proved
 *             |bias_r| + sum |w| max|x| < 2^31 for every row (acc32 = 1) and shift >= 1;
 *             the layout of cores with the DSP extension (NN_BLK_DSP: two MACs per SMLAD);
 *   wc:       the chained layout of the same blocks for cores without it (NN_BLK_DSP 0: the
 *             Cortex-M3, and host builds): per block of rows a, b, c, d, per input i, three
 *             words (w_a + 2^15) + 2^16 w_b, (w_b + 2^15) + 2^16 w_c, (w_c + 2^15) + 2^16 w_d
 *             (mod 2^32; the low half made non-negative by the offset 2^15, the high half w
 *             itself, so ASR #16 of the third word is w_d). One MLA per word gives, modulo 2^32,
 *             S_a + 2^15 X + 2^16 S_b and so on (X = sum x), so with S_d exact from the high
 *             half, S_c, S_b, S_a follow by subtraction, exact because the proof bounds them;
 *             4 MACs in 4 MLA + 1 ASR. bias_r holds per block b_a + 2^16 b_b, b_b + 2^16 b_c,
 *             b_c + 2^16 b_d, b_d (mod 2^32; b = bias + 2^(shift-1)), the kernel subtracting
 *             2^15 X from the first three; in is not padded. Same proof, same results as wb. */
typedef struct {
    const int8_t *w8;
    const int16_t *w16;
    const int32_t *bias;
    uint16_t out;
    uint16_t in;
    int8_t shift;
    const int16_t *wb;
    const int32_t *bias_r;
    uint16_t in_pad;
    uint8_t acc32;
    const uint32_t *wc;
} nn_fc_q_t;

/* Which blocked layout the generated models carry for this build (see nn_fc_q_t). */
#if defined(__ARM_FEATURE_SIMD32) && !defined(NN_PURE_C)
#define NN_BLK_DSP 1
#else
#define NN_BLK_DSP 0
#endif

typedef struct {
    nn_fc_q_t i; /* input half: W_i a + b_i, to the gate pre-activation format */
    nn_fc_q_t h; /* hidden half: W_h h + b_h */
} nn_gate_q_t;

typedef struct {
    uint16_t hidden;
    uint16_t window;
    uint8_t abits;       /* activation bit width (h is Q(abits-1)) */
    int16_t mean[NN_CHANNELS];
    nn_fc_q_t in;        /* input layer, normalisation gain folded in */
    nn_gate_q_t r, z, n;
    int8_t f_pre_r, f_pre_z, f_pre_n, f_pre_nh;
    int8_t f_out;        /* logits frac */
    nn_fc_q_t h1, out;
} nn_gru_model_q_t;

typedef struct {
    uint16_t hidden;
    uint16_t window;
    float mean[NN_CHANNELS];
    const float *w_in, *b_in;                   /* [H][3], [H]: gain folded in */
    const float *w_ih, *b_ih, *w_hh, *b_hh;     /* [3H][H], [3H]: gates r, z, n (torch order) */
    const float *w_h1, *b_h1, *w_out, *b_out;   /* [H][H], [H], [4][H], [4] */
} nn_gru_model_f_t;

/* Interpolation tables: 257 entries, Q15 (generated/nn_tables.c, from intref.py), plus a copy of
 * the last entry so that the top of the range needs no branch. */
extern const int16_t nn_sigmoid_lut[258];
extern const int16_t nn_tanh_lut[258];
/* The same tables packed, one word per step: lut[i] (low half) and lut[i + 1] - lut[i] (high half). */
extern const uint32_t nn_sigmoid_lutp[256];
extern const uint32_t nn_tanh_lutp[256];

int32_t nn_requant(int64_t acc, int shift, int bits);
int16_t nn_sat16(int32_t v);
void nn_fully_connected_s8w(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits);
void nn_fully_connected_s16w(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits);
void nn_fully_connected_q(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits);
/* Blocked layout, 32-bit accumulators (see nn_fc_q_t). x: int16[in_pad], 4-byte aligned, zero
 * beyond in; y: int16[out]. bit-exact with harness.quant.intref.nn_fully_connected. */
void nn_fully_connected_blk_s32(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits);
#if NN_BLK_DSP
/* Cortex-M4 assembly for the wb layout's common case (out_bits 16, out a multiple of 4, in_pad a
 * multiple of 8 and at most 64, y 4-byte aligned); n_blocks = out / 4 >= 1, n8 = in_pad / 8 in 1..8,
 * shift in 1..31. */
void nn_fc_blk16_m4(const int16_t *wb, const int32_t *bias_r, const int16_t *x, int16_t *y, uint32_t n_blocks,
                    uint32_t n8, int32_t shift);
#else
/* The chained layout with kx = nn_fc_chain_kx(x, fc->in) given, so that the layers sharing one x
 * (the three gates' input or hidden halves) compute it once. */
void nn_fc_blk_chain(const nn_fc_q_t *fc, const int16_t *x, int16_t *y, int out_bits, uint32_t kx);
uint32_t nn_fc_chain_kx(const int16_t *x, uint32_t n);
#if defined(__ARM_ARCH_7M__) && !defined(NN_PURE_C)
/* Cortex-M3 assembly for the wc layout's common case (out_bits 16, out a multiple of 4, in a
 * multiple of 8, y 4-byte aligned); n_blocks = out / 4, n8 = in / 8, both >= 1. */
void nn_fc_chain16_m3(const uint32_t *wc, const int32_t *init, const int16_t *x, int16_t *y, uint32_t n_blocks,
                      uint32_t n8, int32_t shift, uint32_t kx);
/* The same, two blocks per pass (out a multiple of 8, in a multiple of 8 and at most 64, x and y
 * 4-byte aligned); n_pairs = out / 8, n8 = in / 8, both >= 1; shift in 1..31. */
void nn_fc_chain16x8_m3(const uint32_t *wc, const int32_t *init, const int16_t *x, int16_t *y, uint32_t n_pairs,
                        uint32_t n8, int32_t shift, uint32_t kx);
#endif
#endif
/* The first layer of the student: centre the 3 counts, FC to the hidden size, ReLU.
 * x: int16[3] counts; a: int16[hidden] (frac f_a, abits). bit-exact with
 * nn_relu(nn_fully_connected(nn_input_center(x), ...)) in harness.quant.intref. */
void nn_input_layer_s16(const nn_gru_model_q_t *m, const int16_t *x, int16_t *a);
void nn_relu_s16(int16_t *x, uint16_t n);
int16_t nn_sigmoid_s16(int16_t x, int frac_in);
int16_t nn_tanh_s16(int16_t x, int frac_in);
/* One GRU step; h updated in place. scratch: int16[6 * hidden]. */
void nn_gru_step_s16(const nn_gru_model_q_t *m, const int16_t *a, int16_t *h, int16_t *scratch);
uint8_t nn_argmax_s32(const int32_t *x, uint8_t n);
uint8_t nn_argmax_f32(const float *x, uint8_t n);

void nn_fully_connected_f32(const float *w, const float *b, uint16_t out, uint16_t in, const float *x, float *y);
/* One GRU step in float (torch semantics); scratch: float[6 * hidden]. */
void nn_gru_step_f32(const nn_gru_model_f_t *m, const float *a, float *h, float *scratch);

/* The head on a final hidden state: h1 = relu(W_h1 h + b_h1), logits = W_out h1 + b_out; returns
 * the class. h: 4-byte aligned, zero beyond hidden. bit-exact with the end of
 * harness.quant.intref.model_forward_q. */
uint8_t nn_model_head_q(const nn_gru_model_q_t *m, const int16_t *h, int32_t *logits);
/* The float student's input layer (centre, FC, ReLU) on one sample and its head. */
void nn_input_layer_f32(const nn_gru_model_f_t *m, const int16_t *x, float *a);
uint8_t nn_model_head_f32(const nn_gru_model_f_t *m, const float *h, float *logits);

/* Whole-window inference. x: int16[window][3] calibrated counts, sample-major. */
uint8_t nn_model_infer_q(const nn_gru_model_q_t *m, const int16_t *x, int32_t *logits);
uint8_t nn_model_infer_f32(const nn_gru_model_f_t *m, const int16_t *x, float *logits);

#endif /* NN_H */
