/* A minimal device for the harness, built for the host: it uses only the protocol library
 * (src/proto + generated/proto_defs.h) and answers Hello with an Info and Ping with a Pong;
 * anything else gets the dispatcher's Error UNKNOWN_TYPE. Its "UART" is one TCP connection on
 * 127.0.0.1:PORT, so the harness drives it through the pyserial URL socket://127.0.0.1:PORT.
 * docs/porting.md walks through it; tests/test_porting.py builds it and runs hello and ping.
 *
 * Usage: minimal_device PORT */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"

static int uart_fd = -1;

/* 1. The output stream: where replies go (on a board: the UART's blocking write). */
static int uart_write(void *ctx, const uint8_t *data, size_t n) {
    (void)ctx;
    while (n > 0) {
        ssize_t w = write(uart_fd, data, n);
        if (w <= 0) {
            return -1;
        }
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

/* 2. The Info reply: who this device is. Offsets and sizes come from the generated header. */
static size_t info_reply(uint8_t *r) {
    memset(r, 0, PROTO_INFO_SIZE);
    r[PROTO_INFO_OFF_PROTOCOL_VERSION] = PROTO_VERSION;
    memcpy(r + PROTO_INFO_OFF_BOARD, "example-host", 12);
    memcpy(r + PROTO_INFO_OFF_BUILD_ID, "porting-guide", 13);
    r[PROTO_INFO_OFF_VARIANT] = PROTO_VARIANT_Q_W8A16;
    proto_put_u16(r + PROTO_INFO_OFF_WINDOW_LEN, 50);
    r[PROTO_INFO_OFF_CHANNELS] = 3;
    r[PROTO_INFO_OFF_N_CLASSES] = 4;
    proto_put_u32(r + PROTO_INFO_OFF_CLOCK_HZ, 64000000u);
    r[PROTO_INFO_OFF_TIME_BASE] = PROTO_TIMEBASE_NONE;
    proto_put_u16(r + PROTO_INFO_OFF_MAX_PAYLOAD, PROTO_MAX_PAYLOAD);
    proto_put_u32(r + PROTO_INFO_OFF_BOOT_COUNTER, 1);
    return PROTO_INFO_SIZE;
}

/* 3. The request handler: one case per message type this device serves. */
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
    case PROTO_MSG_PING:
        if (len > cap) {
            return PROTO_E_PAYLOAD;
        }
        memcpy(reply, p, len);
        *rtype = PROTO_MSG_PONG;
        *rlen = len;
        return PROTO_OK;
    default:
        return PROTO_E_UNKNOWN_TYPE; /* e.g. Infer: this example has no model */
    }
}

static int accept_one(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 1) != 0) {
        perror("minimal_device: listen");
        return -1;
    }
    printf("listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    int c = accept(s, NULL, NULL);
    close(s);
    return c;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    uart_fd = accept_one(atoi(argv[1]));
    if (uart_fd < 0) {
        return 1;
    }
    /* 4. One dispatcher: bytes in, replies out through the stream. */
    static proto_dispatcher_t d;
    proto_dispatcher_init(&d, (proto_stream_t){uart_write, NULL}, handle, NULL);
    if (proto_send_log(&d, 1, "example device up") != PROTO_OK) {
        return 1;
    }
    uint8_t buf[256];
    for (;;) {
        ssize_t n = read(uart_fd, buf, sizeof buf);
        if (n <= 0) {
            return 0; /* the harness closed the link */
        }
        for (ssize_t i = 0; i < n; i++) {
            if (proto_dispatch_byte(&d, buf[i]) != PROTO_OK) {
                return 1; /* the output stream failed */
            }
        }
    }
}
