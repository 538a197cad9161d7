"""Targets: where the firmware runs. Each starts, resets and stops a device and hands out a
pyserial URL. A board profile is data (harness.config.boards); a target knows how to run it."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.device.targets.base import Target, TargetUnavailable, firmware_image
from harness.device.targets.board import BoardTarget, HardwareMap
from harness.device.targets.labgrid import LabgridTarget
from harness.device.targets.qemu import QemuTarget
from harness.device.targets.renode import RenodeTarget


@dataclass(frozen=True)
class TargetOptions:
    """The options of the command line or the plugin that pick and configure a target."""

    image: Path | None = None
    port: str | None = None
    probe: str | None = None
    hardware_map: Path | None = None
    no_flash: bool = False
    place: str | None = None
    coordinator: str | None = None


def _qemu(board: str, variant: str, o: TargetOptions) -> Target:
    return QemuTarget(board, variant, elf=o.image)


def _renode(board: str, variant: str, o: TargetOptions) -> Target:
    return RenodeTarget(board, variant, elf=o.image)


def _board(board: str, variant: str, o: TargetOptions) -> Target:
    entry = HardwareMap.load(o.hardware_map).for_board(board) if o.hardware_map else None
    if entry is not None and entry.place is not None:
        raise ValueError(f"hardware map {o.hardware_map}: boards.{entry.name} names a labgrid place "
                         f"({entry.place}): use --target labgrid")
    if not (o.port or o.probe or entry):
        raise TargetUnavailable("no board configured: give a port and a probe id, or a hardware map")
    return BoardTarget(board, variant, entry=entry, port=o.port, probe=o.probe, elf=o.image, flash=not o.no_flash)


def _labgrid(board: str, variant: str, o: TargetOptions) -> Target:
    place, coordinator = o.place, o.coordinator
    if place is None and o.hardware_map:
        entry = HardwareMap.load(o.hardware_map).for_board(board)
        if entry.place is None:
            raise ValueError(f"hardware map {o.hardware_map}: boards.{entry.name} names no labgrid place")
        place, coordinator = entry.place, coordinator or entry.coordinator
    if place is None:
        raise TargetUnavailable("no labgrid place configured: give --place NAME (and --coordinator HOST:PORT), or "
                                "a hardware map whose entry names a place")
    return LabgridTarget(board, variant, place, coordinator, elf=o.image, flash=not o.no_flash)


TARGETS: dict[str, type[Target]] = {"qemu": QemuTarget, "renode": RenodeTarget, "board": BoardTarget,
                                    "labgrid": LabgridTarget}
_FACTORIES: dict[str, Callable[[str, str, TargetOptions], Target]] = {
    "qemu": _qemu, "renode": _renode, "board": _board, "labgrid": _labgrid}


def make_target(kind: str, board: str, variant: str, *, image: Path | None = None, port: str | None = None,
                probe: str | None = None, hardware_map: Path | None = None, no_flash: bool = False,
                place: str | None = None, coordinator: str | None = None) -> Target:
    """The target for one board and variant, from the command line's or the plugin's options.

    Raises:
        TargetUnavailable: a board target with neither a port, a probe nor a hardware map, or a
            labgrid target with no place (nothing configured: the only case that may be skipped).
        ValueError: options that contradict each other, or a bad hardware map.
    """
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise ValueError(f"unknown target {kind!r}; known: {', '.join(TARGETS)}")
    if no_flash and image is not None:
        raise ValueError("--no-flash tests the firmware already on the board: it cannot be combined with --image")
    return factory(board, variant, TargetOptions(image, port, probe, hardware_map, no_flash, place, coordinator))

__all__ = ["TARGETS", "BoardTarget", "HardwareMap", "LabgridTarget", "QemuTarget", "RenodeTarget", "Target",
           "TargetOptions", "TargetUnavailable", "firmware_image", "make_target"]
