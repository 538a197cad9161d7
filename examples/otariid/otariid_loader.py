"""Loader plug-in for the otariid-behaviour recordings (sea lions and fur seals, 25 Hz, x/y/z in g),
named in otariid.toml as ``[data] loader = "otariid_loader:load"``: a team's own loader, not a fork
of the harness's.

``raw/<animal>/<dd-mm-yy>.csv``, two CSV dialects (every field quoted, or none); a bout is a run of
consecutive rows with the same ``behaviour_event``; its class is the coarse ``type``. Rows whose
``type`` is ``NA`` are unlabelled and dropped (each dropped run is reported); acceleration is
converted to the int16 counts of a +-8 g sensor (``[sensor]`` of the descriptor), rounding half away
from zero and saturating. Every error names the file and the line.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from harness.config.descriptor import ModelDescriptor
from harness.data.recordings import Bout, RecordingError

TYPE_TO_CLASS = {"Travelling": "travelling", "Resting": "resting", "Foraging": "foraging", "Grooming": "grooming",
                 "Other": "other"}
"""The source's coarse ``type`` -> the descriptor's class name."""
COLUMNS = ("behaviour_event", "x", "y", "z", "behaviour", "type")


def _session(path: Path, root: Path, model: ModelDescriptor) -> tuple[list[Bout], list[tuple[str, str]]]:
    index = {name: k for k, name in enumerate(model.classes)}
    rel = path.relative_to(root).as_posix()
    animal = path.parent.name
    runs: list[tuple[str, str, str, int, list[tuple[float, float, float]]]] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise RecordingError(f"{path}:1: columns {', '.join(missing)} missing")
        for line, row in enumerate(reader, start=2):
            try:
                xyz = (float(row["x"]), float(row["y"]), float(row["z"]))
            except (TypeError, ValueError):
                raise RecordingError(f"{path}:{line}: x, y, z must be numbers, got {row['x']!r}, {row['y']!r}, "
                                     f"{row['z']!r}") from None
            event, kind = row["behaviour_event"], row["type"]
            if runs and runs[-1][0] == event and runs[-1][1] == kind:
                runs[-1][4].append(xyz)
            else:
                runs.append((event, kind, row["behaviour"], line, [xyz]))
    bouts: list[Bout] = []
    dropped: list[tuple[str, str]] = []
    for event, kind, behaviour, line, samples in runs:
        where = f"{rel}:{line}"
        if kind == "NA":
            dropped.append((where, f"{len(samples)} unlabelled samples (type NA)"))
            continue
        if kind not in TYPE_TO_CLASS or TYPE_TO_CLASS[kind] not in index:
            raise RecordingError(f"{path}:{line}: type {kind!r} is not one of {', '.join(TYPE_TO_CLASS)}")
        g = np.asarray(samples, dtype=np.float64)
        scaled = g * model.counts_per_g
        counts = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5), -32768, 32767).astype(np.int16)
        bouts.append(Bout(path=where, cow=animal, label=index[TYPE_TO_CLASS[kind]], behaviour=f"{event} {behaviour}",
                          counts=counts, median_g=float(np.median(np.linalg.norm(g, axis=1)))))
    return bouts, dropped


def load(data_root: Path, model: ModelDescriptor) -> tuple[list[Bout], list[tuple[str, str]]]:
    """Every labelled bout below ``data_root``/raw, sorted by animal and session; and the dropped
    runs as (file:line, reason)."""
    raw = Path(data_root) / "raw"
    files = sorted(raw.glob("*/*.csv"))
    if not files:
        raise RecordingError(f"{raw}: no <animal>/<session>.csv files")
    bouts: list[Bout] = []
    dropped: list[tuple[str, str]] = []
    for f in files:
        b, d = _session(f, Path(data_root), model)
        bouts += b
        dropped += d
    return bouts, dropped
