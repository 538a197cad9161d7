"""The target interface."""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType

__all__ = ["FW_DIR", "Target", "TargetUnavailable", "build_firmware", "firmware_image"]

FW_DIR = Path(__file__).resolve().parents[2] / "device_fw"


class TargetUnavailable(RuntimeError):
    """This target cannot run here (missing tool, no board attached); the message says why."""


def firmware_image(image_board: str, variant: str) -> Path:
    """Path of the ELF for ``image_board`` (e.g. ``collar-qemu``) and ``variant``."""
    return FW_DIR / "build" / "fw" / image_board / variant / "fw.elf"


def build_firmware(image_board: str, variant: str) -> Path:
    """Build (or bring up to date) one firmware image with make; raise with the compiler's output."""
    elf = firmware_image(image_board, variant)
    rel = elf.relative_to(FW_DIR).as_posix()
    r = subprocess.run(["make", "-s", "-C", str(FW_DIR), rel], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"building {rel} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
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

    @property
    def description(self) -> str:
        return f"{self.kind}:{self.board}/{self.variant}"

    def __enter__(self) -> Target:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
