/* collar_qemu/board.c: the collar on QEMU's lm3s6965evb (Cortex-M3). UART0 is a PL011 like the
 * CC2650's: base 0x4000C000, IRQ 5 (TI LM3S6965 datasheet DS-LM3S6965 §14: UARTDR 0x000,
 * UARTFR 0x018, UARTIBRD 0x024, UARTFBRD 0x028, UARTLCRH 0x02C, UARTCTL 0x030, UARTIM 0x038,
 * UARTICR 0x044; interrupt table §2.5.2). NVIC ISER0 0xE000E100 (ARM DDI 0403E §B3.4).
 * No watchdog and no marker pin under emulation. */
#include "board.h"
#include "board_facts.h"
#include "proto_defs.h"

#define UART0 0x4000C000u
#define REG(off) (*(volatile uint32_t *)(UART0 + (off)))
#define UARTDR REG(0x000)
#define UARTFR REG(0x018)
#define UARTLCRH REG(0x02C)
#define UARTCTL REG(0x030)
#define UARTIM REG(0x038)
#define UARTICR REG(0x044)
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)

#ifndef BOARD_NAME
#define BOARD_NAME "collar-qemu" /* a team board built on this support passes its own name */
#endif
const char board_name[] = BOARD_NAME;
const uint32_t board_clock_hz = BOARD_COLLAR_QEMU_SYSTICK_HZ;
const uint8_t board_time_base = PROTO_TIMEBASE_SYSTICK_ICOUNT;

void board_timer_init(void);

void board_irq5_handler(void) {
    while ((UARTFR & (1u << 4)) == 0) { /* RXFE clear: data waiting */
        board_rx_push((uint8_t)UARTDR);
    }
    UARTICR = (1u << 4) | (1u << 6); /* RXIC | RTIC */
}

void board_init(void) {
    UARTCTL = 0;
    UARTLCRH = (3u << 5) | (1u << 4); /* 8 bits, FIFO enabled */
    UARTIM = (1u << 4) | (1u << 6);   /* RX and RX-timeout interrupts */
    UARTCTL = (1u << 0) | (1u << 8) | (1u << 9); /* UARTEN | TXE | RXE */
    NVIC_ISER0 = 1u << 5;
    board_timer_init();
}

void board_uart_write(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        while (UARTFR & (1u << 5)) { /* TXFF */
        }
        UARTDR = p[i];
    }
}

void board_marker(bool on) { (void)on; }
void board_watchdog_kick(void) {}
