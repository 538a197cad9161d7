"""CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor). Check: 0x29B1."""

from __future__ import annotations

__all__ = ["CRC_INIT", "crc16_ccitt"]

CRC_INIT = 0xFFFF


def _table() -> tuple[int, ...]:
    out = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        out.append(c & 0xFFFF)
    return tuple(out)


_TABLE = _table()


def crc16_ccitt(data: bytes | bytearray | memoryview, crc: int = CRC_INIT) -> int:
    """CRC of ``data``, continuing from ``crc``. Bit-exact with ``proto_crc16`` in C."""
    for b in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc
