/* proto_host.h: host-only entry points over the protocol code (pytest via ctypes, fuzzer). */
#ifndef PROTO_HOST_H
#define PROTO_HOST_H
#include <stddef.h>
#include <stdint.h>

long proto_host_encode(uint8_t type, uint16_t seq, const uint8_t *payload, size_t len, uint8_t *out,
                       size_t cap, long fail_after);
uint16_t proto_host_crc16(const uint8_t *data, size_t n);
uint32_t proto_host_crc32(const uint8_t *data, size_t n);
long proto_host_deframe(const uint8_t *in, size_t n, uint8_t *out, size_t cap);
void proto_host_session_start(uint8_t *out, size_t cap);
long proto_host_session_feed(const uint8_t *in, size_t n);
uint32_t proto_host_session_infer_calls(void);
#endif
