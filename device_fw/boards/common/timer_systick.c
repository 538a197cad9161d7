/* timer_systick.c: the QEMU time base. SysTick (ARM DDI 0403E §B3.3: SYST_CSR 0xE000E010,
 * SYST_RVR 0xE000E014, SYST_CVR 0xE000E018) on the processor clock, extended to 32 bits by
 * counting wraps. Under `-icount shift=N,align=off` it counts emulated instructions
 * deterministically. The start clears the counter (so the wrap interrupts fall at the same
 * offsets in every measurement) and waits for the reload edge (so the tick grid starts with the
 * measurement). With more than two ticks per instruction (the board table picks the -icount shift
 * for that), round(ticks / ticks_per_instruction) is the exact instruction count, whatever the
 * sub-tick phase; the few instructions of each wrap interrupt are counted, identically every time. */
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
    SYST_CVR = 0; /* any write clears the counter; it reloads at the next tick */
    while (SYST_CVR == 0) {
    }
    start_ticks = now_ticks();
}

uint32_t board_cycles_stop(void) { return now_ticks() - start_ticks; }
