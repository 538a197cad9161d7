"""The two checksums of the protocol, both from the standard library.

- Frame CRC: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor); check
  value 0x29B1. ``binascii.crc_hqx`` computes exactly this CRC.
- End-to-end input check: CRC-32/ISO-HDLC (poly 0x04C11DB7 reflected, init and final xor
  0xFFFFFFFF, the zlib CRC); check value 0xCBF43926. A different polynomial and width from the
  frame CRC, so an error pattern that the frame CRC misses is not also missed by this one.
"""

from __future__ import annotations

import binascii
import zlib

__all__ = ["CRC_INIT", "crc16_ccitt", "crc32_input"]

CRC_INIT = 0xFFFF


def crc16_ccitt(data: bytes | bytearray | memoryview, crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE of ``data``, continuing from ``crc``. Bit-exact with ``proto_crc16`` in C."""
    return binascii.crc_hqx(data, crc)


def crc32_input(data: bytes | bytearray | memoryview) -> int:
    """CRC-32 (zlib) of ``data``. Bit-exact with ``proto_crc32`` in C."""
    return zlib.crc32(data) & 0xFFFFFFFF
