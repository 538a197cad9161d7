/* proto_frame.c: frame checks and the streaming COBS frame writer. */
#include "proto.h"

proto_status_t proto_frame_check(const uint8_t *raw, size_t n, proto_header_t *h) {
    h->has_seq = false;
    if (n < PROTO_HEADER_SIZE + PROTO_CRC_SIZE) {
        return PROTO_E_LENGTH;
    }
    h->version = raw[PROTO_HDR_OFF_VERSION];
    h->type = raw[PROTO_HDR_OFF_TYPE];
    h->seq = proto_get_u16(raw + PROTO_HDR_OFF_SEQ);
    h->length = proto_get_u16(raw + PROTO_HDR_OFF_LENGTH);
    h->has_seq = true;
    size_t body = n - PROTO_CRC_SIZE;
    if (proto_crc16(PROTO_CRC_INIT, raw, body) != proto_get_u16(raw + body)) {
        return PROTO_E_CRC;
    }
    if (h->version != PROTO_VERSION) {
        return PROTO_E_VERSION;
    }
    if ((size_t)h->length != body - PROTO_HEADER_SIZE) {
        return PROTO_E_LENGTH;
    }
    return PROTO_MSG_KNOWN(h->type) ? PROTO_OK : PROTO_E_UNKNOWN_TYPE; /* generated from MsgType */
}

/* Streaming COBS encoder: holds one block (at most 254 data bytes) at a time. */
typedef struct {
    const proto_stream_t *out;
    uint8_t block[255]; /* block[0] is the code byte */
    uint8_t n;          /* data bytes in block */
    bool failed;
} cobs_enc_t;

static void enc_flush(cobs_enc_t *e) {
    e->block[0] = (uint8_t)(e->n + 1u);
    if (!e->failed && e->out->write(e->out->ctx, e->block, (size_t)e->n + 1u) != 0) {
        e->failed = true;
    }
    e->n = 0;
}

static void enc_bytes(cobs_enc_t *e, const uint8_t *p, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (p[i] == 0) {
            enc_flush(e);
        } else {
            e->block[1u + e->n++] = p[i];
            if (e->n == 254u) {
                enc_flush(e);
            }
        }
    }
}

proto_status_t proto_frame_write(const proto_stream_t *out, uint8_t type, uint16_t seq,
                                 const uint8_t *payload, size_t len) {
    if (len > PROTO_MAX_PAYLOAD || (len > 0 && payload == NULL)) {
        return PROTO_E_ARG;
    }
    uint8_t hdr[PROTO_HEADER_SIZE];
    hdr[PROTO_HDR_OFF_VERSION] = PROTO_VERSION;
    hdr[PROTO_HDR_OFF_TYPE] = type;
    proto_put_u16(hdr + PROTO_HDR_OFF_SEQ, seq);
    proto_put_u16(hdr + PROTO_HDR_OFF_LENGTH, (uint16_t)len);
    uint16_t crc = proto_crc16(PROTO_CRC_INIT, hdr, sizeof hdr);
    crc = proto_crc16(crc, payload, len);
    uint8_t crc_le[2];
    proto_put_u16(crc_le, crc);
    cobs_enc_t e = {.out = out, .n = 0, .failed = false};
    enc_bytes(&e, hdr, sizeof hdr);
    enc_bytes(&e, payload, len);
    enc_bytes(&e, crc_le, sizeof crc_le);
    /* A block ending exactly at 254 bytes was flushed with code 0xFF; COBS then needs no extra
     * block, but an empty final block (code 0x01) is what the Python encoder emits too. */
    enc_flush(&e);
    static const uint8_t delim = 0;
    if (!e.failed && out->write(out->ctx, &delim, 1) != 0) {
        e.failed = true;
    }
    return e.failed ? PROTO_E_STREAM : PROTO_OK;
}
