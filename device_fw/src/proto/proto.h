/* proto.h: the wire protocol on the device: CRC, byte-at-a-time COBS decoder, streaming frame
 * writer and a request dispatcher with a reply cache. No malloc; every length is bounded by the
 * constants in generated/proto_defs.h, which is generated from the Python declarations. */
#ifndef PROTO_H
#define PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto_defs.h"

#define PROTO_WUR __attribute__((warn_unused_result))

typedef enum {
    PROTO_OK = 0,
    PROTO_E_CRC = PROTO_ERR_CRC,
    PROTO_E_COBS = PROTO_ERR_COBS,
    PROTO_E_LENGTH = PROTO_ERR_LENGTH,
    PROTO_E_VERSION = PROTO_ERR_VERSION,
    PROTO_E_UNKNOWN_TYPE = PROTO_ERR_UNKNOWN_TYPE,
    PROTO_E_PAYLOAD = PROTO_ERR_PAYLOAD,
    PROTO_E_STREAM = 0x20, /* the output stream refused bytes */
    PROTO_E_ARG = 0x21,    /* a caller passed an impossible argument */
} proto_status_t;

/* Output stream: the same code writes to a UART, a buffer in a host test, or a fuzzer sink. */
typedef struct {
    int (*write)(void *ctx, const uint8_t *data, size_t n); /* returns 0 on success */
    void *ctx;
} proto_stream_t;

/* ---- CRC-16/CCITT-FALSE (frames), bit-exact with protocol.crc.crc16_ccitt ---- */
uint16_t proto_crc16(uint16_t crc, const uint8_t *data, size_t n);
/* ---- CRC-32/ISO-HDLC (end-to-end check of Infer samples), bit-exact with protocol.crc.crc32_input ---- */
uint32_t proto_crc32(const uint8_t *data, size_t n);

/* ---- little-endian field access ---- */
static inline uint16_t proto_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t proto_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void proto_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void proto_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

/* ---- COBS decoder: mirrors protocol.cobs.CobsStreamDecoder step for step ---- */
typedef enum {
    PROTO_COBS_MORE = 0,     /* byte consumed, no frame yet */
    PROTO_COBS_FRAME,        /* delimiter: buf[0..len) holds a decoded frame */
    PROTO_COBS_BAD,          /* delimiter inside a COBS block */
    PROTO_COBS_OVERSIZE,     /* more than cap decoded bytes before the delimiter */
} proto_cobs_event_t;

typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    uint8_t remaining;
    uint8_t code;
    bool overflow;
    bool started;
} proto_cobs_decoder_t;

void proto_cobs_decoder_init(proto_cobs_decoder_t *d, uint8_t *buf, size_t cap);
/* Feed one byte. After PROTO_COBS_FRAME, d->len is valid until the next call. */
proto_cobs_event_t proto_cobs_decoder_push(proto_cobs_decoder_t *d, uint8_t byte);
/* Feed bytes from data[0..n) as proto_cobs_decoder_push would, one by one, stopping after the first
 * byte whose event is not PROTO_COBS_MORE: returns how many were consumed, the event in *ev (MORE
 * when all n were consumed without one). The bytes inside a COBS block are copied in one loop. */
size_t proto_cobs_decoder_feed(proto_cobs_decoder_t *d, const uint8_t *data, size_t n, proto_cobs_event_t *ev);

/* ---- frames ---- */
typedef struct {
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    uint16_t length;
    bool has_seq; /* false when the frame was too short to carry a header */
} proto_header_t;

/* Check a decoded frame in the order protocol.messages.decode_frame does: length, CRC, version,
 * length field, type. Fills *h as far as the frame allows. */
PROTO_WUR proto_status_t proto_frame_check(const uint8_t *raw, size_t n, proto_header_t *h);

/* COBS-encode header + payload + CRC + delimiter through the stream, with no frame-sized buffer. */
PROTO_WUR proto_status_t proto_frame_write(const proto_stream_t *out, uint8_t type, uint16_t seq,
                                           const uint8_t *payload, size_t len);

/* ---- dispatcher ---- */
typedef struct {
    uint32_t frames_ok, crc_errors, cobs_errors, length_errors;
    uint32_t version_errors, unknown_types, payload_errors, rx_overruns;
} proto_counters_t;

/* Handle one valid request. Write the reply type and payload; return PROTO_OK, or
 * PROTO_E_UNKNOWN_TYPE / PROTO_E_PAYLOAD to have the dispatcher answer with an Error. A reply type
 * of PROTO_NO_REPLY sends nothing (a Part: the Run after the parts is what gets answered). */
#define PROTO_NO_REPLY 0x00u
typedef proto_status_t (*proto_handler_fn)(void *ctx, uint8_t type, const uint8_t *payload, size_t len,
                                           uint8_t *reply_type, uint8_t *reply, size_t reply_cap,
                                           size_t *reply_len);

#define PROTO_CACHE_ENTRIES 4u
#define PROTO_CACHE_PAYLOAD 64u

typedef struct {
    bool valid;
    uint8_t req_type;
    uint8_t reply_type;
    uint16_t seq;
    uint16_t len;
    uint8_t payload[PROTO_CACHE_PAYLOAD];
} proto_cache_entry_t;

typedef struct {
    proto_cobs_decoder_t dec;
    uint8_t rx[PROTO_MAX_FRAME];
    uint8_t reply[PROTO_MAX_PAYLOAD];
    proto_stream_t out;
    proto_handler_fn handler;
    void *handler_ctx;
    proto_counters_t counters;
    proto_cache_entry_t cache[PROTO_CACHE_ENTRIES];
    uint8_t cache_next;
} proto_dispatcher_t;

void proto_dispatcher_init(proto_dispatcher_t *d, proto_stream_t out, proto_handler_fn handler, void *ctx);
/* Feed one received byte; answers complete frames through the output stream.
 * Returns PROTO_E_STREAM if the reply could not be written, PROTO_OK otherwise. */
PROTO_WUR proto_status_t proto_dispatch_byte(proto_dispatcher_t *d, uint8_t byte);
/* Feed n received bytes, as n calls of proto_dispatch_byte would (stopping at the first error). */
PROTO_WUR proto_status_t proto_dispatch_bytes(proto_dispatcher_t *d, const uint8_t *data, size_t n);
/* Send a Log frame (level, text) between replies. */
PROTO_WUR proto_status_t proto_send_log(proto_dispatcher_t *d, uint8_t level, const char *text);

/* ---- parts: a window sent in parts (Part, Run, Held), staged into the application's buffer ---- */
typedef struct {
    uint8_t *buf;       /* the window's sample bytes (int16 LE, sample-major) */
    size_t cap;
    size_t nbytes;      /* bytes of the window staged now (0: none) */
    uint32_t window_id;
    uint16_t transfer;
    uint16_t part_bytes;
    uint8_t n_parts;
    uint32_t have;      /* bit i: part i arrived */
} proto_parts_t;

void proto_parts_init(proto_parts_t *s, uint8_t *buf, size_t cap);
/* Forget the staged window (another path wrote the buffer). */
void proto_parts_reset(proto_parts_t *s);
/* Take one Part payload; `window_bytes` is the size of the model's window in bytes (a Part of
 * another shape is refused with PROTO_E_PAYLOAD). A Part gets no reply. */
PROTO_WUR proto_status_t proto_parts_put(proto_parts_t *s, const uint8_t *p, size_t len, size_t window_bytes);
/* A Run payload: PROTO_E_PAYLOAD for a window shape other than `window_bytes`; else *complete is
 * true when every part of that (window, transfer) is staged, and otherwise a Held reply
 * (PROTO_HELD_SIZE bytes) is written into `reply`. */
PROTO_WUR proto_status_t proto_parts_run(const proto_parts_t *s, const uint8_t *p, size_t len, size_t window_bytes,
                                         bool *complete, uint8_t *reply);

#endif /* PROTO_H */
