/* calib_main.c: time-base calibration image. Times a loop of exactly 2 instructions per
 * iteration (subs + bne) with the board's time base and reports the tick count in a Log frame,
 * so a test can check the board table's ticks-per-instruction factor for the QEMU machine. */
#include "board.h"
#include "proto.h"

#define ITERS 1000000u

static char *put_u32(char *p, uint32_t v) {
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    while (n > 0) {
        *p++ = tmp[--n];
    }
    return p;
}

static int uart_write(void *ctx, const uint8_t *data, size_t n) {
    (void)ctx;
    board_uart_write(data, n);
    return 0;
}

int main(void) {
    board_init();
    board_cycles_start();
    uint32_t n = ITERS;
    __asm volatile("1: subs %0, %0, #1\n bne 1b\n" : "+r"(n));
    const uint32_t ticks = board_cycles_stop();
    char text[64] = "calib ticks=";
    char *p = put_u32(text + 12, ticks);
    const char *mid = " instructions=";
    while (*mid != '\0') {
        *p++ = *mid++;
    }
    *put_u32(p, 2u * ITERS) = '\0';
    proto_stream_t out = {uart_write, NULL};
    proto_dispatcher_t d;
    proto_dispatcher_init(&d, out, NULL, NULL);
    if (proto_send_log(&d, 1, text) != PROTO_OK) {
        board_system_reset();
    }
    for (;;) {
        board_idle();
    }
}
