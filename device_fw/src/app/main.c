/* main.c: the inference firmware. Bytes arrive through the UART interrupt into a ring; the main
 * loop feeds them to the protocol dispatcher, runs an inference per Infer request or per Run of a
 * window sent in Parts (window mode) or
 * advances the windows in progress per raw sample (stream mode: SetRotation, StreamStart, Samples)
 * and sleeps (WFI) when there is nothing to do. */
#include <string.h>

#include "board.h"
#include "calib.h"
#include "model.h"
#include "proto.h"

#ifndef BUILD_ID
#define BUILD_ID "unknown"
#endif

static int uart_stream_write(void *ctx, const uint8_t *data, size_t n) {
    (void)ctx;
    board_uart_write(data, n);
    return 0;
}

_Static_assert(NN_CLASSES <= PROTO_MAX_SCORES, "a Result carries at most PROTO_MAX_SCORES scores");
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "Parts are staged as wire bytes straight into window_buf: little-endian targets only"
#endif
static int16_t window_buf[256 * NN_CHANNELS];
static proto_parts_t parts; /* a window sent in parts is staged into window_buf */

/* ---- stream mode: raw samples in, orientation calibration, windows every `hop` samples ---- */
static int16_t rot_c = 1 << 14, rot_s = 0; /* identity until SetRotation */
static uint32_t calibration_id;
static struct {
    bool on;
    uint16_t hop;
    uint32_t next_seq, next_index, samples_total;
    bool valid[MODEL_STREAM_SLOTS];
    uint32_t start[MODEL_STREAM_SLOTS];
} stream;

static proto_status_t set_rotation(const uint8_t *p, size_t len, uint8_t *r, size_t *rlen) {
    if (len != PROTO_SETROTATION_SIZE) {
        return PROTO_E_PAYLOAD;
    }
    const int16_t c = (int16_t)proto_get_u16(p + PROTO_SETROTATION_OFF_COS_Q14);
    const int16_t s = (int16_t)proto_get_u16(p + PROTO_SETROTATION_OFF_SIN_Q14);
    const uint32_t norm = (uint32_t)((int32_t)c * c) + (uint32_t)((int32_t)s * s);
    const uint32_t one = 1u << 28, tol = one / 100u; /* a rotation: c^2 + s^2 within 1 % of 2^28 */
    if (norm < one - tol || norm > one + tol) {
        return PROTO_E_PAYLOAD;
    }
    rot_c = c;
    rot_s = s;
    calibration_id = proto_crc32(p, PROTO_SETROTATION_SIZE);
    memcpy(r, p, PROTO_SETROTATION_SIZE);
    proto_put_u32(r + PROTO_ROTATIONSET_OFF_CALIBRATION_ID, calibration_id);
    *rlen = PROTO_ROTATIONSET_SIZE;
    return PROTO_OK;
}

static proto_status_t stream_start(const uint8_t *p, size_t len, uint8_t *r, size_t *rlen) {
    if (len != PROTO_STREAMSTART_SIZE) {
        return PROTO_E_PAYLOAD;
    }
    const uint16_t hop = proto_get_u16(p + PROTO_STREAMSTART_OFF_HOP);
    const uint32_t slots = hop == 0u ? 0u : (model_desc.window + hop - 1u) / hop;
    if (hop == 0u || hop > model_desc.window || slots > MODEL_STREAM_SLOTS) {
        return PROTO_E_PAYLOAD; /* more windows in flight than the device keeps states for */
    }
    memset(&stream, 0, sizeof stream);
    stream.on = true;
    stream.hop = hop;
    proto_put_u16(r + PROTO_STREAMSTARTED_OFF_WINDOW, model_desc.window);
    proto_put_u16(r + PROTO_STREAMSTARTED_OFF_HOP, hop);
    r[PROTO_STREAMSTARTED_OFF_SLOTS] = (uint8_t)slots;
    *rlen = PROTO_STREAMSTARTED_SIZE;
    return PROTO_OK;
}

/* One sample at absolute index t: calibrate, shared input layer, one GRU step per window in
 * progress; a window that ends here is read out into r (returns 1) or not (returns 0). */
static unsigned stream_sample(uint32_t t, const uint8_t *raw, uint8_t *res) {
    int16_t x[NN_CHANNELS], xr[NN_CHANNELS];
    for (int c = 0; c < NN_CHANNELS; c++) {
        x[c] = (int16_t)proto_get_u16(raw + 2u * (unsigned)c);
    }
    calib_rotate_xy_q14(rot_c, rot_s, x, xr);
    model_stream_input(xr);
    if (t % stream.hop == 0u) {
        const unsigned slot = (t / stream.hop) % MODEL_STREAM_SLOTS;
        model_stream_begin(slot);
        stream.valid[slot] = true;
        stream.start[slot] = t;
    }
    unsigned done = 0;
    for (unsigned k = 0; k < MODEL_STREAM_SLOTS; k++) {
        if (!stream.valid[k]) {
            continue;
        }
        model_stream_step(k);
        if (t - stream.start[k] + 1u == model_desc.window) {
            uint32_t scores[NN_CLASSES];
            const uint8_t cls = model_stream_head(k, scores);
            proto_put_u32(res + PROTO_STREAM_RESULT_OFF_FIRST_SAMPLE, stream.start[k]);
            res[PROTO_STREAM_RESULT_OFF_CLS] = cls;
            for (int j = 0; j < NN_CLASSES; j++) {
                proto_put_u32(res + PROTO_STREAM_RESULT_OFF_SCORES + 4u * (unsigned)j, scores[j]);
            }
            stream.valid[k] = false;
            done = 1;
        }
    }
    return done;
}

static proto_status_t samples(const uint8_t *p, size_t len, uint8_t *r, size_t *rlen) {
    if (!stream.on || len < PROTO_SAMPLES_OFF_SAMPLES) {
        return PROTO_E_PAYLOAD;
    }
    const uint32_t seq = proto_get_u32(p + PROTO_SAMPLES_OFF_STREAM_SEQ);
    const uint32_t first = proto_get_u32(p + PROTO_SAMPLES_OFF_FIRST_INDEX);
    const uint8_t n = p[PROTO_SAMPLES_OFF_N_SAMPLES];
    /* at most `hop` samples per frame: then at most one window ends in it, and its reply fits the
     * reply cache, so a retried frame is answered from the cache and never processed twice */
    if (n == 0u || n > stream.hop || len != PROTO_SAMPLES_OFF_SAMPLES + 6u * n || seq < stream.next_seq ||
        first < stream.next_index) {
        return PROTO_E_PAYLOAD;
    }
    const bool gap = seq != stream.next_seq || first != stream.next_index;
    if (gap) { /* frames were lost: the windows in progress miss samples */
        for (unsigned k = 0; k < MODEL_STREAM_SLOTS; k++) {
            stream.valid[k] = false;
        }
    }
    uint8_t *res = r + PROTO_SAMPLESACK_OFF_RESULTS;
    unsigned n_res = 0;
    uint32_t cycles = 0, last = 0;
    for (unsigned i = 0; i < n; i++) {
        board_marker(true);
        board_cycles_start();
        const unsigned got = stream_sample(first + i, p + PROTO_SAMPLES_OFF_SAMPLES + 6u * i,
                                           res + n_res * (PROTO_STREAM_RESULT_OFF_SCORES + 4u * NN_CLASSES));
        last = board_cycles_stop();
        board_marker(false);
        cycles += last;
        n_res += got;
    }
    stream.next_seq = seq + 1u;
    stream.next_index = first + n;
    stream.samples_total += n;
    proto_put_u32(r + PROTO_SAMPLESACK_OFF_STREAM_SEQ, seq);
    proto_put_u32(r + PROTO_SAMPLESACK_OFF_SAMPLES_TOTAL, stream.samples_total);
    proto_put_u32(r + PROTO_SAMPLESACK_OFF_CYCLES, cycles);
    proto_put_u32(r + PROTO_SAMPLESACK_OFF_LAST_CYCLES, last);
    r[PROTO_SAMPLESACK_OFF_GAP] = gap ? 1u : 0u;
    r[PROTO_SAMPLESACK_OFF_SCORE_KIND] = model_desc.score_kind;
    r[PROTO_SAMPLESACK_OFF_N_SCORES] = NN_CLASSES;
    r[PROTO_SAMPLESACK_OFF_N_RESULTS] = (uint8_t)n_res;
    *rlen = PROTO_SAMPLESACK_OFF_RESULTS + n_res * (PROTO_STREAM_RESULT_OFF_SCORES + 4u * NN_CLASSES);
    return PROTO_OK;
}

static void put_str(uint8_t *dst, size_t cap, const char *s) {
    memset(dst, 0, cap);
    for (size_t i = 0; i < cap && s[i] != '\0'; i++) {
        dst[i] = (uint8_t)s[i];
    }
}

static size_t info_reply(uint8_t *r) {
    const board_fault_record_t *rec = board_boot_record();
    r[PROTO_INFO_OFF_PROTOCOL_VERSION] = PROTO_VERSION;
    put_str(r + PROTO_INFO_OFF_BOARD, PROTO_INFO_LEN_BOARD, board_name);
    put_str(r + PROTO_INFO_OFF_BUILD_ID, PROTO_INFO_LEN_BUILD_ID, BUILD_ID);
    memcpy(r + PROTO_INFO_OFF_MODEL_HASH, model_desc.hash, PROTO_INFO_LEN_MODEL_HASH);
    r[PROTO_INFO_OFF_VARIANT] = model_desc.variant;
    proto_put_u16(r + PROTO_INFO_OFF_WINDOW_LEN, model_desc.window);
    r[PROTO_INFO_OFF_CHANNELS] = model_desc.channels;
    r[PROTO_INFO_OFF_N_CLASSES] = model_desc.classes;
    r[PROTO_INFO_OFF_OUTPUT_FRAC_BITS] = (uint8_t)model_desc.out_frac;
    proto_put_u32(r + PROTO_INFO_OFF_CLOCK_HZ, board_clock_hz);
    r[PROTO_INFO_OFF_TIME_BASE] = board_time_base;
    proto_put_u16(r + PROTO_INFO_OFF_MAX_PAYLOAD, PROTO_MAX_PAYLOAD);
    proto_put_u32(r + PROTO_INFO_OFF_BOOT_COUNTER, rec->boot_counter);
    proto_put_u32(r + PROTO_INFO_OFF_FAULT_FLAGS, rec->flags);
    proto_put_u32(r + PROTO_INFO_OFF_FAULT_CFSR, rec->cfsr);
    proto_put_u32(r + PROTO_INFO_OFF_FAULT_HFSR, rec->hfsr);
    proto_put_u32(r + PROTO_INFO_OFF_FAULT_PC, rec->pc);
    proto_put_u32(r + PROTO_INFO_OFF_FAULT_LR, rec->lr);
    proto_put_u32(r + PROTO_INFO_OFF_STACK_USED, board_stack_used());
    proto_put_u32(r + PROTO_INFO_OFF_CALIBRATION_ID, calibration_id);
    return PROTO_INFO_SIZE;
}

/* Classify the window in window_buf (nbytes of samples as they arrived) into a Result. */
static size_t run_window(const uint8_t *window_id, size_t nbytes, uint8_t *r) {
#ifdef HIL_TEST_FAULT_AT_INFER
    /* Test images only: fault inside the Nth inference of the first boot, so a test can see the
     * window in flight named and the run go on on the rebooted device. */
    static unsigned test_infers;
    if (board_boot_record()->boot_counter == 1 && ++test_infers == HIL_TEST_FAULT_AT_INFER) {
        __asm volatile("udf #0");
    }
#endif
    uint32_t scores[NN_CLASSES];
    board_marker(true);
    board_cycles_start();
    const uint8_t cls = model_infer(window_buf, scores);
    const uint32_t cycles = board_cycles_stop();
    board_marker(false);
    memcpy(r + PROTO_RESULT_OFF_WINDOW_ID, window_id, 4);
    r[PROTO_RESULT_OFF_CLS] = cls;
    r[PROTO_RESULT_OFF_SCORE_KIND] = model_desc.score_kind;
    r[PROTO_RESULT_OFF_N_SCORES] = NN_CLASSES;
    for (int k = 0; k < NN_CLASSES; k++) {
        proto_put_u32(r + PROTO_RESULT_OFF_SCORES + 4u * (unsigned)k, scores[k]);
    }
    uint8_t *tail = r + PROTO_RESULT_OFF_SCORES + 4u * NN_CLASSES;
    proto_put_u32(tail + PROTO_RESULT_TAIL_OFF_CYCLES, cycles);
    proto_put_u32(tail + PROTO_RESULT_TAIL_OFF_INPUT_CRC, proto_crc32((const uint8_t *)window_buf, nbytes));
    return (size_t)(tail - r) + PROTO_RESULT_TAIL_SIZE;
}

static size_t window_bytes(void) { return (size_t)model_desc.window * model_desc.channels * 2u; }

static proto_status_t infer_reply(const uint8_t *p, size_t len, uint8_t *r, size_t *rlen) {
    if (len < PROTO_INFER_OFF_SAMPLES) {
        return PROTO_E_PAYLOAD;
    }
    const uint16_t n = proto_get_u16(p + PROTO_INFER_OFF_N_SAMPLES);
    const uint8_t ch = p[PROTO_INFER_OFF_CHANNELS];
    const size_t nbytes = (size_t)n * ch * 2u;
    if (n != model_desc.window || ch != model_desc.channels || len != PROTO_INFER_OFF_SAMPLES + nbytes) {
        return PROTO_E_PAYLOAD; /* wrong window shape for this model: refuse, never guess */
    }
    proto_parts_reset(&parts); /* window_buf now holds this window, not the staged parts */
    memcpy(window_buf, p + PROTO_INFER_OFF_SAMPLES, nbytes);
    *rlen = run_window(p + PROTO_INFER_OFF_WINDOW_ID, nbytes, r);
    return PROTO_OK;
}

static proto_status_t run_reply(const uint8_t *p, size_t len, uint8_t *rtype, uint8_t *r, size_t *rlen) {
    bool complete = false;
    const proto_status_t st = proto_parts_run(&parts, p, len, window_bytes(), &complete, r);
    if (st != PROTO_OK) {
        return st;
    }
    if (!complete) {
        *rtype = PROTO_MSG_HELD;
        *rlen = PROTO_HELD_SIZE;
        return PROTO_OK;
    }
    *rtype = PROTO_MSG_RESULT;
    *rlen = run_window(p + PROTO_RUN_OFF_WINDOW_ID, parts.nbytes, r);
    return PROTO_OK;
}

static proto_status_t handle(void *ctx, uint8_t type, const uint8_t *p, size_t len, uint8_t *rtype,
                             uint8_t *reply, size_t cap, size_t *rlen) {
    (void)ctx;
    switch (type) {
    case PROTO_MSG_HELLO:
        if (len != 0 || cap < PROTO_INFO_SIZE) {
            return PROTO_E_PAYLOAD;
        }
        *rtype = PROTO_MSG_INFO;
        *rlen = info_reply(reply);
        return PROTO_OK;
    case PROTO_MSG_INFER:
        *rtype = PROTO_MSG_RESULT;
        return infer_reply(p, len, reply, rlen);
    case PROTO_MSG_PART:
        *rtype = PROTO_NO_REPLY;
        *rlen = 0;
        return proto_parts_put(&parts, p, len, window_bytes());
    case PROTO_MSG_RUN:
        return run_reply(p, len, rtype, reply, rlen);
    case PROTO_MSG_SET_ROTATION:
        *rtype = PROTO_MSG_ROTATION_SET;
        return set_rotation(p, len, reply, rlen);
    case PROTO_MSG_STREAM_START:
        *rtype = PROTO_MSG_STREAM_STARTED;
        return stream_start(p, len, reply, rlen);
    case PROTO_MSG_SAMPLES:
        *rtype = PROTO_MSG_SAMPLES_ACK;
        return samples(p, len, reply, rlen);
    case PROTO_MSG_PING:
        if (len > cap) {
            return PROTO_E_PAYLOAD;
        }
        memcpy(reply, p, len);
        *rtype = PROTO_MSG_PONG;
        *rlen = len;
        return PROTO_OK;
    default:
        return PROTO_E_UNKNOWN_TYPE;
    }
}

static proto_dispatcher_t dispatcher;

int main(void) {
    board_boot_count();
    board_init();
#ifdef HIL_TEST_FAULT
    /* Test images only: fault on the first boot, so a test can see the next boot report it. */
    if (board_boot_record()->boot_counter == 1) {
        __asm volatile("udf #0");
    }
#endif
    proto_dispatcher_init(&dispatcher, (proto_stream_t){uart_stream_write, NULL}, handle, NULL);
    proto_parts_init(&parts, (uint8_t *)window_buf, sizeof window_buf);
    if (proto_send_log(&dispatcher, 1, "boot") != PROTO_OK) {
        board_system_reset();
    }
    for (;;) {
        uint8_t buf[BOARD_RX_BATCH]; /* bytes are taken from the ring in batches (board_idle) */
        board_watchdog_kick();
        dispatcher.counters.rx_overruns = board_rx_overruns();
        const size_t n = board_uart_read_some(buf, sizeof buf);
        if (n != 0u) {
            if (proto_dispatch_bytes(&dispatcher, buf, n) != PROTO_OK) {
                board_system_reset();
            }
        } else {
            board_idle();
        }
    }
}
