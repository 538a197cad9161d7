"""Where the harness's packaged files are, in a git checkout and in an installed wheel.

In a checkout they are its folders ``fixtures/``, ``device_fw/`` and ``tests/acceptance/``; the
wheel carries the same files as data of ``harness.packaged.fixtures``, ``harness.packaged.device_fw``
and ``harness.packaged.acceptance`` (pyproject.toml maps them in). Firmware built from an installed
wheel goes to a cache folder, not into the installed package: ``$HIL_BUILD`` or
``$XDG_CACHE_HOME/cattle-hil/<version>/build`` (default ``~/.cache``). A descriptor path that
starts with :data:`PACKAGED_PREFIX` names a packaged fixtures file wherever it is."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ACCEPTANCE", "BUILD", "CHECKOUT", "DEVICE_FW", "FIXTURES", "IN_CHECKOUT", "PACKAGE", "PACKAGED_PREFIX",
           "packaged_path", "reports_root", "version"]

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent
"""The folder above the package: a git checkout, or site-packages for an installed wheel."""
IN_CHECKOUT = (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "device_fw" / "Makefile").is_file()
"""True when the harness runs from a checkout (editable install or ``python -m``)."""

FIXTURES = CHECKOUT / "fixtures" if IN_CHECKOUT else PACKAGE / "packaged" / "fixtures"
DEVICE_FW = CHECKOUT / "device_fw" if IN_CHECKOUT else PACKAGE / "packaged" / "device_fw"
ACCEPTANCE = CHECKOUT / "tests" / "acceptance" if IN_CHECKOUT else PACKAGE / "packaged" / "acceptance"

PACKAGED_PREFIX = "packaged:"
"""``packaged:models/student`` in a descriptor: ``FIXTURES/models/student``."""


def version() -> str:
    """The installed distribution's version ('unknown' when it is not installed at all)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("cattle-hil")
    except PackageNotFoundError:
        return "unknown"


def _build() -> Path:
    if os.environ.get("HIL_BUILD"):
        return Path(os.environ["HIL_BUILD"]).resolve()
    if IN_CHECKOUT:
        return DEVICE_FW / "build"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "cattle-hil" / version() / "build"


BUILD = _build()
"""Where firmware images and host libraries are built (make's BUILD)."""


def reports_root() -> Path:
    """Where `hil run` puts its report folders by default: the checkout's reports/, or reports/ in
    the current folder for an installed wheel."""
    return CHECKOUT / "reports" if IN_CHECKOUT else Path.cwd() / "reports"


def packaged_path(text: str, base: Path) -> Path:
    """A descriptor's path value: ``packaged:REL`` is REL in :data:`FIXTURES`, anything else is
    relative to ``base`` (the descriptor's folder) unless absolute."""
    if text.startswith(PACKAGED_PREFIX):
        return (FIXTURES / text[len(PACKAGED_PREFIX):]).resolve()
    return (base / text).resolve()
