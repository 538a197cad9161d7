"""COBS (Cheshire and Baker 1999) framing with a 0x00 delimiter.

:class:`CobsStreamDecoder` is a byte-at-a-time state machine that mirrors ``proto_cobs_decoder``
in C step for step, so both sides classify every byte stream identically.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CobsStreamDecoder", "DecodedFrame", "cobs_decode", "cobs_encode", "max_encoded_len"]


def max_encoded_len(n: int) -> int:
    """Encoded size of n bytes at most, without the delimiter."""
    return n + n // 254 + 1


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (no delimiter appended)."""
    out = bytearray([0])
    code_idx, code = 0, 1
    for b in data:
        if b == 0:
            out[code_idx] = code
            code_idx, code = len(out), 1
            out.append(0)
        else:
            out.append(b)
            code += 1
            if code == 0xFF:
                out[code_idx] = code
                code_idx, code = len(out), 1
                out.append(0)
    out[code_idx] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Decode one COBS block sequence (no delimiter inside). Raises ValueError if malformed."""
    dec = CobsStreamDecoder(max_decoded=len(data))
    frames = [f for f in dec.feed(bytes(data) + b"\x00")]
    if len(frames) != 1 or frames[0].error is not None:
        raise ValueError(frames[0].error if frames else "empty COBS input")
    return frames[0].data


@dataclass(frozen=True)
class DecodedFrame:
    """What the decoder yields at a delimiter: the data, or why there is none."""

    data: bytes
    error: str | None
    """None, 'cobs' (delimiter inside a block) or 'oversize' (more than max_decoded bytes)."""


class CobsStreamDecoder:
    """Byte-at-a-time COBS decoder into a bounded buffer. Empty frames (00 00) are skipped."""

    def __init__(self, max_decoded: int) -> None:
        self.max_decoded = max_decoded
        self._buf = bytearray()
        self._remaining = 0
        self._code = 0xFF
        self._overflow = False
        self._started = False

    def _reset(self) -> None:
        self._buf.clear()
        self._remaining = 0
        self._code = 0xFF
        self._overflow = False
        self._started = False

    def _put(self, b: int) -> None:
        if len(self._buf) >= self.max_decoded:
            self._overflow = True
        else:
            self._buf.append(b)

    def feed(self, data: bytes) -> list[DecodedFrame]:
        out: list[DecodedFrame] = []
        for b in data:
            if b == 0:
                if self._started:
                    if self._overflow:
                        out.append(DecodedFrame(b"", "oversize"))
                    elif self._remaining != 0:
                        out.append(DecodedFrame(b"", "cobs"))
                    else:
                        out.append(DecodedFrame(bytes(self._buf), None))
                self._reset()
                continue
            self._started = True
            if self._remaining == 0:
                if self._code != 0xFF:
                    self._put(0)
                self._code = b
                self._remaining = b - 1
            else:
                self._put(b)
                self._remaining -= 1
        return out
