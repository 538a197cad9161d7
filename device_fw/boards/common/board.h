/* board.h: what the application needs from a board. One implementation per board and machine
 * (boards/<board>/board.c); common parts in boards/common/. */
#ifndef BOARD_H
#define BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const char board_name[];
extern const uint32_t board_clock_hz; /* the clock the time base counts */
extern const uint8_t board_time_base; /* PROTO_TIMEBASE_* */

void board_init(void);
void board_uart_write(const uint8_t *p, size_t n); /* blocking */
bool board_uart_read(uint8_t *byte);               /* from the RX ring; false when empty */
/* Up to cap bytes from the RX ring once a frame is complete or a batch waits (see below); else 0. */
size_t board_uart_read_some(uint8_t *dst, size_t cap);
uint32_t board_rx_overruns(void);
void board_cycles_start(void);
uint32_t board_cycles_stop(void);
void board_marker(bool on); /* GPIO marker for the power meter; no-op where there is none */
void board_watchdog_kick(void);
void board_idle(void);      /* sleep (WFI) until board_uart_read_some has bytes to give */
void board_system_reset(void);

/* Stack high-water mark: painted at reset, measured on demand (common/board_common.c). */
void board_stack_paint(void);
uint32_t board_stack_used(void);

/* Fault record that survives a reset (common/board_common.c). */
typedef struct {
    uint32_t magic, boot_counter, flags, cfsr, hfsr, pc, lr;
} board_fault_record_t;
const board_fault_record_t *board_boot_record(void); /* boot counter and the last fault, if any */
void board_boot_count(void);

/* The RX ring (common/board_common.c), filled from the UART interrupt: board_rx_push is inlined into
 * the boards' interrupt handlers (a call per received byte cost as much as the push itself). It
 * also counts frame delimiters (0x00), so that board_idle sleeps until a frame is complete or the
 * ring fills to a batch (BOARD_RX_BATCH): the main loop then takes bytes a batch at a time instead
 * of waking for every byte. Nothing is decided before a delimiter, so replies are unchanged. */
#define BOARD_RX_RING_SIZE 1024u /* power of two; holds three encoded 50x3 windows */
#define BOARD_RX_BATCH 64u
typedef struct {
    volatile uint32_t head, tail, overruns, delimiters;
    volatile uint8_t buf[BOARD_RX_RING_SIZE];
} board_rx_ring_t;
extern board_rx_ring_t board_rx;
static inline void board_rx_push(uint8_t byte) {
    board_rx_ring_t *r = &board_rx;
    const uint32_t head = r->head, next = (head + 1u) & (BOARD_RX_RING_SIZE - 1u);
    if (next == r->tail) {
        r->overruns++;
        return;
    }
    r->buf[head] = byte;
    r->head = next;
    if (byte == 0u) {
        r->delimiters++; /* after head: a delimiter counted is in the ring */
    }
}
#endif
