"""Board target: a real collar or ear tag on the desk, flashed with pyocd by probe unique id, its
UART found by USB serial number (or given as a port).

The image flashed is exactly the ELF given (``--image``), else the harness's own build for the real
part. With ``flash=False`` (``--no-flash``) nothing is flashed and no probe is needed: the firmware
already on the board is tested, and the hello proves what it is (board, build id, model hash).

A hardware map file binds names to probes and ports so identical probes never get the wrong image,
and can name a board's labgrid place instead (``--target labgrid``; harness.device.targets.labgrid):

    {"boards": {"eartag-1": {"board": "eartag", "probe": "000683...", "usb_serial": "E1A2..."},
                "collar-1": {"board": "collar", "probe": "L1000...", "port": "/dev/ttyACM1"},
                "collar-2": {"board": "collar", "place": "desk-3-collar", "coordinator": "farm:20408"}}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.config.boards import BOARDS
from harness.device.targets.base import Target, build_firmware, check_image

__all__ = ["BoardEntry", "BoardNotFound", "BoardTarget", "HardwareMap"]



class BoardNotFound(ConnectionError):
    """A board that was configured (port, probe or hardware-map entry) cannot be reached: an error,
    never a skip."""


@dataclass(frozen=True)
class BoardEntry:
    name: str
    board: str
    probe: str | None
    port: str | None
    usb_serial: str | None
    place: str | None = None
    """a labgrid place (the labgrid target), instead of a probe and a port"""
    coordinator: str | None = None
    """the labgrid coordinator of ``place`` (HOST:PORT)"""


class HardwareMap:
    def __init__(self, entries: dict[str, BoardEntry]) -> None:
        self.entries = entries

    @classmethod
    def load(cls, path: Path) -> HardwareMap:
        """Read and validate a hardware map. Raises FileNotFoundError or ValueError naming the file
        and the entry."""
        try:
            raw = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: hardware map not found") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a JSON text file") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("boards"), dict):
            raise ValueError(f'{path}: top level must be an object with a "boards" object, got '
                             f"{type(raw).__name__}")
        entries = {}
        for name, e in raw["boards"].items():
            if not isinstance(e, dict):
                raise ValueError(f"{path}: boards.{name}: must be an object, got {type(e).__name__}")
            unknown = sorted(set(e) - {"board", "probe", "port", "usb_serial", "place", "coordinator"})
            if unknown:
                raise ValueError(f"{path}: boards.{name}: unknown field(s) {', '.join(unknown)}")
            if e.get("board") not in BOARDS:
                raise ValueError(f"{path}: boards.{name}.board: must be one of {', '.join(BOARDS)} (the boards "
                                 f"files in use), got {e.get('board')!r}")
            for k in ("probe", "port", "usb_serial", "place", "coordinator"):
                if k in e and not (isinstance(e[k], str) and e[k]):
                    raise ValueError(f"{path}: boards.{name}.{k}: must be a non-empty string, got {e[k]!r}")
            local = [k for k in ("probe", "port", "usb_serial") if k in e]
            if "place" in e and local:
                raise ValueError(f"{path}: boards.{name}: a labgrid place and {', '.join(local)}: the place's own "
                                 "resources are its probe and port; give one or the other")
            if "coordinator" in e and "place" not in e:
                raise ValueError(f"{path}: boards.{name}.coordinator: only with a place")
            entries[name] = BoardEntry(name, e["board"], e.get("probe"), e.get("port"), e.get("usb_serial"),
                                       e.get("place"), e.get("coordinator"))
        probes = [e.probe for e in entries.values() if e.probe]
        if len(probes) != len(set(probes)):
            raise ValueError(f"{path}: the same probe id is bound to two boards")
        places = [(e.coordinator, e.place) for e in entries.values() if e.place]
        if len(places) != len(set(places)):
            raise ValueError(f"{path}: the same labgrid place is bound to two boards")
        return cls(entries)

    def for_board(self, board: str) -> BoardEntry:
        """The one entry of ``board``; raises ValueError when there are none or several."""
        found = [e for e in self.entries.values() if e.board == board]
        if len(found) != 1:
            raise ValueError(f"hardware map has {len(found)} entries for board {board!r}; need exactly one")
        return found[0]


class BoardTarget(Target):
    kind = "board"

    def __init__(self, board: str, variant: str, entry: BoardEntry | None = None, port: str | None = None,
                 probe: str | None = None, elf: Path | None = None, flash: bool = True) -> None:
        super().__init__(board, variant)
        self.entry = entry or BoardEntry(board, board, probe, port, None)
        self.elf = elf
        self.flash = flash

    def find_port(self) -> str:
        if self.entry.port:
            return self.entry.port
        from serial.tools import list_ports

        if self.entry.usb_serial:
            for p in list_ports.comports():
                if p.serial_number == self.entry.usb_serial:
                    return str(p.device)
            raise BoardNotFound(f"board {self.entry.name}: no serial port with USB serial number "
                                f"{self.entry.usb_serial} is attached")
        raise BoardNotFound(f"board {self.entry.name}: no port and no usb_serial (use --port / --hil-port)")

    def _session(self):  # type: ignore[no-untyped-def]
        from pyocd.core.helpers import ConnectHelper

        if not self.entry.probe:
            raise BoardNotFound(f"board {self.entry.name}: no probe id to flash with (give --probe / --hil-probe "
                                "or a hardware map entry; or --no-flash to test the firmware already on the board)")
        target = BOARDS[self.board].pyocd_target
        if target is None:
            raise BoardNotFound(f"board {self.board} ({BOARDS[self.board].source}) has no pyocd_target: the "
                                "harness cannot flash it (give pyocd_target in the boards file, or --no-flash)")
        session = ConnectHelper.session_with_chosen_probe(unique_id=self.entry.probe, target_override=target,
                                                          blocking=False)
        if session is None:
            raise BoardNotFound(f"board {self.entry.name}: debug probe {self.entry.probe} is not attached")
        return session

    def start(self) -> str:
        """Flash exactly ``elf`` (or our build for the real part) through the probe, reset, and
        return the serial port; with ``flash=False`` only check that the port exists."""
        port = self.find_port()
        if not Path(port).exists() and not port.startswith(("socket://", "rfc2217://", "loop://")):
            raise BoardNotFound(f"board {self.entry.name}: serial port {port} does not exist")
        if not self.flash:
            return port
        if self.elf is None:
            self.elf = build_firmware(self.board, self.variant)
        check_image(self.elf, self.board)
        from pyocd.flash.file_programmer import FileProgrammer

        with self._session() as session:
            FileProgrammer(session).program(str(self.elf), file_format="elf")
            session.target.reset()
        return port

    def reset(self) -> str:
        with self._session() as session:
            session.target.reset()
        return self.find_port()

    def stop(self) -> None:
        return None
