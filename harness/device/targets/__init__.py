"""Targets: where the firmware runs. Each starts, resets and stops a device and hands out a
pyserial URL. A board profile is data (harness.config.boards); a target knows how to run it."""

from pathlib import Path

from harness.device.targets.base import Target, TargetUnavailable, firmware_image
from harness.device.targets.board import BoardTarget, HardwareMap
from harness.device.targets.qemu import QemuTarget
from harness.device.targets.renode import RenodeTarget

TARGETS: dict[str, type[Target]] = {"qemu": QemuTarget, "renode": RenodeTarget, "board": BoardTarget}


def make_target(kind: str, board: str, variant: str, *, image: Path | None = None, port: str | None = None,
                probe: str | None = None, hardware_map: Path | None = None, no_flash: bool = False) -> Target:
    """The target for one board and variant, from the command line's or the plugin's options.

    Raises:
        TargetUnavailable: a board target with neither a port, a probe nor a hardware map (nothing
            configured: the only case that may be skipped).
        ValueError: options that contradict each other, or a bad hardware map.
    """
    if kind == "qemu":
        return QemuTarget(board, variant, elf=image)
    if kind == "renode":
        return RenodeTarget(board, variant, elf=image)
    if kind != "board":
        raise ValueError(f"unknown target {kind!r}; known: {', '.join(TARGETS)}")
    if not (port or probe or hardware_map):
        raise TargetUnavailable("no board configured: give a port and a probe id, or a hardware map")
    if no_flash and image is not None:
        raise ValueError("--no-flash tests the firmware already on the board: it cannot be combined with --image")
    entry = HardwareMap.load(hardware_map).for_board(board) if hardware_map else None
    return BoardTarget(board, variant, entry=entry, port=port, probe=probe, elf=image, flash=not no_flash)

__all__ = ["TARGETS", "BoardTarget", "HardwareMap", "QemuTarget", "RenodeTarget", "Target", "TargetUnavailable",
           "firmware_image", "make_target"]
