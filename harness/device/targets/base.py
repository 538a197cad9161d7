"""The target interface."""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.assets import BUILD, DEVICE_FW, IN_CHECKOUT, version

__all__ = [
    "FW_DIR",
    "ImageError",
    "Target",
    "TargetUnavailable",
    "WrongBoard",
    "build_firmware",
    "build_team_firmware",
    "check_image",
    "die_with_parent",
    "firmware_image",
    "log_tail",
    "use_model_sources",
]

_BUILD_ID_CHARS = 24
"""the hello's build id field: 24 bytes, NUL-padded (protocol.messages INFO build_id)"""
FW_DIR = DEVICE_FW
"""The firmware sources (harness.assets: the checkout's device_fw/, or the wheel's copy)."""


class TargetUnavailable(RuntimeError):
    """This target cannot run here (missing tool, nothing configured); the message says why."""


class WrongBoard(RuntimeError):
    """The device reports another board than the one asked for."""


class ImageError(ValueError):
    """A firmware image that cannot run on the board asked for; the message says what and where."""


def _image_board_name(f: Any) -> str | None:
    """The string our firmware keeps in ``board_name`` (board.h), read from the ELF; None when the
    image has no such symbol (field firmware of another make)."""
    symtab = f.get_section_by_name(".symtab")
    if symtab is None:
        return None
    syms = symtab.get_symbol_by_name("board_name")
    if not syms:
        return None
    sym = syms[0]
    addr, size = sym["st_value"], sym["st_size"]
    for sec in f.iter_sections():
        lo = sec["sh_addr"]
        if sec["sh_type"] == "SHT_PROGBITS" and lo <= addr and addr + size <= lo + sec["sh_size"]:
            raw = sec.data()[addr - lo: addr - lo + size]
            return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")
    return None


def check_image(elf: Path, board: str, image_board: str | None = None) -> Path:
    """Refuse, before anything starts, an image that is missing, not a 32-bit little-endian ARM
    ELF executable, has loadable segments outside the board's flash and RAM, or (when the image
    names its board, as ours do in ``board_name``) was built for another board than
    ``image_board`` (e.g. ``eartag-qemu``; default ``board``).

    Raises:
        ImageError: naming the file and the problem.
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    from harness.config.boards import board as board_facts

    elf = Path(elf)
    if not elf.is_file():
        raise ImageError(f"{elf}: firmware image not found")
    b = board_facts(board)
    regions = (("flash", b.flash_origin, b.flash_bytes), ("RAM", b.ram_origin, b.ram_bytes))
    try:
        with elf.open("rb") as fh:
            f = ELFFile(fh)
            if f["e_machine"] != "EM_ARM" or f.elfclass != 32 or not f.little_endian:
                raise ImageError(f"{elf}: not a 32-bit little-endian ARM ELF (machine {f['e_machine']}, "
                                 f"class {f.elfclass})")
            if f["e_type"] != "ET_EXEC":
                raise ImageError(f"{elf}: ELF type {f['e_type']}, not an executable image")
            loads = [s for s in f.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_memsz"] > 0]
            if not loads:
                raise ImageError(f"{elf}: no loadable segment")
            for seg in loads:
                for addr, size, what in ((seg["p_vaddr"], seg["p_memsz"], "runs at"),
                                         (seg["p_paddr"], seg["p_filesz"], "loads at")):
                    if size == 0:
                        continue
                    if not any(lo <= addr and addr + size <= lo + n for _, lo, n in regions):
                        mem = ", ".join(f"{name} 0x{lo:08x}-0x{lo + n:08x}" for name, lo, n in regions)
                        raise ImageError(f"{elf}: a segment {what} 0x{addr:08x}-0x{addr + size:08x}, outside "
                                         f"the {board}'s memory map ({b.part}: {mem}): an image for another "
                                         "board, or too large for this one")
            built_for = _image_board_name(f)
    except ELFError as exc:
        raise ImageError(f"{elf}: not an ELF file ({exc})") from None
    want = image_board or board
    if built_for is not None and built_for != want:
        raise ImageError(f"{elf}: image built for board {built_for!r}, but this target runs {want!r}: "
                         "wrong image for this board")
    return elf


def log_tail(path: Path | None, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, or '' when there is none."""
    if path is None or not path.is_file():
        return ""
    text = path.read_text(errors="replace").rstrip().splitlines()
    return "\n".join(text[-lines:])


def die_with_parent() -> None:
    """preexec_fn for emulator processes: the kernel kills the child when the harness dies, also
    on SIGKILL (Linux PR_SET_PDEATHSIG); a no-op elsewhere."""
    import ctypes
    import os
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


_MODEL_GEN: list[Path] = []
"""The model sources our firmware is built from (empty: the packaged device_fw/generated)."""


def use_model_sources(generated: Path | None) -> None:
    """Build our firmware from the C sources `hil export` wrote into ``generated`` (a descriptor's
    ``paths.generated``), into ``generated/build``; None: the packaged sources again."""
    _MODEL_GEN.clear()
    if generated is not None:
        _MODEL_GEN.append(Path(generated).resolve())


def _build_root() -> Path:
    return _MODEL_GEN[0] / "build" if _MODEL_GEN else BUILD


def firmware_image(image_board: str, variant: str) -> Path:
    """Path of the ELF for ``image_board`` (e.g. ``collar-qemu``) and ``variant``."""
    return _build_root() / "fw" / image_board / variant / "fw.elf"


def _check_model_sources(variant: str) -> None:
    if not _MODEL_GEN:
        return
    gen = _MODEL_GEN[0]
    models = gen / "models.json"
    if not models.is_file():
        raise ImageError(f"{gen}: no models.json: the descriptor's paths.generated names a folder `hil export "
                         f"--out {gen}` has not written")
    import json

    if variant not in json.loads(models.read_text()):
        raise ImageError(f"{models}: no {variant} model exported: run `hil export --out {gen}` with that variant's "
                         "reference in the models folder")


def build_firmware(image_board: str, variant: str) -> Path:
    """Build (or bring up to date) one firmware image with make; raise with the compiler's output.
    A board of a team's boards file is built by :func:`build_team_firmware`."""
    from harness.config.boards import BOARDS, BOARDS_FILE

    qemu = image_board.endswith("-qemu")
    name = image_board.removesuffix("-qemu")
    if name in BOARDS and BOARDS[name].source != str(BOARDS_FILE):
        return build_team_firmware(name, variant, qemu)
    _check_model_sources(variant)
    elf = firmware_image(image_board, variant)
    _make([str(elf)], str(elf))
    return elf


def _make(args: list[str], what: str) -> None:
    # no git to describe the sources of an installed wheel: the image names the package version
    extra = [] if IN_CHECKOUT else [f"BUILD_ID={f'cattle-hil-{version()}'[:_BUILD_ID_CHARS]}"]
    if _MODEL_GEN:
        extra.append(f"MODEL_GEN={_MODEL_GEN[0]}")
    r = subprocess.run(["make", "-s", "-C", str(FW_DIR), f"BUILD={_build_root()}", *extra, *args],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"building {what} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")


def build_team_firmware(name: str, variant: str, qemu: bool) -> Path:
    """Build our firmware for a board of a team's boards file: the board support of its
    ``firmware`` key (``<firmware>_qemu`` for the QEMU image), its compiler flags and its memory map
    (written next to the images), its name in the image. Returns the ELF."""
    from harness.config.boards import board as board_facts

    b = board_facts(name)
    support = f"{b.firmware}_qemu" if qemu else b.firmware
    if not (FW_DIR / "boards" / support / "board.c").is_file():
        raise ValueError(f"board {name!r} ({b.source}): firmware = {b.firmware!r}, but there is no board support "
                         f"{FW_DIR / 'boards' / support}/board.c")
    image_board = f"{name}-qemu" if qemu else name
    _check_model_sources(variant)
    elf = firmware_image(image_board, variant)
    ld = elf.parents[2] / f"{image_board}_memory.ld"
    ld.parent.mkdir(parents=True, exist_ok=True)
    text = (f"/* written by harness.device.targets.base.build_team_firmware from {b.source}: {b.part}. */\n"
            f"MEMORY\n{{\n  FLASH (rx)  : ORIGIN = 0x{b.flash_origin:08X}, LENGTH = {b.flash_bytes}\n"
            f"  RAM   (rwx) : ORIGIN = 0x{b.ram_origin:08X}, LENGTH = {b.ram_bytes}\n}}\n")
    if not ld.is_file() or ld.read_text() != text:
        ld.write_text(text)
    _make([str(elf), f"TEAM_BOARD={image_board}", f"TEAM_SUPPORT={support}", f"TEAM_CPU_FLAGS={' '.join(b.cflags)}",
           f"TEAM_MEMORY_LD={ld}"], str(elf))
    return elf


class Target(ABC):
    """Start a device running ``variant`` on ``board`` and give out its serial URL."""

    kind: str = "?"

    def __init__(self, board: str, variant: str) -> None:
        self.board = board
        self.variant = variant

    @abstractmethod
    def start(self) -> str:
        """Start (flash, boot) the device; return a pyserial URL. Raises TargetUnavailable."""

    @abstractmethod
    def reset(self) -> str:
        """Reset the device; return the (possibly new) URL."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the device and release everything; safe to call twice."""

    def time_base_note(self) -> str:
        """Settings that qualify this target's time base (Renode: MIPS and quantum); '' if none."""
        return ""

    def diagnostics(self) -> str:
        """What the target knows about a failure (emulator exit status, the tail of its log),
        prefixed with a newline, or ''. Added to errors raised while talking to the device."""
        return ""

    @property
    def description(self) -> str:
        return f"{self.kind}:{self.board}/{self.variant}"

    def __enter__(self) -> Target:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
