"""The board table: one source of truth for clock, memory, emulator and power facts, read from
boards files (TOML).

The packaged file ``harness/config/boards.toml`` holds our two boards; a team adds its own with
``hil run --boards FILE`` (pytest: ``--hil-boards FILE`` or ``HIL_BOARDS``), which
:func:`use_boards_file` merges into :data:`BOARDS` (a board of the same name replaces the packaged
one). Board names are free strings: the table's keys.

Keys of a board table (every error names the file, the board and the key):

- ``part``, ``core`` (text), ``clock_hz`` (Hz), ``flash_origin``, ``flash_bytes``, ``ram_origin``,
  ``ram_bytes`` (whole numbers), ``fpu`` (true/false), ``cflags`` (list of compiler flags),
  ``memory_note`` (text, why the budget is what it is);
- ``firmware``: the board support the firmware is built with (``device_fw/boards/<firmware>/``,
  and ``<firmware>_qemu/`` for the QEMU image);
- ``pyocd_target`` (text, optional): the pyocd target name for flashing a real part;
- ``renode`` (optional): ``nrf52840`` or ``composed-cortex-m3`` (harness.device.targets.renode);
- ``[NAME.power]``: ``run_current_a``, ``supply_v``, ``source`` (the datasheet the figures come from);
- ``[NAME.qemu]`` (optional: a board QEMU cannot run leaves it out): ``machine``, ``cpu``,
  ``systick_hz``, ``icount_shift``, ``uart`` (``pl011`` or ``cmsdk``).

Used by the linker-script generator (``hil gen`` writes device_fw/generated/boards/ for the packaged
boards), the QEMU and Renode launchers, the image checks and the energy estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from harness.config.toml_file import read_toml

__all__ = [
    "BOARDS",
    "BOARDS_FILE",
    "Board",
    "BoardsError",
    "QemuMachine",
    "board",
    "load_boards",
    "render_board_files",
    "use_boards_file",
    "write_board_files",
]

BOARDS_FILE = Path(__file__).with_name("boards.toml")
"""The packaged boards file."""
RENODE_PLATFORMS = ("nrf52840", "composed-cortex-m3")
QEMU_UARTS = ("pl011", "cmsdk")


class BoardsError(ValueError):
    """A boards file that cannot be used; the message says file, board and key."""


@dataclass(frozen=True)
class QemuMachine:
    machine: str
    cpu: str
    systick_hz: int
    """SysTick (processor clock) frequency of the QEMU machine model."""
    icount_shift: int
    """-icount shift: one emulated instruction = 2**shift ns of virtual time. Chosen so that there
    are more than two SysTick ticks per instruction: then a tick count rounds to the exact
    instruction count whatever the phase (3.2 on both packaged machines)."""
    uart: str

    @property
    def ticks_per_instruction(self) -> float:
        return self.systick_hz * (2**self.icount_shift) * 1e-9


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    core: str
    clock_hz: int
    flash_origin: int
    flash_bytes: int
    ram_origin: int
    ram_bytes: int
    fpu: bool
    cflags: tuple[str, ...]
    qemu: QemuMachine | None
    run_current_a: float
    supply_v: float
    power_source: str
    memory_note: str
    firmware: str = ""
    pyocd_target: str | None = None
    renode: str | None = None
    source: str = ""
    """the boards file this board came from"""

    def energy_per_cycle_j(self) -> float:
        """Estimate: run current times supply voltage per core cycle."""
        return self.run_current_a * self.supply_v / self.clock_hz

    def qemu_machine(self) -> QemuMachine:
        """The QEMU machine; a ValueError naming the boards file when the board has none."""
        if self.qemu is None:
            raise ValueError(f"board {self.name!r} ({self.source}) has no [{self.name}.qemu] table: QEMU cannot "
                             "run it")
        return self.qemu


class _R:
    def __init__(self, path: Path, name: str) -> None:
        self.where = f"{path}: {name}"

    def fail(self, key: str, problem: str) -> BoardsError:
        return BoardsError(f"{self.where}.{key}: {problem}")

    def get(self, t: dict[str, object], key: str, kind: str, optional: bool = False) -> object:
        if key not in t:
            if optional:
                return None
            raise self.fail(key, "missing")
        v = t[key]
        ok = {"int": isinstance(v, int) and not isinstance(v, bool),
              "pos": isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0,
              "str": isinstance(v, str) and bool(v.strip()), "bool": isinstance(v, bool),
              "strs": isinstance(v, list) and all(isinstance(s, str) for s in v)}[kind]
        if not ok:
            want = {"int": "a whole number", "pos": "a number above 0", "str": "a non-empty text",
                    "bool": "true or false", "strs": "a list of texts"}[kind]
            raise self.fail(key, f"must be {want}, got {v!r}")
        if kind == "int" and v < 0:  # type: ignore[operator]
            raise self.fail(key, f"must not be negative, got {v!r}")
        return v


_BOARD_KEYS = {"part", "core", "clock_hz", "flash_origin", "flash_bytes", "ram_origin", "ram_bytes", "fpu", "cflags",
               "memory_note", "firmware", "pyocd_target", "renode", "power", "qemu"}
_QEMU_KEYS = {"machine", "cpu", "systick_hz", "icount_shift", "uart"}
_POWER_KEYS = {"run_current_a", "supply_v", "source"}


def _board(path: Path, name: str, t: object) -> Board:
    r = _R(path, name)
    if not isinstance(t, dict):
        raise BoardsError(f"{path}: {name}: must be a table of board facts, got {type(t).__name__}")
    for tbl, known, prefix in ((t, _BOARD_KEYS, ""), (t.get("power", {}), _POWER_KEYS, "power."),
                               (t.get("qemu", {}), _QEMU_KEYS, "qemu.")):
        if not isinstance(tbl, dict):
            raise r.fail(prefix.rstrip("."), f"must be a table, got {type(tbl).__name__}")
        extra = sorted(set(tbl) - known)
        if extra:
            raise r.fail(prefix + extra[0], f"unknown key; known: {', '.join(sorted(known))}")
    if "power" not in t:
        raise r.fail("power", "missing: the [NAME.power] table (run current, supply voltage, their source)")
    p = t["power"]
    qemu = None
    if "qemu" in t:
        q, rq = t["qemu"], _R(path, f"{name}.qemu")
        uart = str(rq.get(q, "uart", "str"))
        if uart not in QEMU_UARTS:
            raise rq.fail("uart", f"{uart!r} unknown; known: {', '.join(QEMU_UARTS)}")
        shift = int(rq.get(q, "icount_shift", "int"))  # type: ignore[call-overload]
        if shift > 10:
            raise rq.fail("icount_shift", f"{shift} outside 0..10")
        qemu = QemuMachine(str(rq.get(q, "machine", "str")), str(rq.get(q, "cpu", "str")),
                           int(rq.get(q, "systick_hz", "pos")), shift, uart)  # type: ignore[call-overload]
    renode = r.get(t, "renode", "str", optional=True)
    if renode is not None and renode not in RENODE_PLATFORMS:
        raise r.fail("renode", f"{renode!r} unknown; known: {', '.join(RENODE_PLATFORMS)}")
    rp = _R(path, f"{name}.power")
    ints = {k: int(r.get(t, k, "int")) for k in ("flash_origin", "flash_bytes", "ram_origin", "ram_bytes")}  # type: ignore[call-overload]
    for k in ("flash_bytes", "ram_bytes"):
        if ints[k] == 0:
            raise r.fail(k, "must be above 0")
    pyocd = r.get(t, "pyocd_target", "str", optional=True)
    return Board(
        name=name, part=str(r.get(t, "part", "str")), core=str(r.get(t, "core", "str")),
        clock_hz=int(r.get(t, "clock_hz", "pos")), **ints, fpu=bool(r.get(t, "fpu", "bool")),  # type: ignore[call-overload]
        cflags=tuple(r.get(t, "cflags", "strs")), qemu=qemu,  # type: ignore[arg-type]
        run_current_a=float(rp.get(p, "run_current_a", "pos")), supply_v=float(rp.get(p, "supply_v", "pos")),  # type: ignore[arg-type]
        power_source=str(rp.get(p, "source", "str")), memory_note=str(r.get(t, "memory_note", "str")),
        firmware=str(r.get(t, "firmware", "str")), pyocd_target=None if pyocd is None else str(pyocd),
        renode=None if renode is None else str(renode), source=str(path),
    )


def load_boards(path: Path) -> dict[str, Board]:
    """Every board of a boards file, validated. Raises FileNotFoundError or BoardsError."""
    path = Path(path)
    raw = read_toml(path, "boards file", BoardsError)
    if not raw:
        raise BoardsError(f"{path}: no board in the file")
    return {name: _board(path, name, t) for name, t in raw.items()}


BOARDS: dict[str, Board] = load_boards(BOARDS_FILE)
"""The boards in use: the packaged ones, plus those of :func:`use_boards_file`."""
PACKAGED_BOARDS: tuple[str, ...] = tuple(BOARDS)


def use_boards_file(path: Path | None) -> list[str]:
    """Add (or replace) the boards of a team's boards file; returns their names (None: nothing)."""
    if path is None:
        return []
    extra = load_boards(path)
    BOARDS.update(extra)
    return list(extra)


def board(name: str) -> Board:
    """The board ``name``; a ValueError listing the known boards when there is none such."""
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r}; known: {', '.join(BOARDS)} (a team's own board comes from a "
                         "boards file: --boards FILE)")
    return BOARDS[name]


def render_board_files(names: tuple[str, ...] = PACKAGED_BOARDS) -> dict[str, str]:
    """generated/boards/<board>_memory.ld, board_facts.h and boards.mk, from the table."""
    stamp = f"generated by `hil gen` from {BOARDS_FILE.relative_to(BOARDS_FILE.parents[2])}"
    chosen = [BOARDS[n] for n in names]
    out: dict[str, str] = {}
    for b in chosen:
        out[f"{b.name}_memory.ld"] = (
            f"/* {stamp}. {b.part}: {b.memory_note}. */\n"
            "MEMORY\n{\n"
            f"  FLASH (rx)  : ORIGIN = 0x{b.flash_origin:08X}, LENGTH = {b.flash_bytes // 1024}K\n"
            f"  RAM   (rwx) : ORIGIN = 0x{b.ram_origin:08X}, LENGTH = {b.ram_bytes // 1024}K\n"
            "}\n"
        )
    lines = [f"/* {stamp}. */", "#ifndef BOARD_FACTS_H", "#define BOARD_FACTS_H"]
    for b in chosen:
        n = b.name.upper()
        lines += [f"#define BOARD_{n}_CLOCK_HZ {b.clock_hz}u"]
        if b.qemu is not None:
            lines += [f"#define BOARD_{n}_QEMU_SYSTICK_HZ {b.qemu.systick_hz}u"]
        lines += [f"#define BOARD_{n}_FLASH_BYTES {b.flash_bytes}u", f"#define BOARD_{n}_RAM_BYTES {b.ram_bytes}u"]
    lines.append("#endif")
    out["board_facts.h"] = "\n".join(lines) + "\n"
    mk = [f"# {stamp}."]
    for b in chosen:
        mk.append(f"CPU_FLAGS_{b.name} := {' '.join(b.cflags)}")
    out["boards.mk"] = "\n".join(mk) + "\n"
    return out


def write_board_files(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render_board_files().items():
        (out_dir / name).write_text(text)
        paths.append(out_dir / name)
    return paths
