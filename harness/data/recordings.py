"""Loader for the db-cow-walking neck-collar recordings (one CSV per labelled bout).

Pure: reads files, returns arrays. Every error names the file and, where it applies, the line.

Acceleration arrives in m/s^2 (gravity included) from the MPU9250 columns and is converted to the
int16 counts the accelerometer itself would report at the stated full-scale range, saturating,
because that is what the device receives.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from harness.config.descriptor import ModelDescriptor

__all__ = [
    "CLASS_NAMES",
    "COUNTS_PER_G",
    "FOLDER_TO_CLASS",
    "FULL_SCALE_G",
    "STANDARD_GRAVITY",
    "AccelSpec",
    "Bout",
    "RecordingError",
    "bout_fault",
    "load_bout",
    "load_recordings",
    "load_recordings_for",
    "to_counts",
]

CLASS_NAMES: tuple[str, ...] = ("grazing", "walking", "resting", "other")
FOLDER_TO_CLASS: dict[str, int] = {"Grazing": 0, "Walking": 1, "Resting": 2, "Others": 3}
ACCEL_COLUMNS: tuple[str, str, str] = ("MPU9250_AX", "MPU9250_AY", "MPU9250_AZ")
SAMPLE_RATE_HZ = 10.0
STANDARD_GRAVITY = 9.80665
FULL_SCALE_G = 4
"""MPU9250 configured at +-4 g: 16-bit signed output, 8192 LSB/g (datasheet PS-MPU-9250A-01 §3.1)."""
COUNTS_PER_G = 32768 // FULL_SCALE_G
GRAVITY_PLAUSIBLE_G = (0.5, 2.0)
"""A bout whose median |a| lies outside this range (in g) has a sensor fault (the known fault
reads ~7.7 g; vigorous Shaking bouts reach ~1.5 g legitimately)."""

_NAME_RE = re.compile(r"^(?P<index>\d+)_(?P<behaviour>[A-Za-z]+)_(?P<cow>\d+)_(?P<date>\d{8})_(?P<time>\d{6})\.csv$")


class RecordingError(ValueError):
    """A recording that cannot be used, with the file (and line) that says why."""


@dataclass(frozen=True)
class AccelSpec:
    """How m/s^2 become device counts."""

    full_scale_g: int = FULL_SCALE_G
    counts_per_g: int = COUNTS_PER_G

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "unit": "counts",
            "full_scale_g": self.full_scale_g,
            "counts_per_g": self.counts_per_g,
            "dtype": "int16",
            "saturating": "yes",
            "standard_gravity_m_s2": STANDARD_GRAVITY,
        }


@dataclass(frozen=True)
class Bout:
    """One labelled bout: raw counts int16[N, 3] at 10 Hz."""

    path: str
    """Path relative to the data root, e.g. ``Grazing/101_Grazing_2016_20240515_133048.csv``."""
    cow: str
    label: int
    behaviour: str
    counts: np.ndarray
    median_g: float

    @property
    def n_samples(self) -> int:
        return int(self.counts.shape[0])


def to_counts(acc_m_s2: np.ndarray, spec: AccelSpec = AccelSpec()) -> np.ndarray:
    """Convert m/s^2 to int16 counts, rounding half away from zero and saturating."""
    scaled = np.asarray(acc_m_s2, dtype=np.float64) / STANDARD_GRAVITY * spec.counts_per_g
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return np.clip(rounded, -32768, 32767).astype(np.int16)


def load_bout(root: Path, rel: str, spec: AccelSpec = AccelSpec()) -> Bout:
    """Load one bout CSV. Raises RecordingError naming the file and line for any bad input."""
    path = root / rel
    folder = Path(rel).parent.name
    if folder not in FOLDER_TO_CLASS:
        raise RecordingError(
            f"{path}: unknown label folder {folder!r}; expected one of {sorted(FOLDER_TO_CLASS)}"
        )
    m = _NAME_RE.match(Path(rel).name)
    if m is None:
        raise RecordingError(
            f"{path}: file name does not match <index>_<Behaviour>_<cowID>_<date>_<time>.csv"
        )
    try:
        fh = path.open(newline="")
    except OSError as exc:
        raise RecordingError(f"{path}: cannot open: {exc.strerror}") from exc
    with fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise RecordingError(f"{path}:1: empty file, expected a header row")
        missing = [c for c in ACCEL_COLUMNS if c not in header]
        if missing:
            raise RecordingError(f"{path}:1: missing column(s) {', '.join(missing)}")
        idx = [header.index(c) for c in ACCEL_COLUMNS]
        rows: list[tuple[float, float, float]] = []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                vals = tuple(float(row[i]) for i in idx)
            except IndexError:
                raise RecordingError(
                    f"{path}:{lineno}: row has {len(row)} fields, header has {len(header)}"
                ) from None
            except ValueError:
                bad = next(c for c, i in zip(ACCEL_COLUMNS, idx, strict=True) if not _is_float(row[i]))
                raise RecordingError(
                    f"{path}:{lineno}: non-numeric value {row[header.index(bad)]!r} in column {bad}"
                ) from None
            if not all(math.isfinite(v) for v in vals):
                raise RecordingError(f"{path}:{lineno}: non-finite acceleration value {vals}")
            rows.append(vals)  # type: ignore[arg-type]
    if not rows:
        raise RecordingError(f"{path}: no data rows")
    acc = np.asarray(rows, dtype=np.float64)
    median_g = float(np.median(np.linalg.norm(acc, axis=1)) / STANDARD_GRAVITY)
    return Bout(
        path=rel,
        cow=m["cow"],
        label=FOLDER_TO_CLASS[folder],
        behaviour=m["behaviour"],
        counts=to_counts(acc, spec),
        median_g=median_g,
    )


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def bout_fault(bout: Bout) -> str | None:
    """Why a bout must be excluded (implausible gravity magnitude), or None when it is usable."""
    lo, hi = GRAVITY_PLAUSIBLE_G
    if not lo <= bout.median_g <= hi:
        return (
            f"median |a| = {bout.median_g:.2f} g outside the plausible {lo}-{hi} g "
            "(accelerometer offset fault)"
        )
    return None


def load_recordings(
    root: Path, spec: AccelSpec = AccelSpec()
) -> tuple[list[Bout], list[tuple[str, str]]]:
    """Load every bout below ``root``.

    Returns:
        (usable bouts sorted by path, excluded bouts as (path, reason)).

    Raises:
        RecordingError: the folder is missing or holds no CSV, or any CSV is malformed.
    """
    root = Path(root)
    if not root.is_dir():
        raise RecordingError(f"{root}: recordings folder not found")
    rels = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.csv"))
    if not rels:
        raise RecordingError(f"{root}: no <Label>/<bout>.csv files found")
    usable: list[Bout] = []
    excluded: list[tuple[str, str]] = []
    for rel in rels:
        bout = load_bout(root, rel, spec)
        reason = bout_fault(bout)
        if reason is None:
            usable.append(bout)
        else:
            excluded.append((rel, reason))
    return usable, excluded


def load_recordings_for(root: Path, model: ModelDescriptor) -> tuple[list[Bout], list[tuple[str, str]]]:
    """The loader plug-in of the packaged cattle descriptor (``[data] loader``): :func:`load_recordings`
    at the descriptor's sensor scale, for a descriptor whose classes are this data set's."""
    if tuple(model.classes) != CLASS_NAMES:
        raise RecordingError(f"{model.source}: model.classes {list(model.classes)}: the db-cow-walking loader gives "
                             f"{list(CLASS_NAMES)}")
    return load_recordings(root, AccelSpec(int(model.full_scale_g), int(model.counts_per_g)))
