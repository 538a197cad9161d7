"""Targets: where the firmware runs. Each starts, resets and stops a device and hands out a
pyserial URL. A board profile is data (harness.boards); a target knows how to run it."""

from harness.targets.base import Target, TargetUnavailable, firmware_image
from harness.targets.board import BoardTarget, HardwareMap
from harness.targets.qemu import QemuTarget
from harness.targets.renode import RenodeTarget

TARGETS: dict[str, type[Target]] = {"qemu": QemuTarget, "renode": RenodeTarget, "board": BoardTarget}

__all__ = ["TARGETS", "BoardTarget", "HardwareMap", "QemuTarget", "RenodeTarget", "Target", "TargetUnavailable",
           "firmware_image"]
