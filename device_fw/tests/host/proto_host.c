/* proto_host.c: host-side entry points over the device protocol code, for pytest (ctypes), the
 * C test runner and the fuzzer. Not linked into firmware. */
#include <string.h>

#include "proto.h"
#include "proto_host.h"

typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    long fail_after; /* fault injection: refuse writes once this many bytes went out (-1: never) */
} buf_stream_t;

static int buf_write(void *ctx, const uint8_t *data, size_t n) {
    buf_stream_t *s = ctx;
    if (s->fail_after >= 0 && s->len + n > (size_t)s->fail_after) {
        return -1;
    }
    if (s->len + n > s->cap) {
        return -1;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return 0;
}

long proto_host_encode(uint8_t type, uint16_t seq, const uint8_t *payload, size_t len, uint8_t *out,
                       size_t cap, long fail_after) {
    buf_stream_t s = {out, cap, 0, fail_after};
    proto_stream_t st = {buf_write, &s};
    proto_status_t r = proto_frame_write(&st, type, seq, payload, len);
    return r == PROTO_OK ? (long)s.len : -(long)r;
}

uint16_t proto_host_crc16(const uint8_t *data, size_t n) { return proto_crc16(PROTO_CRC_INIT, data, n); }
uint32_t proto_host_crc32(const uint8_t *data, size_t n) { return proto_crc32(data, n); }

/* Deframe a byte stream. For each event write: status u8 | type u8 | seq u16 | len u16 | payload. */
long proto_host_deframe(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    static uint8_t rx[PROTO_MAX_FRAME];
    proto_cobs_decoder_t d;
    proto_cobs_decoder_init(&d, rx, sizeof rx);
    size_t w = 0;
    for (size_t i = 0; i < n;) { /* the buffer form (what the firmware's main loop feeds) */
        proto_cobs_event_t ev;
        i += proto_cobs_decoder_feed(&d, in + i, n - i, &ev);
        if (ev == PROTO_COBS_MORE) {
            continue;
        }
        proto_header_t h = {0};
        proto_status_t st = ev == PROTO_COBS_BAD ? PROTO_E_COBS : ev == PROTO_COBS_OVERSIZE ? PROTO_E_LENGTH
                                                                                           : proto_frame_check(rx, d.len, &h);
        size_t plen = st == PROTO_OK ? h.length : 0;
        if (w + 6 + plen > cap) {
            return -1;
        }
        out[w] = (uint8_t)st;
        out[w + 1] = h.type;
        proto_put_u16(out + w + 2, h.has_seq ? h.seq : 0xFFFFu);
        proto_put_u16(out + w + 4, (uint16_t)plen);
        memcpy(out + w + 6, rx + PROTO_HEADER_SIZE, plen);
        w += 6 + plen;
    }
    return (long)w;
}

/* A dispatcher with test handlers: Ping -> Pong echo; Infer, or Run of a window sent in Parts -> a
 * Result whose cycles field counts inferences (so a test sees whether a retry re-ran one); Part -> no
 * reply; anything else (Hello included) -> Error UNKNOWN_TYPE. */
static uint32_t g_infer_calls;
static uint8_t g_window[PROTO_MAX_PAYLOAD];
static proto_parts_t g_parts;

/* The Result of the test handler: window id, one score 0, cycles = inferences so far, CRC-32. */
static size_t test_result(const uint8_t *window_id, const uint8_t *samples, size_t nbytes, uint8_t *r) {
    g_infer_calls++;
    memcpy(r + PROTO_RESULT_OFF_WINDOW_ID, window_id, 4);
    r[PROTO_RESULT_OFF_CLS] = 0;
    r[PROTO_RESULT_OFF_SCORE_KIND] = PROTO_SCORE_INT32_Q;
    r[PROTO_RESULT_OFF_N_SCORES] = 1;
    proto_put_u32(r + PROTO_RESULT_OFF_SCORES, 0);
    uint8_t *t = r + PROTO_RESULT_OFF_SCORES + 4;
    proto_put_u32(t + PROTO_RESULT_TAIL_OFF_CYCLES, g_infer_calls);
    proto_put_u32(t + PROTO_RESULT_TAIL_OFF_INPUT_CRC, proto_crc32(samples, nbytes));
    return (size_t)(t - r) + PROTO_RESULT_TAIL_SIZE;
}

static proto_status_t test_handler(void *ctx, uint8_t type, const uint8_t *p, size_t len, uint8_t *rtype,
                                   uint8_t *reply, size_t cap, size_t *rlen) {
    (void)ctx;
    switch (type) {
    case PROTO_MSG_PING:
        if (len > cap) {
            return PROTO_E_PAYLOAD;
        }
        *rtype = PROTO_MSG_PONG;
        memcpy(reply, p, len);
        *rlen = len;
        return PROTO_OK;
    case PROTO_MSG_INFER: {
        if (len < PROTO_INFER_OFF_SAMPLES) {
            return PROTO_E_PAYLOAD;
        }
        size_t ns = (size_t)proto_get_u16(p + PROTO_INFER_OFF_N_SAMPLES) * p[PROTO_INFER_OFF_CHANNELS];
        if (len != PROTO_INFER_OFF_SAMPLES + 2u * ns) {
            return PROTO_E_PAYLOAD;
        }
        proto_parts_reset(&g_parts);
        *rtype = PROTO_MSG_RESULT;
        *rlen = test_result(p + PROTO_INFER_OFF_WINDOW_ID, p + PROTO_INFER_OFF_SAMPLES, 2u * ns, reply);
        return PROTO_OK;
    }
    case PROTO_MSG_PART: {
        /* any window shape: the test handler takes the size the part declares */
        const size_t nbytes = len < PROTO_PART_OFF_DATA ? 0u
            : (size_t)proto_get_u16(p + PROTO_PART_OFF_N_SAMPLES) * p[PROTO_PART_OFF_CHANNELS] * 2u;
        *rtype = PROTO_NO_REPLY;
        *rlen = 0;
        return proto_parts_put(&g_parts, p, len, nbytes);
    }
    case PROTO_MSG_RUN: {
        /* any window shape: the test handler takes the size the Run declares */
        const size_t nbytes = len != PROTO_RUN_SIZE ? 0u
            : (size_t)proto_get_u16(p + PROTO_RUN_OFF_N_SAMPLES) * p[PROTO_RUN_OFF_CHANNELS] * 2u;
        bool complete = false;
        const proto_status_t st = proto_parts_run(&g_parts, p, len, nbytes, &complete, reply);
        if (st != PROTO_OK || !complete) {
            *rtype = PROTO_MSG_HELD;
            *rlen = PROTO_HELD_SIZE;
            return st;
        }
        *rtype = PROTO_MSG_RESULT;
        *rlen = test_result(p + PROTO_RUN_OFF_WINDOW_ID, g_window, g_parts.nbytes, reply);
        return PROTO_OK;
    }
    default:
        return PROTO_E_UNKNOWN_TYPE;
    }
}

static proto_dispatcher_t g_disp;
static buf_stream_t g_out;

void proto_host_session_start(uint8_t *out, size_t cap) {
    g_out = (buf_stream_t){out, cap, 0, -1};
    g_infer_calls = 0;
    proto_parts_init(&g_parts, g_window, sizeof g_window);
    proto_dispatcher_init(&g_disp, (proto_stream_t){buf_write, &g_out}, test_handler, NULL);
}

long proto_host_session_feed(const uint8_t *in, size_t n) {
    /* odd chunk sizes, so that frames and COBS blocks straddle the calls of the buffer form */
    for (size_t i = 0; i < n;) {
        const size_t k = n - i < 7u ? n - i : 7u;
        if (proto_dispatch_bytes(&g_disp, in + i, k) != PROTO_OK) {
            return -1;
        }
        i += k;
    }
    return (long)g_out.len;
}


uint32_t proto_host_session_infer_calls(void) { return g_infer_calls; }
