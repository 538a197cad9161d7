/* eartag_qemu/board.c: the ear tag on QEMU's mps2-an386 (Cortex-M4 with FPU). UART0 is a CMSDK
 * APB UART at 0x40004000 (ARM DDI 0479C §4.3: DATA 0x00, STATE 0x04 (bit0 TX full, bit1 RX full),
 * CTRL 0x08 (bit0 TX en, bit1 RX en, bit3 RX int en), INTSTATUS/INTCLEAR 0x0C); its RX interrupt
 * is IRQ 0 (Application Note AN386 §3.9, interrupt map). No watchdog or marker under emulation. */
#include "board.h"
#include "board_facts.h"
#include "proto_defs.h"

#define UART0 0x40004000u
#define REG(off) (*(volatile uint32_t *)(UART0 + (off)))
#define DATA REG(0x00)
#define STATE REG(0x04)
#define CTRL REG(0x08)
#define INTCLEAR REG(0x0C)
#define BAUDDIV REG(0x10)
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)

#ifndef BOARD_NAME
#define BOARD_NAME "eartag-qemu" /* a team board built on this support passes its own name */
#endif
const char board_name[] = BOARD_NAME;
const uint32_t board_clock_hz = BOARD_EARTAG_QEMU_SYSTICK_HZ;
const uint8_t board_time_base = PROTO_TIMEBASE_SYSTICK_ICOUNT;

void board_timer_init(void);

void board_irq0_handler(void) {
    INTCLEAR = 1u << 1;
    while (STATE & (1u << 1)) {
        board_rx_push((uint8_t)DATA);
    }
}

void board_init(void) {
    BAUDDIV = 217; /* 25 MHz / 115200; QEMU ignores it */
    CTRL = (1u << 0) | (1u << 1) | (1u << 3);
    NVIC_ISER0 = 1u << 0;
    board_timer_init();
}

void board_uart_write(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        while (STATE & 1u) {
        }
        DATA = p[i];
    }
}

void board_marker(bool on) { (void)on; }
void board_watchdog_kick(void) {}
