"""Typed errors for every way a frame can be bad. Each maps to one wire error code."""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "CobsError",
    "CrcError",
    "ErrorCode",
    "FrameError",
    "LengthError",
    "PayloadError",
    "UnknownTypeError",
    "VersionError",
]


class ErrorCode(IntEnum):
    """Wire error codes (the ``code`` of an Error message). Values are part of the protocol."""

    NONE = 0
    CRC = 1
    COBS = 2
    LENGTH = 3
    VERSION = 4
    UNKNOWN_TYPE = 5
    PAYLOAD = 6
    OVERRUN = 7
    BUSY = 8


class FrameError(ValueError):
    """A received frame that must not be taken as data."""

    code: ErrorCode = ErrorCode.NONE

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq
        """Sequence number read from the (untrusted) header, when there was one."""


class CobsError(FrameError):
    code = ErrorCode.COBS


class LengthError(FrameError):
    code = ErrorCode.LENGTH


class CrcError(FrameError):
    code = ErrorCode.CRC


class VersionError(FrameError):
    code = ErrorCode.VERSION


class UnknownTypeError(FrameError):
    code = ErrorCode.UNKNOWN_TYPE


class PayloadError(FrameError):
    code = ErrorCode.PAYLOAD
