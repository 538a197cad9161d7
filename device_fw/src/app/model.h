/* model.h: the model linked into this image (exactly one generated model_<variant>.c) and the
 * variant-independent entry point the application calls. */
#ifndef MODEL_H
#define MODEL_H

#include <stdint.h>

#include "nn.h"

typedef struct {
    uint8_t variant;    /* PROTO_VARIANT_* */
    uint8_t score_kind; /* PROTO_SCORE_* */
    int8_t out_frac;    /* logits frac for int32 scores */
    uint8_t hash[8];    /* reported in Info; the harness refuses a mismatch */
    uint16_t window;
    uint8_t channels;
    uint8_t hidden;
    uint8_t classes;
    const char *class_names[NN_CLASSES];
} model_desc_t;

extern const model_desc_t model_desc;
extern const nn_gru_model_q_t model_q; /* defined by quantized images only */
extern const nn_gru_model_f_t model_f; /* defined by the float image only */

/* Classify one window of calibrated counts int16[window][3]. scores: 4 raw 32-bit words
 * (int32 Q logits, or float32 bit patterns for the float image). Returns the class. */
uint8_t model_infer(const int16_t *x, uint32_t *scores);

/* Stream mode: MODEL_STREAM_SLOTS windows advance at once, one GRU state each, sharing the input
 * layer of every sample. Per sample: model_stream_input once, then model_stream_step for every
 * active slot; a slot starts from a zero state (model_stream_begin) at its window's first sample
 * and is read out by model_stream_head after its last. The results equal model_infer on the same
 * window (bit-exact for the quantized images). */
#define MODEL_STREAM_SLOTS 4
void model_stream_begin(unsigned slot);
void model_stream_input(const int16_t *x3); /* one calibrated sample int16[3] */
void model_stream_step(unsigned slot);
uint8_t model_stream_head(unsigned slot, uint32_t *scores);

#endif /* MODEL_H */
