"""Sans-I/O stream deframer: bytes in, frames and error events out."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.cobs import CobsStreamDecoder
from protocol.errors import CobsError, FrameError, LengthError
from protocol.messages import MAX_FRAME, Frame, decode_frame

__all__ = ["Deframer", "FrameEvent"]

FrameEvent = Frame | FrameError


@dataclass
class DeframerStats:
    frames_ok: int = 0
    errors: int = 0


class Deframer:
    """Feed it bytes as they arrive; it returns every complete frame or the error that replaced it.

    Frames split across or merged within reads are handled; garbage is skipped to the next 0x00
    delimiter (reported as one error event); the buffer never exceeds ``MAX_FRAME`` bytes.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._dec = CobsStreamDecoder(max_frame)
        self.stats = DeframerStats()

    def feed(self, data: bytes) -> list[FrameEvent]:
        events: list[FrameEvent] = []
        for df in self._dec.feed(data):
            ev: FrameEvent
            if df.error == "oversize":
                ev = LengthError(f"frame longer than {self._dec.max_decoded} bytes")
            elif df.error == "cobs":
                ev = CobsError("delimiter inside a COBS block (truncated or garbled frame)")
            else:
                try:
                    ev = decode_frame(df.data)
                except FrameError as exc:
                    ev = exc
            if isinstance(ev, Frame):
                self.stats.frames_ok += 1
            else:
                self.stats.errors += 1
            events.append(ev)
        return events
