/* collar/board.c: TI CC2650F128 (the Loci collar board), Cortex-M3 at 48 MHz.
 * Register maps: CC26x0 Technical Reference Manual (SWCU117) — PRCM §6.8 (base 0x40082000:
 * CLKLOADCTL 0x28, GPIOCLKGR 0x48, UARTCLKGR 0x6C, PDCTL0SERIAL 0x134, PDCTL0PERIPH 0x138,
 * PDSTAT0SERIAL 0x148, PDSTAT0PERIPH 0x14C); IOC §11.10 (base 0x40081000, IOCFGn at 4n, port ids
 * UART0_RX 0x0F, UART0_TX 0x10, input enable bit 29); GPIO §11.11 (base 0x40022000, DOUTSET31_0
 * 0x90, DOUTCLR31_0 0xA0, DOE31_0 0xD0); UART0 §19 (PL011, base 0x40001000, IRQ 5);
 * WDT §15 (base 0x40080000: LOAD 0x0, CTL 0x8, ICR 0xC, LOCK 0xC00). Pins: DIO2 RX, DIO3 TX,
 * DIO6 marker (CC2650 LaunchPad wiring; change for the Loci board's schematic).
 * Runs on the real part and on Renode (a platform composed by harness/device/targets/renode.py); QEMU runs
 * the collar-qemu image instead. */
#include "board.h"
#include "board_facts.h"
#include "proto_defs.h"

#define R(addr) (*(volatile uint32_t *)(addr))
#define PRCM 0x40082000u
#define IOC 0x40081000u
#define GPIO 0x40022000u
#define UART0 0x40001000u
#define WDT 0x40080000u
#define PIN_RX 2u
#define PIN_TX 3u
#define PIN_MARKER 6u

#ifndef BOARD_NAME
#define BOARD_NAME "collar" /* a team board built on this support passes its own name */
#endif
const char board_name[] = BOARD_NAME;
const uint32_t board_clock_hz = BOARD_COLLAR_CLOCK_HZ;
const uint8_t board_time_base = PROTO_TIMEBASE_DWT_CYCLES;

void board_timer_init(void);

void board_irq5_handler(void) {
    while ((R(UART0 + 0x018) & (1u << 4)) == 0) {
        board_rx_push((uint8_t)R(UART0 + 0x000));
    }
    R(UART0 + 0x044) = (1u << 4) | (1u << 6);
}

void board_init(void) {
    R(PRCM + 0x134) = 1u; /* SERIAL power domain on (UART0) */
    R(PRCM + 0x138) = 1u; /* PERIPH power domain on (GPIO) */
    while ((R(PRCM + 0x148) & 1u) == 0 || (R(PRCM + 0x14C) & 1u) == 0) {
    }
    R(PRCM + 0x6C) = 1u; /* UART0 clock */
    R(PRCM + 0x48) = 1u; /* GPIO clock */
    R(PRCM + 0x28) = 1u; /* load clock settings */
    while ((R(PRCM + 0x28) & 2u) == 0) {
    }
    R(IOC + 4u * PIN_RX) = 0x0Fu | (1u << 29);
    R(IOC + 4u * PIN_TX) = 0x10u;
    R(IOC + 4u * PIN_MARKER) = 0x00u;
    R(GPIO + 0xD0) |= 1u << PIN_MARKER;
    R(UART0 + 0x030) = 0;
    R(UART0 + 0x024) = 26; /* 48 MHz / (16 * 115200) = 26.04: IBRD 26, FBRD 3 */
    R(UART0 + 0x028) = 3;
    R(UART0 + 0x02C) = (3u << 5) | (1u << 4);
    R(UART0 + 0x038) = (1u << 4) | (1u << 6);
    R(UART0 + 0x030) = (1u << 0) | (1u << 8) | (1u << 9);
    R(0xE000E100u) = 1u << 5;
    R(WDT + 0xC00) = 0x1ACCE551u; /* unlock */
    R(WDT + 0x0) = 10u * BOARD_COLLAR_CLOCK_HZ / 32u; /* ~10 s: WDT counts the 1.5 MHz infra clock */
    R(WDT + 0x8) = 3u; /* INTEN | RESEN: second timeout resets */
    R(WDT + 0xC00) = 0;
    board_timer_init();
}

void board_uart_write(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        while (R(UART0 + 0x018) & (1u << 5)) {
        }
        R(UART0 + 0x000) = p[i];
    }
}

void board_marker(bool on) { R(GPIO + (on ? 0x90u : 0xA0u)) = 1u << PIN_MARKER; }

void board_watchdog_kick(void) {
    R(WDT + 0xC00) = 0x1ACCE551u;
    R(WDT + 0xC) = 1u;
    R(WDT + 0xC00) = 0;
}
