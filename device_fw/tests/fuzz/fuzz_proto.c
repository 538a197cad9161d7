/* fuzz_proto.c: libFuzzer target. Any byte stream into the dispatcher (and the deframer) must
 * never crash, read or write out of bounds, or hit undefined behaviour. */
#include <stddef.h>
#include <stdint.h>

#include "proto_host.h"

static uint8_t out[1 << 20];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    proto_host_session_start(out, sizeof out);
    (void)proto_host_session_feed(data, size);
    (void)proto_host_deframe(data, size, out, sizeof out);
    return 0;
}
