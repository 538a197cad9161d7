/* proto_dispatch.c: bytes in, replies out. Counts every bad frame and answers it with an Error;
 * a repeated (sequence number, request type) gets the cached reply, so a retry never runs an
 * inference twice (Held replies are not cached: an incomplete Run is idempotent); a request the handler
 * leaves without a reply type (a Part) gets no reply. */
#include <string.h>

#include "proto.h"

void proto_dispatcher_init(proto_dispatcher_t *d, proto_stream_t out, proto_handler_fn handler, void *ctx) {
    memset(d, 0, sizeof *d);
    d->out = out;
    d->handler = handler;
    d->handler_ctx = ctx;
    proto_cobs_decoder_init(&d->dec, d->rx, sizeof d->rx);
}

static proto_status_t send_error(proto_dispatcher_t *d, proto_status_t code, uint16_t seq, uint16_t detail) {
    uint8_t p[PROTO_ERROR_SIZE];
    p[PROTO_ERROR_OFF_CODE] = (uint8_t)code;
    proto_put_u16(p + PROTO_ERROR_OFF_OFFENDING_SEQ, seq);
    proto_put_u16(p + PROTO_ERROR_OFF_DETAIL, detail);
    return proto_frame_write(&d->out, PROTO_MSG_ERROR, seq, p, sizeof p);
}

static void count_error(proto_counters_t *c, proto_status_t st) {
    switch (st) {
    case PROTO_E_CRC: c->crc_errors++; break;
    case PROTO_E_COBS: c->cobs_errors++; break;
    case PROTO_E_LENGTH: c->length_errors++; break;
    case PROTO_E_VERSION: c->version_errors++; break;
    case PROTO_E_UNKNOWN_TYPE: c->unknown_types++; break;
    default: c->payload_errors++; break;
    }
}

static proto_cache_entry_t *cache_find(proto_dispatcher_t *d, uint8_t type, uint16_t seq) {
    for (unsigned i = 0; i < PROTO_CACHE_ENTRIES; i++) {
        proto_cache_entry_t *e = &d->cache[i];
        if (e->valid && e->req_type == type && e->seq == seq) {
            return e;
        }
    }
    return NULL;
}

static void cache_store(proto_dispatcher_t *d, uint8_t req_type, uint16_t seq, uint8_t reply_type,
                        const uint8_t *payload, size_t len) {
    proto_cache_entry_t *e = cache_find(d, req_type, seq);
    if (e == NULL) {
        e = &d->cache[d->cache_next];
        d->cache_next = (uint8_t)((d->cache_next + 1u) % PROTO_CACHE_ENTRIES);
    }
    if (len > PROTO_CACHE_PAYLOAD) {
        e->valid = false; /* too large to cache (Pong, Info): those requests are idempotent */
        return;
    }
    e->valid = true;
    e->req_type = req_type;
    e->reply_type = reply_type;
    e->seq = seq;
    e->len = (uint16_t)len;
    memcpy(e->payload, payload, len);
}

static proto_status_t stats_reply(proto_dispatcher_t *d, uint16_t seq) {
    const proto_counters_t *c = &d->counters;
    uint8_t p[PROTO_COUNTERS_SIZE];
    proto_put_u32(p + PROTO_COUNTERS_OFF_FRAMES_OK, c->frames_ok);
    proto_put_u32(p + PROTO_COUNTERS_OFF_CRC_ERRORS, c->crc_errors);
    proto_put_u32(p + PROTO_COUNTERS_OFF_COBS_ERRORS, c->cobs_errors);
    proto_put_u32(p + PROTO_COUNTERS_OFF_LENGTH_ERRORS, c->length_errors);
    proto_put_u32(p + PROTO_COUNTERS_OFF_VERSION_ERRORS, c->version_errors);
    proto_put_u32(p + PROTO_COUNTERS_OFF_UNKNOWN_TYPES, c->unknown_types);
    proto_put_u32(p + PROTO_COUNTERS_OFF_PAYLOAD_ERRORS, c->payload_errors);
    proto_put_u32(p + PROTO_COUNTERS_OFF_RX_OVERRUNS, c->rx_overruns);
    return proto_frame_write(&d->out, PROTO_MSG_COUNTERS, seq, p, sizeof p);
}

static proto_status_t on_frame(proto_dispatcher_t *d, size_t n) {
    proto_header_t h;
    proto_status_t st = proto_frame_check(d->rx, n, &h);
    if (st != PROTO_OK) {
        count_error(&d->counters, st);
        return send_error(d, st, h.has_seq ? h.seq : 0xFFFFu, (uint16_t)n);
    }
    d->counters.frames_ok++;
    if (h.type == PROTO_MSG_STATS) {
        return h.length == 0 ? stats_reply(d, h.seq) : (d->counters.payload_errors++, send_error(d, PROTO_E_PAYLOAD, h.seq, 0));
    }
    const proto_cache_entry_t *hit = cache_find(d, h.type, h.seq);
    if (hit != NULL) {
        return proto_frame_write(&d->out, hit->reply_type, h.seq, hit->payload, hit->len);
    }
    uint8_t reply_type = 0;
    size_t reply_len = 0;
    st = d->handler(d->handler_ctx, h.type, d->rx + PROTO_HEADER_SIZE, h.length, &reply_type, d->reply,
                    sizeof d->reply, &reply_len);
    if (st == PROTO_OK && reply_len > sizeof d->reply) {
        st = PROTO_E_PAYLOAD;
    }
    if (st != PROTO_OK) {
        count_error(&d->counters, st);
        return send_error(d, st, h.seq, 0);
    }
    if (reply_type == PROTO_NO_REPLY) {
        return PROTO_OK; /* a Part: the Run after the parts is answered */
    }
    if (reply_type != PROTO_MSG_HELD) { /* Held answers an incomplete Run, which is idempotent */
        cache_store(d, h.type, h.seq, reply_type, d->reply, reply_len);
    }
    return proto_frame_write(&d->out, reply_type, h.seq, d->reply, reply_len);
}

static proto_status_t on_event(proto_dispatcher_t *d, proto_cobs_event_t ev) {
    switch (ev) {
    case PROTO_COBS_MORE:
        return PROTO_OK;
    case PROTO_COBS_FRAME:
        return on_frame(d, d->dec.len);
    case PROTO_COBS_BAD:
        d->counters.cobs_errors++;
        return send_error(d, PROTO_E_COBS, 0xFFFFu, 0);
    case PROTO_COBS_OVERSIZE:
    default:
        d->counters.length_errors++;
        return send_error(d, PROTO_E_LENGTH, 0xFFFFu, 0);
    }
}

proto_status_t proto_dispatch_byte(proto_dispatcher_t *d, uint8_t byte) {
    return on_event(d, proto_cobs_decoder_push(&d->dec, byte));
}

proto_status_t proto_dispatch_bytes(proto_dispatcher_t *d, const uint8_t *data, size_t n) {
    while (n != 0u) {
        proto_cobs_event_t ev;
        const size_t used = proto_cobs_decoder_feed(&d->dec, data, n, &ev);
        data += used;
        n -= used;
        const proto_status_t st = on_event(d, ev);
        if (st != PROTO_OK) {
            return st;
        }
    }
    return PROTO_OK;
}

proto_status_t proto_send_log(proto_dispatcher_t *d, uint8_t level, const char *text) {
    uint8_t p[1 + 120];
    size_t n = 0;
    p[0] = level;
    while (text[n] != '\0' && n < sizeof p - 1u) {
        p[1 + n] = (uint8_t)text[n];
        n++;
    }
    return proto_frame_write(&d->out, PROTO_MSG_LOG, 0, p, n + 1u);
}
