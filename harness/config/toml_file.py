"""Reading a team's TOML file (descriptor, boards file) with one set of messages for what is wrong."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

__all__ = ["read_toml"]


def read_toml(path: Path, what: str, error: type[ValueError]) -> dict[str, Any]:
    """The tables of the TOML file ``path`` (a ``what``, e.g. "boards file"). Raises
    FileNotFoundError when it is missing, ``error`` when it is a folder, not UTF-8 or not TOML;
    every message starts with the path."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{path}: a folder, not a {what} (give the .toml file)") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not a UTF-8 text file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None
