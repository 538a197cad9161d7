"""The fixture format: windows in a deterministic npz plus JSON metadata.

``fixtures/recordings/windows.npz`` holds ``x`` (int16[N, T, 3] raw sensor counts), ``y``, ``cow``,
``bout`` and ``start``; ``meta.json`` says units, scale, rate, label map, the per-collar rotations
and where every window came from. Both are byte-for-byte reproducible from the shared data.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from harness.config.descriptor import PACKAGED_DESCRIPTOR, ModelDescriptor
from harness.data.recordings import (
    AccelSpec,
    RecordingError,
)
from harness.data.windows import (
    Q14_ONE,
    WindowSet,
    estimate_rotation_q14,
    make_windows,
    rotate_xy_q14,
)

__all__ = [
    "SAMPLE_SEED",
    "BoutSet",
    "FixtureSet",
    "build_fixtures",
    "calibrated",
    "cow_rotations",
    "load_fixtures",
    "stratified_indices",
    "write_npz",
]

MAX_PER_COW_CLASS = 75
"""The cap the committed fixture set was built with (``--max-per-class 75``)."""
_ZIP_DATE = (2024, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class BoutSet:
    """Whole bouts of the fixture cows as continuous raw counts (for stream mode): bout i is
    ``x[offsets[i]:offsets[i + 1]]``."""

    x: np.ndarray
    offsets: np.ndarray
    bout: np.ndarray
    cow: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.bout)

    def counts(self, i: int) -> np.ndarray:
        return self.x[int(self.offsets[i]):int(self.offsets[i + 1])]


SAMPLE_SEED = 0
"""Seed of the stratified sample ``hil run --limit`` takes."""


@dataclass(frozen=True)
class FixtureSet:
    windows: WindowSet
    rotations: dict[str, tuple[int, int]]
    meta: dict[str, object]
    sha256: str
    bouts: BoutSet | None = None
    """whole bouts (bouts.npz), when the fixture folder has them"""

    def calibrated_x(self) -> np.ndarray:
        """The counts the classifier receives: each cow's rotation applied in integers."""
        return calibrated(self.windows, self.rotations)

    def sample(self, n: int, seed: int = SAMPLE_SEED) -> FixtureSet:
        """A stratified sample of ``n`` windows, in file order: the (animal, class) groups take turns,
        each in an order fixed by ``seed``, so even a small sample holds every class of every animal
        while it has windows left. ``n`` >= the set's size returns the set itself."""
        if n >= len(self.windows):
            return self
        return replace(self, windows=self.windows.select(stratified_indices(self.windows.y, self.windows.cow, n,
                                                                            seed)))



def stratified_indices(y: np.ndarray, group: np.ndarray, n: int, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Indices of ``n`` windows, sorted: (group, label) strata take one window each in turn (strata
    in sorted order, windows within a stratum in a ``seed``-shuffled order) until ``n`` are taken."""
    rng = np.random.default_rng(seed)
    strata = [rng.permutation(np.flatnonzero((group == g) & (y == k)))
              for g in sorted(set(group.tolist())) for k in sorted(set(y.tolist()))]
    strata = [s for s in strata if len(s)]
    picked: list[int] = []
    depth = 0
    while len(picked) < n:
        for s in strata:
            if depth < len(s) and len(picked) < n:
                picked.append(int(s[depth]))
        depth += 1
    return np.array(sorted(picked), dtype=np.int64)


def calibrated(ws: WindowSet, rotations: dict[str, tuple[int, int]]) -> np.ndarray:
    out = np.empty_like(ws.x)
    for cow in ws.cows:
        if cow not in rotations:
            raise KeyError(f"no orientation calibration for cow {cow}")
        m = ws.cow == cow
        out[m] = rotate_xy_q14(ws.x[m], rotations[cow])
    return out


def cow_rotations(ws: WindowSet) -> dict[str, tuple[int, int]]:
    """Estimate every cow's collar rotation from its own windows (labels unused)."""
    return {cow: estimate_rotation_q14(ws.x[ws.cow == cow]) for cow in ws.cows}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez, but with fixed zip timestamps and order so the bytes are reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            arr_buf = io.BytesIO()
            np.lib.format.write_array(arr_buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, arr_buf.getvalue())
    path.write_bytes(buf.getvalue())


def source_digest(data_root: Path) -> dict[str, object]:
    """What a fixture set was built from: the folder's name, how many CSV files, and a sha256 over
    their relative paths and bytes (sorted), so a rebuild from other data is visible in meta.json."""
    h = hashlib.sha256()
    files = sorted(Path(data_root).glob("*/*.csv")) or sorted(Path(data_root).rglob("*.csv"))
    for f in files:
        h.update(f.relative_to(data_root).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
    return {"folder": Path(data_root).name, "csv_files": len(files), "sha256": h.hexdigest()}


def _subsample(ws: WindowSet, cap: int, n_classes: int) -> WindowSet:
    keep = np.zeros(len(ws), dtype=bool)
    for cow in ws.cows:
        for label in range(n_classes):
            idx = np.flatnonzero((ws.cow == cow) & (ws.y == label))
            if len(idx) > cap:
                idx = idx[np.linspace(0, len(idx) - 1, cap).round().astype(int)]
            keep[idx] = True
    return ws.select(keep)


def build_fixtures(data_root: Path, out_dir: Path, model: ModelDescriptor, cows: tuple[str, ...] | None = None,
                   max_per_class: int | None = None) -> dict[str, object]:
    """Rebuild ``out_dir`` (windows.npz, bouts.npz, meta.json) from a recordings folder read by the
    descriptor's loader plug-in: the non-overlapping windows of ``cows`` (default the descriptor's
    held-out animals), at most ``max_per_class`` per animal and class (evenly spaced; None keeps
    all). Deterministic: the same folder and options give the same bytes.

    Raises:
        RecordingError: the folder is unusable, or a requested animal has no windows.
    """
    from harness.data.loaders import load_bouts

    cows = tuple(cows if cows is not None else model.held_out)
    if not cows:
        raise RecordingError(f"{model.source}: data.held_out: no animals to cut fixtures from (give --cows)")
    window = model.window
    bouts, excluded = load_bouts(model, data_root)
    all_ws, skipped = make_windows(bouts, window, window)
    rotations = (cow_rotations(all_ws) if model.calibration == "rotation-z"
                 else {c: (Q14_ONE, 0) for c in all_ws.cows})
    missing = sorted(set(cows) - set(all_ws.cows))
    if missing:
        raise RecordingError(f"{data_root}: no windows of cow(s) {', '.join(missing)}; the folder has "
                             f"{', '.join(all_ws.cows)}")
    held = all_ws.select(np.isin(all_ws.cow, cows))
    ws = held if max_per_class is None else _subsample(held, max_per_class, model.n_classes)
    aw = max(8, *(len(c) for c in cows))  # animal ids: the committed cattle set's dtype is U8
    out_dir.mkdir(parents=True, exist_ok=True)
    held_bouts = [b for b in bouts if b.cow in cows]
    bnpz = out_dir / "bouts.npz"
    write_npz(bnpz, {
        "x": np.concatenate([b.counts for b in held_bouts]).astype(np.int16),
        "offsets": np.cumsum([0] + [b.n_samples for b in held_bouts]).astype(np.int64),
        "bout": np.array([b.path for b in held_bouts]).astype("U64"),
        "cow": np.array([b.cow for b in held_bouts]).astype(f"U{aw}"),
        "label": np.array([b.label for b in held_bouts], dtype=np.int64),
    })
    npz = out_dir / "windows.npz"
    write_npz(
        npz,
        {"x": ws.x, "y": ws.y, "cow": ws.cow.astype(f"U{aw}"), "bout": ws.bout.astype("U64"),
         "start": ws.start.astype(np.int64)},
    )
    counts = {
        cow: {name: int(((ws.cow == cow) & (ws.y == k)).sum()) for k, name in enumerate(model.classes)}
        for cow in ws.cows
    }
    meta: dict[str, object] = {
        "format": "cattle-hil-windows/1",
        "generated_by": f"hil fixtures build --cows {','.join(cows)}"
        + (f" --max-per-class {max_per_class}" if max_per_class is not None else "")
        + (f" --descriptor {model.source.name}" if model.source != PACKAGED_DESCRIPTOR else ""),
        "source": source_digest(data_root),
        "sample_rate_hz": model.sample_rate_hz,
        "window_samples": window,
        "hop_samples": window,
        "channels": ["x", "y", "z"] if model.channels == 3 else [f"c{i}" for i in range(model.channels)],
        "accelerometer": AccelSpec(int(model.full_scale_g), int(model.counts_per_g)).as_dict(),
        "label_map": {str(i): n for i, n in enumerate(model.classes)},
        "cows": list(cows),
        "max_windows_per_cow_and_class": max_per_class,
        "windows_before_cap": len(held),
        "windows_per_cow_and_class": counts,
        "n_windows": len(ws),
        "orientation_rotation_q14": {
            "doc": "per collar (cos, sin) in Q14 about sensor z, estimated from the cow's own "
            "unlabelled windows; apply with harness.data.windows.rotate_xy_q14",
            "all_cows": {c: list(r) for c, r in sorted(rotations.items())},
        },
        "excluded_bouts": [{"bout": p, "reason": r} for p, r in excluded],
        "skipped_short_bouts": len(skipped),
        "windows_npz_sha256": hashlib.sha256(npz.read_bytes()).hexdigest(),
        "bouts": {"doc": "bouts.npz: every usable bout of these cows, whole, as raw counts (stream mode)",
                  "n_bouts": len(held_bouts), "n_samples": int(sum(b.n_samples for b in held_bouts)),
                  "sha256": hashlib.sha256(bnpz.read_bytes()).hexdigest()},
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return meta


FORMAT = "cattle-hil-windows/1"
ROTATION_TOLERANCE = 0.01
"""A per-cow rotation (cos, sin) in Q14 must have cos^2 + sin^2 within 1 % of 2^28."""


def _fail(path: Path, field: str, problem: str) -> RecordingError:
    return RecordingError(f"{path}: {field}: {problem}")


def validate_meta(meta: object, path: Path, model: ModelDescriptor,
                  ws: WindowSet | None = None) -> dict[str, tuple[int, int]]:
    """Check meta.json against its format and the model descriptor (and against the windows, when
    given); return the rotations by cow. Raises RecordingError naming the file, the field and the
    problem (and the descriptor's key, where the two differ)."""
    if not isinstance(meta, dict):
        raise _fail(path, "(top level)", f"must be an object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise _fail(path, "format", f"{meta.get('format')!r} is not {FORMAT!r} (a file of another version or kind)")
    want_labels = {str(i): n for i, n in enumerate(model.classes)}
    if meta.get("label_map") != want_labels:
        raise _fail(path, "label_map", f"{meta.get('label_map')!r} differs from model.classes of {model.source}, "
                    f"{want_labels}")
    win = meta.get("window_samples")
    if isinstance(win, bool) or not isinstance(win, int) or win < 1:
        raise _fail(path, "window_samples", f"must be a positive whole number, got {win!r}")
    if win != model.window:
        raise _fail(path, "window_samples", f"{win}, but model.window of {model.source} is {model.window}")
    ch = meta.get("channels")
    if not isinstance(ch, list) or not all(isinstance(c, str) for c in ch) or len(ch) != model.channels:
        raise _fail(path, "channels", f"must name the {model.channels} channels of model.channels in "
                    f"{model.source}, got {ch!r}")
    rate = meta.get("sample_rate_hz")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or abs(float(rate) - model.sample_rate_hz) > 1e-9:
        raise _fail(path, "sample_rate_hz", f"{rate!r}, but model.sample_rate_hz of {model.source} is "
                    f"{model.sample_rate_hz:g}")
    doc = meta.get("orientation_rotation_q14")
    if not isinstance(doc, dict) or not isinstance(doc.get("all_cows"), dict):
        raise _fail(path, "orientation_rotation_q14.all_cows", "missing: the per-cow rotations")
    rotations: dict[str, tuple[int, int]] = {}
    for cow, r in doc["all_cows"].items():
        field = f"orientation_rotation_q14.all_cows.{cow}"
        if (not isinstance(r, list) or len(r) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in r)):
            raise _fail(path, field, f"must be [cos, sin] as two whole numbers (Q14), got {r!r}")
        c, s_ = int(r[0]), int(r[1])
        norm = c * c + s_ * s_
        if abs(norm - (1 << 28)) > ROTATION_TOLERANCE * (1 << 28):
            raise _fail(path, field, f"({c}, {s_}) is not a rotation: cos^2 + sin^2 = {norm}, not within "
                        f"{ROTATION_TOLERANCE:.0%} of 2^28 (Q14)")
        rotations[cow] = (c, s_)
    if ws is not None:
        if ws.x.shape[1] != win:
            raise _fail(path, "window_samples", f"{win}, but the windows hold {ws.x.shape[1]} samples each")
        n = meta.get("n_windows")
        if n != len(ws):
            raise _fail(path, "n_windows", f"{n!r}, but windows.npz holds {len(ws)} windows")
        missing = sorted(set(ws.cows) - set(rotations))
        if missing:
            raise _fail(path, "orientation_rotation_q14.all_cows", f"no rotation for cow(s) {', '.join(missing)}")
    return rotations


def load_fixtures(fixture_dir: Path, model: ModelDescriptor) -> FixtureSet:
    """Load a fixture folder; checks the npz against the hash in meta.json, and both against the
    format and the model descriptor (classes, window, channels, rate). Raises FileNotFoundError or
    RecordingError naming file, field and problem."""
    fixture_dir = Path(fixture_dir)
    npz, meta_path = fixture_dir / "windows.npz", fixture_dir / "meta.json"
    for p in (npz, meta_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: fixture file missing; rebuild with `hil fixtures build`")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{meta_path}: not valid JSON: {exc}") from None
    validate_meta(meta, meta_path, model)
    raw = npz.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if sha != meta.get("windows_npz_sha256"):
        raise RecordingError(f"{npz}: sha256 {sha} does not match {meta_path}")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            missing = sorted({"x", "y", "cow", "bout", "start"} - set(z.files))
            if missing:
                raise RecordingError(f"{npz}: arrays {', '.join(missing)} missing")
            ws = WindowSet(z["x"], z["y"], z["cow"].astype(str), z["bout"].astype(str), z["start"])
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        if isinstance(exc, RecordingError):
            raise
        raise RecordingError(f"{npz}: not a readable npz archive ({type(exc).__name__}: {exc})") from None
    if ws.x.ndim != 3 or ws.x.shape[1:] != (model.window, model.channels) or ws.x.dtype != np.int16:
        raise RecordingError(f"{npz}: x must be int16[N, {model.window}, {model.channels}] (model.window, "
                             f"model.channels of {model.source}), got {ws.x.dtype}{list(ws.x.shape)}")
    n = len(ws)
    if n == 0:
        raise RecordingError(f"{npz}: holds no windows: nothing could be verified")
    if not np.issubdtype(ws.y.dtype, np.integer):
        raise RecordingError(f"{npz}: y must hold integer class labels, got dtype {ws.y.dtype}")
    for name, arr in (("y", ws.y), ("cow", ws.cow), ("bout", ws.bout), ("start", ws.start)):
        if arr.shape != (n,):
            raise RecordingError(f"{npz}: {name} must have one entry per window ({n}), got shape {list(arr.shape)}")
    if n and (ws.y.min() < 0 or ws.y.max() >= model.n_classes):
        raise RecordingError(f"{npz}: y holds labels outside 0..{model.n_classes - 1} (the classes of {model.source})")
    rotations = validate_meta(meta, meta_path, model, ws)
    return FixtureSet(ws, rotations, meta, sha, _load_bouts(fixture_dir, meta, rotations))


def _load_bouts(fixture_dir: Path, meta: dict[str, object], rotations: dict[str, tuple[int, int]]) -> BoutSet | None:
    """bouts.npz, checked against meta.json; None when the folder has none."""
    path = fixture_dir / "bouts.npz"
    doc = meta.get("bouts")
    if not path.is_file():
        if doc is not None:
            raise FileNotFoundError(f"{path}: fixture file missing (meta.json lists it); rebuild with `hil fixtures "
                                    "build`")
        return None
    raw = path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if not isinstance(doc, dict) or doc.get("sha256") != sha:
        raise RecordingError(f"{path}: sha256 {sha} does not match meta.json bouts.sha256")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            b = BoutSet(z["x"], z["offsets"], z["bout"].astype(str), z["cow"].astype(str), z["label"])
    except (ValueError, OSError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise RecordingError(f"{path}: not a readable bouts archive ({type(exc).__name__}: {exc})") from None
    if b.x.ndim != 2 or b.x.shape[1] != 3 or b.x.dtype != np.int16:
        raise RecordingError(f"{path}: x must be int16[N, 3], got {b.x.dtype}{list(b.x.shape)}")
    if len(b.offsets) != len(b.bout) + 1 or int(b.offsets[-1]) != len(b.x) or (np.diff(b.offsets) < 0).any():
        raise RecordingError(f"{path}: offsets do not cut x into the {len(b.bout)} bouts")
    missing = sorted(set(b.cow.tolist()) - set(rotations))
    if missing:
        raise RecordingError(f"{path}: no rotation in meta.json for cow(s) {', '.join(missing)}")
    return b
