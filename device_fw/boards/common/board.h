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
uint32_t board_rx_overruns(void);
void board_cycles_start(void);
uint32_t board_cycles_stop(void);
void board_marker(bool on); /* GPIO marker for the power meter; no-op where there is none */
void board_watchdog_kick(void);
void board_idle(void);      /* sleep (WFI) unless a byte is waiting */
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

/* The RX ring (common/board_common.c), filled from the UART interrupt. */
void board_rx_push(uint8_t byte);
#endif
