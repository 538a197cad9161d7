"""Board target: a real collar or ear tag on the desk, flashed with pyocd by probe unique id, its
UART found by USB serial number (or given as a port).

A hardware map file binds names to probes and ports so identical probes never get the wrong image:

    {"boards": {"eartag-1": {"board": "eartag", "probe": "000683...", "usb_serial": "E1A2..."},
                "collar-1": {"board": "collar", "probe": "L1000...", "port": "/dev/ttyACM1"}}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.boards import BOARDS
from harness.targets.base import Target, TargetUnavailable, build_firmware

__all__ = ["BoardEntry", "BoardTarget", "HardwareMap"]

PYOCD_TARGETS = {"collar": "cc2650f128", "eartag": "nrf52840"}


@dataclass(frozen=True)
class BoardEntry:
    name: str
    board: str
    probe: str | None
    port: str | None
    usb_serial: str | None


class HardwareMap:
    def __init__(self, entries: dict[str, BoardEntry]) -> None:
        self.entries = entries

    @classmethod
    def load(cls, path: Path) -> HardwareMap:
        try:
            raw = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: hardware map not found") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        entries = {}
        for name, e in raw.get("boards", {}).items():
            if e.get("board") not in BOARDS:
                raise ValueError(f"{path}: {name}: board must be one of {', '.join(BOARDS)}, got {e.get('board')!r}")
            entries[name] = BoardEntry(name, e["board"], e.get("probe"), e.get("port"), e.get("usb_serial"))
        probes = [e.probe for e in entries.values() if e.probe]
        if len(probes) != len(set(probes)):
            raise ValueError(f"{path}: the same probe id is bound to two boards")
        return cls(entries)

    def for_board(self, board: str) -> BoardEntry:
        found = [e for e in self.entries.values() if e.board == board]
        if len(found) != 1:
            raise TargetUnavailable(f"hardware map has {len(found)} entries for board {board!r}; need exactly one")
        return found[0]


class BoardTarget(Target):
    kind = "board"

    def __init__(self, board: str, variant: str, entry: BoardEntry | None = None, port: str | None = None,
                 probe: str | None = None) -> None:
        super().__init__(board, variant)
        self.entry = entry or BoardEntry(board, board, probe, port, None)

    def find_port(self) -> str:
        if self.entry.port:
            return self.entry.port
        from serial.tools import list_ports

        if self.entry.usb_serial:
            for p in list_ports.comports():
                if p.serial_number == self.entry.usb_serial:
                    return str(p.device)
            raise TargetUnavailable(f"no serial port with USB serial number {self.entry.usb_serial}")
        raise TargetUnavailable(f"board {self.entry.name}: no port and no usb_serial (use --hil-port)")

    def _session(self):  # type: ignore[no-untyped-def]
        from pyocd.core.helpers import ConnectHelper

        if not self.entry.probe:
            raise TargetUnavailable(f"board {self.entry.name}: no probe id (use --hil-probe or a hardware map)")
        session = ConnectHelper.session_with_chosen_probe(
            unique_id=self.entry.probe, target_override=PYOCD_TARGETS[self.board], blocking=False)
        if session is None:
            raise TargetUnavailable(f"debug probe {self.entry.probe} not attached")
        return session

    def start(self) -> str:
        port = self.find_port()
        elf = build_firmware(self.board, self.variant)
        from pyocd.flash.file_programmer import FileProgrammer

        with self._session() as session:
            FileProgrammer(session).program(str(elf), file_format="elf")
            session.target.reset()
        return port

    def reset(self) -> str:
        with self._session() as session:
            session.target.reset()
        return self.find_port()

    def stop(self) -> None:
        return None
