/* timer_dwt.c: the real-part (and Renode) time base: DWT CYCCNT, core cycles.
 * ARM DDI 0403E §C1.8: DEMCR 0xE000EDFC (TRCENA bit 24), DWT_CTRL 0xE0001000 (CYCCNTENA bit 0),
 * DWT_CYCCNT 0xE0001004. */
#include "board.h"

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)

static uint32_t start;

void board_timer_init(void);
void board_timer_init(void) {
    DEMCR |= 1u << 24;
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;
}

void board_cycles_start(void) { start = DWT_CYCCNT; }

uint32_t board_cycles_stop(void) { return DWT_CYCCNT - start; }
