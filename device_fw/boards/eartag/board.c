/* eartag/board.c: Nordic nRF52840, Cortex-M4F at 64 MHz.
 * Register maps: nRF52840 Product Specification v1.7 — CLOCK §6.4 (0x40000000: TASKS_HFCLKSTART
 * 0x000, EVENTS_HFCLKSTARTED 0x100); UART (legacy, shares UARTE0's 0x40002000, IRQ 2) §6.33:
 * TASKS_STARTRX 0x000, TASKS_STARTTX 0x008, EVENTS_RXDRDY 0x108, EVENTS_TXDRDY 0x11C,
 * INTENSET 0x304, ENABLE 0x500 (4 = UART), PSEL.TXD 0x50C, PSEL.RXD 0x514, RXD 0x518, TXD 0x51C,
 * BAUDRATE 0x524 (0x01D7E000 = 115200); GPIO P0 §6.9 (0x50000000: OUTSET 0x508, OUTCLR 0x50C,
 * DIRSET 0x518); WDT §6.36 (0x40010000: TASKS_START 0x000, CRV 0x504, RREN 0x508, CONFIG 0x50C,
 * RR[0] 0x600, reload value 0x6E524635). Pins (nRF52840 DK): P0.06 TX, P0.08 RX, P0.03 marker.
 * Renode models this part (see boards/eartag/renode/); built here, run only where Renode is. */
#include "board.h"
#include "board_facts.h"
#include "proto_defs.h"

#define R(addr) (*(volatile uint32_t *)(addr))
#define CLOCK 0x40000000u
#define UART0 0x40002000u
#define P0 0x50000000u
#define WDT 0x40010000u
#define PIN_TX 6u
#define PIN_RX 8u
#define PIN_MARKER 3u

const char board_name[] = "eartag";
const uint32_t board_clock_hz = BOARD_EARTAG_CLOCK_HZ;
const uint8_t board_time_base = PROTO_TIMEBASE_DWT_CYCLES;

void board_timer_init(void);

void board_irq2_handler(void) {
    while (R(UART0 + 0x108)) {
        R(UART0 + 0x108) = 0;
        board_rx_push((uint8_t)R(UART0 + 0x518));
    }
}

void board_init(void) {
    R(CLOCK + 0x100) = 0;
    R(CLOCK + 0x000) = 1; /* HFXO: the UART baud rate needs the crystal */
    while (R(CLOCK + 0x100) == 0) {
    }
    R(P0 + 0x518) = (1u << PIN_TX) | (1u << PIN_MARKER);
    R(UART0 + 0x50C) = PIN_TX;
    R(UART0 + 0x514) = PIN_RX;
    R(UART0 + 0x524) = 0x01D7E000u;
    R(UART0 + 0x500) = 4u;
    R(UART0 + 0x304) = 1u << 2; /* RXDRDY */
    R(UART0 + 0x000) = 1u;
    R(UART0 + 0x008) = 1u;
    R(0xE000E100u) = 1u << 2;
    R(WDT + 0x504) = 10u * 32768u; /* 10 s at 32.768 kHz */
    R(WDT + 0x508) = 1u;
    R(WDT + 0x50C) = 1u; /* keep running while sleeping */
    R(WDT + 0x000) = 1u;
    board_timer_init();
}

void board_uart_write(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        R(UART0 + 0x11C) = 0;
        R(UART0 + 0x51C) = p[i];
        while (R(UART0 + 0x11C) == 0) {
        }
    }
}

void board_marker(bool on) { R(P0 + (on ? 0x508u : 0x50Cu)) = 1u << PIN_MARKER; }

void board_watchdog_kick(void) { R(WDT + 0x600) = 0x6E524635u; }
