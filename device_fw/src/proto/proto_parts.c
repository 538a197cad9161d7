/* proto_parts.c: a window sent in parts. Each Part is a frame of its own (its own CRC), so a
 * damaged byte costs one part. Parts get no reply; the device keeps which parts of the (window,
 * transfer) it stages in a bitmask, and a Run that finds one missing is answered with Held (that
 * mask), so the host resends only what is missing. A Part of another (window, transfer) starts
 * staging anew. */
#include <string.h>

#include "proto.h"

void proto_parts_init(proto_parts_t *s, uint8_t *buf, size_t cap) {
    memset(s, 0, sizeof *s);
    s->buf = buf;
    s->cap = cap;
}

void proto_parts_reset(proto_parts_t *s) {
    s->nbytes = 0;
    s->have = 0;
    s->n_parts = 0;
}

static void held(const proto_parts_t *s, uint32_t window_id, uint16_t transfer, uint8_t *r) {
    const bool same = s->nbytes != 0u && s->window_id == window_id && s->transfer == transfer;
    proto_put_u32(r + PROTO_HELD_OFF_WINDOW_ID, window_id);
    proto_put_u16(r + PROTO_HELD_OFF_TRANSFER, transfer);
    r[PROTO_HELD_OFF_N_PARTS] = same ? s->n_parts : 0u;
    proto_put_u32(r + PROTO_HELD_OFF_HAVE, same ? s->have : 0u);
}

proto_status_t proto_parts_put(proto_parts_t *s, const uint8_t *p, size_t len, size_t window_bytes) {
    if (len < PROTO_PART_OFF_DATA) {
        return PROTO_E_PAYLOAD;
    }
    const uint32_t window_id = proto_get_u32(p + PROTO_PART_OFF_WINDOW_ID);
    const uint16_t transfer = proto_get_u16(p + PROTO_PART_OFF_TRANSFER);
    const size_t nbytes = (size_t)proto_get_u16(p + PROTO_PART_OFF_N_SAMPLES) * p[PROTO_PART_OFF_CHANNELS] * 2u;
    const uint16_t part_bytes = proto_get_u16(p + PROTO_PART_OFF_PART_BYTES);
    const uint8_t index = p[PROTO_PART_OFF_INDEX];
    if (nbytes != window_bytes || nbytes > s->cap || part_bytes == 0u || (part_bytes & 1u) != 0u) {
        return PROTO_E_PAYLOAD; /* another window shape than the model's, or parts that split a sample */
    }
    const size_t n_parts = (nbytes + part_bytes - 1u) / part_bytes;
    if (n_parts > PROTO_MAX_PARTS || index >= n_parts) {
        return PROTO_E_PAYLOAD;
    }
    const size_t off = (size_t)index * part_bytes;
    const size_t want = nbytes - off < part_bytes ? nbytes - off : part_bytes;
    if (len - PROTO_PART_OFF_DATA != want) {
        return PROTO_E_PAYLOAD;
    }
    if (s->nbytes == 0u || s->window_id != window_id || s->transfer != transfer || s->part_bytes != part_bytes) {
        s->nbytes = nbytes;
        s->window_id = window_id;
        s->transfer = transfer;
        s->part_bytes = part_bytes;
        s->n_parts = (uint8_t)n_parts;
        s->have = 0;
    }
    memcpy(s->buf + off, p + PROTO_PART_OFF_DATA, want);
    s->have |= 1u << index;
    return PROTO_OK;
}

proto_status_t proto_parts_run(const proto_parts_t *s, const uint8_t *p, size_t len, size_t window_bytes,
                               bool *complete, uint8_t *reply) {
    if (len != PROTO_RUN_SIZE ||
        (size_t)proto_get_u16(p + PROTO_RUN_OFF_N_SAMPLES) * p[PROTO_RUN_OFF_CHANNELS] * 2u != window_bytes) {
        return PROTO_E_PAYLOAD; /* another window shape than the model's */
    }
    const uint32_t window_id = proto_get_u32(p + PROTO_RUN_OFF_WINDOW_ID);
    const uint16_t transfer = proto_get_u16(p + PROTO_RUN_OFF_TRANSFER);
    const uint32_t all = s->n_parts >= 32u ? 0xFFFFFFFFu : (1u << s->n_parts) - 1u;
    *complete = s->nbytes != 0u && s->window_id == window_id && s->transfer == transfer && s->have == all;
    if (!*complete) {
        held(s, window_id, transfer, reply);
    }
    return PROTO_OK;
}
