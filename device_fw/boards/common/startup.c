/* startup.c: vector table and reset handler shared by every board (ARMv7-M, ARM DDI 0403E
 * §B1.5.2-B1.5.3: vector table layout, exception numbers). IRQ handlers are weak aliases of
 * board_default_handler; a board's driver overrides the IRQ it uses (board_irqN_handler). */
#include <stdint.h>

#include "board.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void board_reset_handler(void);
void board_default_handler(void);
void board_hardfault_handler(void);

void board_default_handler(void) {
    for (;;) {
    }
}

#define WEAK_IRQ(n) void board_irq##n##_handler(void) __attribute__((weak, alias("board_default_handler")));
WEAK_IRQ(0) WEAK_IRQ(1) WEAK_IRQ(2) WEAK_IRQ(3) WEAK_IRQ(4) WEAK_IRQ(5) WEAK_IRQ(6) WEAK_IRQ(7)
void board_systick_handler(void) __attribute__((weak, alias("board_default_handler")));

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16 + 8])(void) = {
    (void (*)(void))(&_estack),
    board_reset_handler,
    board_default_handler,   /* NMI */
    board_hardfault_handler, /* HardFault */
    board_hardfault_handler, /* MemManage */
    board_hardfault_handler, /* BusFault */
    board_hardfault_handler, /* UsageFault */
    0, 0, 0, 0,
    board_default_handler,   /* SVCall */
    board_default_handler,   /* DebugMon */
    0,
    board_default_handler,   /* PendSV */
    board_systick_handler,
    board_irq0_handler, board_irq1_handler, board_irq2_handler, board_irq3_handler,
    board_irq4_handler, board_irq5_handler, board_irq6_handler, board_irq7_handler,
};

void board_reset_handler(void) {
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
#if defined(__ARM_FP)
    /* CPACR (0xE000ED88): full access to CP10 and CP11 (ARM DDI 0403E §B3.2.20). */
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
    __asm volatile("dsb\n isb");
#endif
    board_stack_paint();
    (void)main();
    for (;;) {
    }
}
