/* board_common.c: RX ring, stack painting, boot counter and the HardFault record, shared by all
 * boards. Register addresses: ARMv7-M ARM (ARM DDI 0403E) §B3.2: CFSR 0xE000ED28, HFSR 0xE000ED2C,
 * AIRCR 0xE000ED0C. */
#include "board.h"

board_rx_ring_t board_rx;
static uint32_t rx_delimiters_taken; /* board_rx.delimiters when the ring was last drained */

bool board_uart_read(uint8_t *byte) {
    const uint32_t tail = board_rx.tail;
    if (tail == board_rx.head) {
        return false;
    }
    *byte = board_rx.buf[tail];
    board_rx.tail = (tail + 1u) & (BOARD_RX_RING_SIZE - 1u);
    return true;
}

/* A complete frame (a delimiter not yet taken) or a batch waiting. */
static bool rx_ready(void) {
    return board_rx.delimiters != rx_delimiters_taken ||
           ((board_rx.head - board_rx.tail) & (BOARD_RX_RING_SIZE - 1u)) >= BOARD_RX_BATCH;
}

size_t board_uart_read_some(uint8_t *dst, size_t cap) {
    if (!rx_ready()) {
        return 0;
    }
    const uint32_t delims = board_rx.delimiters; /* before head: each one counted lies before it */
    const uint32_t head = board_rx.head;
    uint32_t tail = board_rx.tail;
    size_t n = 0;
    while (tail != head && n < cap) {
        dst[n++] = board_rx.buf[tail];
        tail = (tail + 1u) & (BOARD_RX_RING_SIZE - 1u);
    }
    board_rx.tail = tail;
    if (tail == head) {
        rx_delimiters_taken = delims;
    }
    return n;
}

uint32_t board_rx_overruns(void) { return board_rx.overruns; }

void board_idle(void) {
    __asm volatile("cpsid i");
    while (!rx_ready()) {
        __asm volatile("wfi"); /* wakes on the pending interrupt even with PRIMASK set */
        __asm volatile("cpsie i");
        __asm volatile("cpsid i");
    }
    __asm volatile("cpsie i");
}

extern uint32_t _end_noinit, _estack;
#define STACK_PAINT 0xC5C5C5C5u

void board_stack_paint(void) {
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = &_end_noinit; p < sp - 16; p++) {
        *p = STACK_PAINT;
    }
}

uint32_t board_stack_used(void) {
    const uint32_t *p = &_end_noinit;
    while (p < &_estack && *p == STACK_PAINT) {
        p++;
    }
    return (uint32_t)((const uint8_t *)&_estack - (const uint8_t *)p);
}

#define RECORD_MAGIC 0xB007C0DEu
static board_fault_record_t record __attribute__((section(".noinit")));

void board_boot_count(void) {
    if (record.magic != RECORD_MAGIC) {
        record = (board_fault_record_t){.magic = RECORD_MAGIC};
    }
    record.boot_counter++;
}

const board_fault_record_t *board_boot_record(void) { return &record; }

void board_system_reset(void) {
    __asm volatile("dsb");
    *(volatile uint32_t *)0xE000ED0Cu = 0x05FA0004u; /* AIRCR: VECTKEY | SYSRESETREQ */
    __asm volatile("dsb");
    for (;;) {
    }
}

/* Record CFSR, HFSR and the stacked PC and LR, then reset: the next boot reports them. */
__attribute__((used)) void board_fault_record(const uint32_t *frame) {
    record.magic = RECORD_MAGIC;
    record.flags = 1u;
    record.cfsr = *(volatile uint32_t *)0xE000ED28u;
    record.hfsr = *(volatile uint32_t *)0xE000ED2Cu;
    record.lr = frame[5];
    record.pc = frame[6];
    board_system_reset();
}

__attribute__((naked)) void board_hardfault_handler(void) {
    __asm volatile(
        "tst lr, #4\n"
        "ite eq\n"
        "mrseq r0, msp\n"
        "mrsne r0, psp\n"
        "b board_fault_record\n");
}
