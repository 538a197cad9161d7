/* proto_crc.c: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), bitwise: small beats fast here. */
#include "proto.h"

uint16_t proto_crc16(uint16_t crc, const uint8_t *data, size_t n) {
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}
