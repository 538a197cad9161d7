/* timer_systick.c: the QEMU time base. SysTick (ARM DDI 0403E §B3.3: SYST_CSR 0xE000E010,
 * SYST_RVR 0xE000E014, SYST_CVR 0xE000E018) on the processor clock, extended to 32 bits by
 * counting wraps. Under `-icount shift=N,align=off` it counts emulated instructions
 * deterministically; the start is aligned to a SysTick edge so the count does not depend on the
 * phase at which the measurement started. */
#include "board.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define RELOAD 0x00FFFFFFu

static volatile uint32_t wraps;
static uint32_t start_ticks;

void board_systick_handler(void) { wraps++; }

void board_timer_init(void);
void board_timer_init(void) {
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 0x7u; /* ENABLE | TICKINT | CLKSOURCE=processor clock */
}

static uint32_t now_ticks(void) {
    uint32_t w, cvr;
    do {
        w = wraps;
        cvr = SYST_CVR;
    } while (w != wraps);
    return w * (RELOAD + 1u) + (RELOAD - cvr);
}

void board_cycles_start(void) {
    const uint32_t c0 = SYST_CVR;
    while (SYST_CVR == c0) {
    }
    start_ticks = now_ticks();
}

uint32_t board_cycles_stop(void) { return now_ticks() - start_ticks; }
