"""Acceptance thresholds: floors and budgets per board and variant, from a JSON file.

The packaged file (``harness/config/acceptance.json``) is the default; a team passes its own with
``hil run --thresholds FILE`` or ``pytest --hil-thresholds FILE``. Every key is validated before
any device starts: an unknown key, a wrong type or an out-of-range value is an error that names
the file, the board/variant and the key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ACCEPTANCE_FILE", "KEYS", "Thresholds", "ThresholdsError", "load_thresholds"]

ACCEPTANCE_FILE = Path(__file__).with_name("acceptance.json")

KEYS: dict[str, tuple[str, float, float]] = {
    "min_windows": ("fewest windows a verdict may rest on", 1, 1e9),
    "min_accuracy": ("floor on overall accuracy against the labels", 0.0, 1.0),
    "min_mcc": ("floor on the multi-class Matthews correlation coefficient", -1.0, 1.0),
    "min_recall": ("floor on every class's recall (a number, or an object class name -> floor)", 0.0, 1.0),
    "max_latency_ms": ("budget on the slowest window's device time at the board clock, in ms", 0.0, 1e9),
    "max_energy_uj": ("budget on the mean energy per inference, in uJ", 0.0, 1e12),
    "max_flash_bytes": ("budget on the image's flash bytes (default: the part's flash)", 0.0, 1e12),
    "max_ram_bytes": ("budget on static RAM plus measured stack (default: the part's RAM)", 0.0, 1e12),
    "max_retry_rate": ("budget on resends per window sent (link faults the harness recovered from)", 0.0, 1e6),
}
"""Every key a thresholds entry may hold: (meaning, lowest legal value, highest legal value)."""


class ThresholdsError(ValueError):
    """A thresholds file that cannot be used; the message says file, entry and key."""


@dataclass(frozen=True)
class Thresholds:
    """One board/variant's floors and budgets; None: not checked."""

    source: str
    min_windows: int = 1
    min_accuracy: float | None = None
    min_mcc: float | None = None
    min_recall: dict[str, float] = field(default_factory=dict)
    max_latency_ms: float | None = None
    max_energy_uj: float | None = None
    max_flash_bytes: int | None = None
    max_ram_bytes: int | None = None
    max_retry_rate: float | None = None


def _number(where: str, key: str, v: object) -> float:
    lo, hi = KEYS[key][1], KEYS[key][2]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ThresholdsError(f"{where}: {key}: must be a number, got {v!r}")
    if not lo <= float(v) <= hi:
        raise ThresholdsError(f"{where}: {key}: {v} outside {lo:g}..{hi:g}")
    return float(v)


def _entry(path: Path, board: str, variant: str, raw: object, classes: Sequence[str]) -> Thresholds:
    where = f"{path}: {board}/{variant}"
    if not isinstance(raw, dict):
        raise ThresholdsError(f"{where}: must be an object of thresholds, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ThresholdsError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    vals: dict[str, object] = {}
    for key, v in raw.items():
        if key == "min_recall":
            if isinstance(v, dict):
                bad = sorted(set(v) - set(classes))
                if bad:
                    raise ThresholdsError(f"{where}: min_recall: unknown class(es) {', '.join(bad)}; "
                                          f"the model's classes: {', '.join(classes)}")
                vals[key] = {c: _number(where, key, f) for c, f in v.items()}
            else:
                f = _number(where, key, v)
                vals[key] = dict.fromkeys(classes, f)
        elif key in ("min_windows", "max_flash_bytes", "max_ram_bytes"):
            f = _number(where, key, v)
            if f != int(f):
                raise ThresholdsError(f"{where}: {key}: must be a whole number, got {v!r}")
            vals[key] = int(f)
        else:
            vals[key] = _number(where, key, v)
    return Thresholds(source=str(path), **vals)  # type: ignore[arg-type]


def load_thresholds(path: Path, classes: Sequence[str]) -> dict[tuple[str, str], Thresholds]:
    """Every (board, variant) entry of a thresholds file, validated; ``min_recall`` by the model's
    ``classes`` (the descriptor's).

    Format: ``{"thresholds": {board: {variant: {key: value, ...}}}}`` with the keys of :data:`KEYS`.

    Raises:
        FileNotFoundError, ThresholdsError: naming the file and what is wrong where.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: thresholds file not found") from None
    except json.JSONDecodeError as exc:
        raise ThresholdsError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise ThresholdsError(f"{path}: not a JSON text file: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("thresholds"), dict):
        raise ThresholdsError(f'{path}: top level must be an object with a "thresholds" object')
    out: dict[tuple[str, str], Thresholds] = {}
    for board, variants in raw["thresholds"].items():
        if not isinstance(variants, dict):
            raise ThresholdsError(f"{path}: {board}: must be an object of variants")
        for variant, entry in variants.items():
            out[(board, variant)] = _entry(path, board, variant, entry, classes)
    if not out:
        raise ThresholdsError(f"{path}: no thresholds in the file")
    return out
