/* proto_cobs.c: byte-at-a-time COBS decoder into a fixed buffer, and its buffer form. */
#include "proto.h"

static void cobs_reset(proto_cobs_decoder_t *d) {
    d->len = 0;
    d->remaining = 0;
    d->code = 0xFF;
    d->overflow = false;
    d->started = false;
}

void proto_cobs_decoder_init(proto_cobs_decoder_t *d, uint8_t *buf, size_t cap) {
    d->buf = buf;
    d->cap = cap;
    cobs_reset(d);
}

static void cobs_put(proto_cobs_decoder_t *d, uint8_t b) {
    if (d->len >= d->cap) {
        d->overflow = true;
    } else {
        d->buf[d->len++] = b;
    }
}

proto_cobs_event_t proto_cobs_decoder_push(proto_cobs_decoder_t *d, uint8_t byte) {
    if (byte == 0) {
        proto_cobs_event_t ev = PROTO_COBS_MORE; /* empty frame (00 00): skipped, no event */
        if (d->started) {
            if (d->overflow) {
                ev = PROTO_COBS_OVERSIZE;
            } else if (d->remaining != 0) {
                ev = PROTO_COBS_BAD;
            } else {
                ev = PROTO_COBS_FRAME;
            }
        }
        size_t len = d->len;
        cobs_reset(d);
        d->len = (ev == PROTO_COBS_FRAME) ? len : 0;
        return ev;
    }
    if (!d->started) {
        d->len = 0; /* the previous frame's length stays valid only until the next byte */
    }
    d->started = true;
    if (d->remaining == 0) {
        if (d->code != 0xFF) {
            cobs_put(d, 0);
        }
        d->code = byte;
        d->remaining = (uint8_t)(byte - 1u);
    } else {
        cobs_put(d, byte);
        d->remaining--;
    }
    return PROTO_COBS_MORE;
}

size_t proto_cobs_decoder_feed(proto_cobs_decoder_t *d, const uint8_t *data, size_t n, proto_cobs_event_t *ev) {
    size_t i = 0;
    while (i < n) {
        if (d->remaining != 0u && d->started) {
            /* inside a block: data bytes until the block ends or a delimiter comes (exactly what
             * push does with them: put, remaining--), then the general step */
            uint8_t *buf = d->buf;
            size_t len = d->len;
            const size_t cap = d->cap;
            uint32_t rem = d->remaining;
            size_t end = n - i < rem ? n : i + rem;
            while (i < end) {
                const uint8_t b = data[i];
                if (b == 0u) {
                    break;
                }
                if (len < cap) {
                    buf[len++] = b;
                } else {
                    d->overflow = true;
                }
                i++;
                rem--;
            }
            d->len = len;
            d->remaining = (uint8_t)rem;
            if (i == n) {
                break;
            }
        }
        const proto_cobs_event_t e = proto_cobs_decoder_push(d, data[i++]);
        if (e != PROTO_COBS_MORE) {
            *ev = e;
            return i;
        }
    }
    *ev = PROTO_COBS_MORE;
    return i;
}
