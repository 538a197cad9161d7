"""ctypes binding to the C protocol code built for the host (device_fw/tests/host/proto_host.c)."""

from __future__ import annotations

import ctypes
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FW = REPO / "device_fw"
STATUS = {0: "OK", 1: "CRC", 2: "COBS", 3: "LENGTH", 4: "VERSION", 5: "UNKNOWN_TYPE", 6: "PAYLOAD"}


def build_host() -> None:
    """Build the host libraries (make decides what is stale); raise with the compiler output."""
    r = subprocess.run(["make", "-s", "-C", str(FW), "host"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"make -C device_fw host failed:\n{r.stdout}\n{r.stderr}")


@dataclass(frozen=True)
class FrameVerdict:
    status: str
    type: int
    seq: int
    payload: bytes


class CProto:
    def __init__(self, asan: bool = False) -> None:
        name = "libproto_host_asan.so" if asan else "libproto_host.so"
        lib = ctypes.CDLL(str(FW / "build" / "host" / name))
        u8p = ctypes.POINTER(ctypes.c_uint8)
        lib.proto_host_encode.argtypes = [ctypes.c_uint8, ctypes.c_uint16, u8p, ctypes.c_size_t, u8p,
                                          ctypes.c_size_t, ctypes.c_long]
        lib.proto_host_encode.restype = ctypes.c_long
        lib.proto_host_crc16.argtypes = [u8p, ctypes.c_size_t]
        lib.proto_host_crc16.restype = ctypes.c_uint16
        lib.proto_host_crc32.argtypes = [u8p, ctypes.c_size_t]
        lib.proto_host_crc32.restype = ctypes.c_uint32
        lib.proto_host_deframe.argtypes = [u8p, ctypes.c_size_t, u8p, ctypes.c_size_t]
        lib.proto_host_deframe.restype = ctypes.c_long
        lib.proto_host_session_start.argtypes = [u8p, ctypes.c_size_t]
        lib.proto_host_session_feed.argtypes = [u8p, ctypes.c_size_t]
        lib.proto_host_session_feed.restype = ctypes.c_long
        lib.proto_host_session_infer_calls.restype = ctypes.c_uint32
        self.lib = lib
        self._session_out: ctypes.Array[ctypes.c_uint8] | None = None

    @staticmethod
    def _buf(data: bytes) -> ctypes.Array[ctypes.c_uint8]:
        return (ctypes.c_uint8 * max(1, len(data))).from_buffer_copy(data or b"\0")

    def crc16(self, data: bytes) -> int:
        return int(self.lib.proto_host_crc16(self._buf(data), len(data)))

    def crc32(self, data: bytes) -> int:
        return int(self.lib.proto_host_crc32(self._buf(data), len(data)))

    def encode(self, type_id: int, seq: int, payload: bytes, fail_after: int = -1) -> bytes:
        out = (ctypes.c_uint8 * 4096)()
        n = self.lib.proto_host_encode(type_id, seq, self._buf(payload), len(payload), out, len(out), fail_after)
        if n < 0:
            raise OSError(f"proto_frame_write returned status {-n}")
        return bytes(out[:n])

    def deframe(self, stream: bytes) -> list[FrameVerdict]:
        cap = 16 * len(stream) + 64
        out = (ctypes.c_uint8 * cap)()
        n = self.lib.proto_host_deframe(self._buf(stream), len(stream), out, cap)
        assert n >= 0, "deframe output buffer too small"
        raw, i, events = bytes(out[:n]), 0, []
        while i < n:
            plen = int.from_bytes(raw[i + 4 : i + 6], "little")
            events.append(FrameVerdict(STATUS.get(raw[i], f"?{raw[i]}"), raw[i + 1],
                                       int.from_bytes(raw[i + 2 : i + 4], "little"), raw[i + 6 : i + 6 + plen]))
            i += 6 + plen
        return events

    def session_start(self) -> None:
        self._session_out = (ctypes.c_uint8 * (1 << 20))()
        self.lib.proto_host_session_start(self._session_out, len(self._session_out))
        self._read = 0

    def session_feed(self, data: bytes) -> bytes:
        """Feed bytes to the C dispatcher; return the reply bytes it wrote since the last call."""
        assert self._session_out is not None
        n = self.lib.proto_host_session_feed(self._buf(data), len(data))
        assert n >= 0
        new = bytes(self._session_out[self._read : n])
        self._read = n
        return new

    def infer_calls(self) -> int:
        return int(self.lib.proto_host_session_infer_calls())


def asan_preload() -> str | None:
    """Path of libasan for LD_PRELOAD, or None when gcc does not ship one."""
    r = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True)
    path = r.stdout.strip()
    return path if r.returncode == 0 and os.path.isabs(path) and Path(path).exists() else None
