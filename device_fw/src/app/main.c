/* main.c: the inference firmware. Bytes arrive through the UART interrupt into a ring; the main
 * loop feeds them to the protocol dispatcher, runs an inference per Infer request and sleeps
 * (WFI) when there is nothing to do. */
#include <string.h>

#include "board.h"
#include "model.h"
#include "proto.h"

#ifndef BUILD_ID
#define BUILD_ID "unknown"
#endif

static int uart_stream_write(void *ctx, const uint8_t *data, size_t n) {
    (void)ctx;
    board_uart_write(data, n);
    return 0;
}

static int16_t window_buf[256 * NN_CHANNELS];

static void put_str(uint8_t *dst, size_t cap, const char *s) {
    memset(dst, 0, cap);
    for (size_t i = 0; i < cap && s[i] != '\0'; i++) {
        dst[i] = (uint8_t)s[i];
    }
}

static size_t info_reply(uint8_t *r) {
    const board_fault_record_t *rec = board_boot_record();
    r[PROTO_INFO_OFF_PROTOCOL_VERSION] = PROTO_VERSION;
    put_str(r + PROTO_INFO_OFF_BOARD, PROTO_INFO_LEN_BOARD, board_name);
    put_str(r + PROTO_INFO_OFF_BUILD_ID, PROTO_INFO_LEN_BUILD_ID, BUILD_ID);
    memcpy(r + PROTO_INFO_OFF_MODEL_HASH, model_desc.hash, PROTO_INFO_LEN_MODEL_HASH);
    r[PROTO_INFO_OFF_VARIANT] = model_desc.variant;
    proto_put_u16(r + PROTO_INFO_OFF_WINDOW_LEN, model_desc.window);
    r[PROTO_INFO_OFF_CHANNELS] = model_desc.channels;
    r[PROTO_INFO_OFF_N_CLASSES] = model_desc.classes;
    r[PROTO_INFO_OFF_OUTPUT_FRAC_BITS] = (uint8_t)model_desc.out_frac;
    proto_put_u32(r + PROTO_INFO_OFF_CLOCK_HZ, board_clock_hz);
    r[PROTO_INFO_OFF_TIME_BASE] = board_time_base;
    proto_put_u16(r + PROTO_INFO_OFF_MAX_PAYLOAD, PROTO_MAX_PAYLOAD);
    proto_put_u32(r + PROTO_INFO_OFF_BOOT_COUNTER, rec->boot_counter);
    proto_put_u32(r + PROTO_INFO_OFF_FAULT_FLAGS, rec->flags);
    proto_put_u32(r + PROTO_INFO_OFF_FAULT_CFSR, rec->cfsr);
    proto_put_u32(r + PROTO_INFO_OFF_FAULT_HFSR, rec->hfsr);
    proto_put_u32(r + PROTO_INFO_OFF_FAULT_PC, rec->pc);
    proto_put_u32(r + PROTO_INFO_OFF_FAULT_LR, rec->lr);
    proto_put_u32(r + PROTO_INFO_OFF_STACK_USED, board_stack_used());
    return PROTO_INFO_SIZE;
}

static proto_status_t infer_reply(const uint8_t *p, size_t len, uint8_t *r, size_t *rlen) {
    if (len < PROTO_INFER_OFF_SAMPLES) {
        return PROTO_E_PAYLOAD;
    }
    const uint16_t n = proto_get_u16(p + PROTO_INFER_OFF_N_SAMPLES);
    const uint8_t ch = p[PROTO_INFER_OFF_CHANNELS];
    const size_t nbytes = (size_t)n * ch * 2u;
    if (n != model_desc.window || ch != model_desc.channels || len != PROTO_INFER_OFF_SAMPLES + nbytes) {
        return PROTO_E_PAYLOAD; /* wrong window shape for this model: refuse, never guess */
    }
    const uint8_t *s = p + PROTO_INFER_OFF_SAMPLES;
    for (size_t i = 0; i < (size_t)n * ch; i++) {
        window_buf[i] = (int16_t)proto_get_u16(s + 2u * i);
    }
    uint32_t scores[NN_CLASSES];
    board_marker(true);
    board_cycles_start();
    const uint8_t cls = model_infer(window_buf, scores);
    const uint32_t cycles = board_cycles_stop();
    board_marker(false);
    memcpy(r + PROTO_RESULT_OFF_WINDOW_ID, p + PROTO_INFER_OFF_WINDOW_ID, 4);
    r[PROTO_RESULT_OFF_CLS] = cls;
    r[PROTO_RESULT_OFF_SCORE_KIND] = model_desc.score_kind;
    r[PROTO_RESULT_OFF_N_SCORES] = NN_CLASSES;
    for (int k = 0; k < NN_CLASSES; k++) {
        proto_put_u32(r + PROTO_RESULT_OFF_SCORES + 4u * (unsigned)k, scores[k]);
    }
    uint8_t *tail = r + PROTO_RESULT_OFF_SCORES + 4u * NN_CLASSES;
    proto_put_u32(tail + PROTO_RESULT_TAIL_OFF_CYCLES, cycles);
    proto_put_u32(tail + PROTO_RESULT_TAIL_OFF_INPUT_CRC, proto_crc32(s, nbytes));
    *rlen = (size_t)(tail - r) + PROTO_RESULT_TAIL_SIZE;
    return PROTO_OK;
}

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
    case PROTO_MSG_INFER:
        *rtype = PROTO_MSG_RESULT;
        return infer_reply(p, len, reply, rlen);
    case PROTO_MSG_PING:
        if (len > cap) {
            return PROTO_E_PAYLOAD;
        }
        memcpy(reply, p, len);
        *rtype = PROTO_MSG_PONG;
        *rlen = len;
        return PROTO_OK;
    default:
        return PROTO_E_UNKNOWN_TYPE;
    }
}

static proto_dispatcher_t dispatcher;

int main(void) {
    board_boot_count();
    board_init();
#ifdef HIL_TEST_FAULT
    /* Test images only: fault on the first boot, so a test can see the next boot report it. */
    if (board_boot_record()->boot_counter == 1) {
        __asm volatile("udf #0");
    }
#endif
    proto_dispatcher_init(&dispatcher, (proto_stream_t){uart_stream_write, NULL}, handle, NULL);
    if (proto_send_log(&dispatcher, 1, "boot") != PROTO_OK) {
        board_system_reset();
    }
    for (;;) {
        uint8_t b;
        board_watchdog_kick();
        dispatcher.counters.rx_overruns = board_rx_overruns();
        if (board_uart_read(&b)) {
            if (proto_dispatch_byte(&dispatcher, b) != PROTO_OK) {
                board_system_reset();
            }
        } else {
            board_idle();
        }
    }
}
