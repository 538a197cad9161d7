"""The model descriptor: one TOML file per model that says what the classifier is.

Everything the harness would otherwise assume about a model comes from here: the class names in
order, the window (samples), the hop, the channel count, the sample rate, the sensor's full scale,
the input calibration, and for each firmware variant which reference it is checked against and
where that reference lives. The cattle model's descriptor is packaged
(``harness/config/cattle.toml``, :data:`PACKAGED_DESCRIPTOR`); a team gives its own with
``hil run --descriptor FILE`` (pytest: ``--hil-descriptor FILE`` or ``HIL_DESCRIPTOR``).

Every error names the file, the key and the problem (:class:`DescriptorError`).

Keys (a table per section; relative paths are relative to the descriptor's folder):

- ``[model]``: ``name`` (text), ``classes`` (list of distinct names, 2..8 (protocol.MAX_SCORES), in the order of the
  model's outputs), ``window`` (samples, 1..65535), ``hop`` (samples, 1..window), ``channels``
  (1..255), ``sample_rate_hz`` (> 0).
- ``[sensor]``: ``full_scale_g`` (> 0), ``counts_per_g`` (> 0): how g become device counts.
- ``[input]``: ``calibration``, one of :data:`CALIBRATIONS`.
- ``[data]`` (optional): ``loader``, the recordings loader plug-in as ``module:function``
  (harness.data.loaders; a module next to the descriptor is found), and ``held_out``, the animals
  the fixtures are cut from and the models never train on.
- ``[paths]``: ``models`` (the folder of the reference files), ``fixtures`` (the fixture folder),
  optionally ``generated`` (the folder `hil export` writes this model's C sources into; the harness
  builds our firmware for the model from it, into its ``build/`` subfolder);
  ``packaged:REL`` names a folder of the harness's packaged fixtures (harness.assets), in a
  checkout or an installed wheel alike.
- ``[variants.NAME]``, NAME one of :data:`VARIANT_NAMES`: ``reference``, one of
  :data:`REFERENCE_KINDS`; ``file`` (the reference's file or stem inside the models folder);
  ``tolerance`` (float references only: largest |device score - reference score| accepted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from harness.assets import packaged_path
from harness.config.toml_file import read_toml
from protocol.messages import MAX_SCORES

__all__ = [
    "CALIBRATIONS",
    "PACKAGED_DESCRIPTOR",
    "REFERENCE_KINDS",
    "VARIANT_NAMES",
    "DescriptorError",
    "ModelDescriptor",
    "VariantSpec",
    "load_descriptor",
]

PACKAGED_DESCRIPTOR = Path(__file__).with_name("cattle.toml")
"""The cattle model's descriptor, the default of every command."""
VARIANT_NAMES = ("float32", "w8a16", "w16a16", "w8a8")
"""The firmware variants the protocol can name (protocol.Variant), in its order."""
REFERENCE_KINDS = {
    "torch": "the harness's float GRU student (<file>.pt + <file>.json, written by `hil train`)",
    "dq": "the harness's integer reference of a DQ-quantized student (<file>.npz + <file>.json, `hil quantize`)",
    "onnx": "a float model in ONNX (<file>, run with onnxruntime; its metadata carries the model hash, `hil onnx`)",
    "expected": "an expected-outputs file (npz) that any toolchain can write: classes and scores per window",
}
"""Where a variant's reference outputs come from."""
FLOAT_REFERENCES = ("torch", "onnx")
CALIBRATIONS = {
    "none": "the windows reach the model as recorded",
    "rotation-z": "a per-animal rotation about the sensor's z axis (cos, sin in Q14), applied in integers",
}


class DescriptorError(ValueError):
    """A descriptor that cannot be used; the message says file, key and problem."""


@dataclass(frozen=True)
class VariantSpec:
    """One firmware variant of the model and the reference it is checked against."""

    name: str
    reference: str
    """one of REFERENCE_KINDS"""
    file: str
    """the reference's file (or stem) inside the models folder, as the descriptor gives it"""
    tolerance: float | None = None
    """float references: the largest |device score - reference score| accepted"""


@dataclass(frozen=True)
class ModelDescriptor:
    source: Path
    name: str
    classes: tuple[str, ...]
    window: int
    hop: int
    channels: int
    sample_rate_hz: float
    full_scale_g: float
    counts_per_g: float
    calibration: str
    models_dir: Path
    fixtures_dir: Path
    variants: dict[str, VariantSpec]
    loader: str | None = None
    """the recordings loader plug-in, ``module:function`` (None: the descriptor names none)"""
    held_out: tuple[str, ...] = ()
    """the fixture animals, never trained on"""
    generated_dir: Path | None = None
    """the folder of this model's C sources (`hil export`); our firmware for it is built from them.
    None: the packaged sources (device_fw/generated)"""

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def variant(self, name: str) -> VariantSpec:
        """The variant ``name``; a ValueError naming the descriptor when it has none such."""
        if name not in self.variants:
            raise DescriptorError(f"{self.source}: variants: no variant {name!r} (it has "
                                  f"{', '.join(self.variants) or 'none'})")
        return self.variants[name]

    def reference_path(self, name: str) -> Path:
        """Where the reference of variant ``name`` lives (the models folder joined with its file)."""
        return self.models_dir / self.variant(name).file

    def with_models_dir(self, models_dir: Path) -> ModelDescriptor:
        """The same descriptor with its reference files looked up in ``models_dir`` (``--models``)."""
        return replace(self, models_dir=Path(models_dir))

    def summary(self) -> str:
        return (f"{self.name}: {self.n_classes} classes ({', '.join(self.classes)}), {self.window} samples x "
                f"{self.channels} channels at {self.sample_rate_hz:g} Hz")


_KEYS = {
    "model": {"name", "classes", "window", "hop", "channels", "sample_rate_hz"},
    "sensor": {"full_scale_g", "counts_per_g"},
    "input": {"calibration"},
    "paths": {"models", "fixtures", "generated"},
}
_OPTIONAL = {"data": {"loader", "held_out"}}


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> DescriptorError:
        return DescriptorError(f"{self.path}: {key}: {problem}")

    def table(self, raw: dict[str, object], key: str) -> dict[str, object]:
        v = raw.get(key)
        if v is None:
            raise self.fail(f"[{key}]", "table missing")
        if not isinstance(v, dict):
            raise self.fail(key, f"must be a table, got {type(v).__name__}")
        return v

    def get(self, t: dict[str, object], sect: str, key: str) -> object:
        if key not in t:
            raise self.fail(f"{sect}.{key}", "missing")
        return t[key]

    def integer(self, t: dict[str, object], sect: str, key: str, lo: int, hi: int) -> int:
        v = self.get(t, sect, key)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"{sect}.{key}", f"must be a whole number, got {v!r}")
        if not lo <= v <= hi:
            raise self.fail(f"{sect}.{key}", f"{v} outside {lo}..{hi}")
        return v

    def positive(self, t: dict[str, object], sect: str, key: str) -> float:
        v = self.get(t, sect, key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise self.fail(f"{sect}.{key}", f"must be a number above 0, got {v!r}")
        return float(v)

    def text(self, t: dict[str, object], sect: str, key: str) -> str:
        v = self.get(t, sect, key)
        if not isinstance(v, str) or not v.strip():
            raise self.fail(f"{sect}.{key}", f"must be a non-empty text, got {v!r}")
        return v

    def unknown(self, t: dict[str, object], sect: str, known: set[str]) -> None:
        extra = sorted(set(t) - known)
        if extra:
            raise self.fail(f"{sect}.{extra[0]}", f"unknown key; known: {', '.join(sorted(known))}")


def load_descriptor(path: Path = PACKAGED_DESCRIPTOR) -> ModelDescriptor:
    """Read and validate a descriptor. Raises FileNotFoundError or DescriptorError (file, key, problem)."""
    path = Path(path)
    raw = read_toml(path, "model descriptor", DescriptorError)
    r = _Reader(path)
    extra = sorted(set(raw) - {*_KEYS, *_OPTIONAL, "variants"})
    if extra:
        raise r.fail(extra[0], f"unknown table; known: {', '.join([*_KEYS, *_OPTIONAL, 'variants'])}")
    data = r.table(raw, "data") if "data" in raw else {}
    r.unknown(data, "data", _OPTIONAL["data"])
    loader = r.text(data, "data", "loader") if "loader" in data else None
    if loader is not None and (loader.count(":") != 1 or not all(loader.split(":"))):
        raise r.fail("data.loader", f"{loader!r} is not module:function")
    held = data.get("held_out", [])
    if not isinstance(held, list) or not all(isinstance(a, str) and a for a in held) or len(set(held)) != len(held):
        raise r.fail("data.held_out", f"must be a list of distinct animal ids, got {held!r}")
    tables = {k: r.table(raw, k) for k in _KEYS}
    for k, known in _KEYS.items():
        r.unknown(tables[k], k, known)
    m = tables["model"]
    classes = r.get(m, "model", "classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) and c.strip() for c in classes):
        raise r.fail("model.classes", f"must be a list of non-empty names, got {classes!r}")
    if not 2 <= len(classes) <= MAX_SCORES:
        raise r.fail("model.classes", f"{len(classes)} classes; a classifier has 2..{MAX_SCORES} (a Result frame "
                     f"carries at most {MAX_SCORES} scores)")
    dup = sorted({c for c in classes if classes.count(c) > 1})
    if dup:
        raise r.fail("model.classes", f"{', '.join(dup)} named twice")
    window = r.integer(m, "model", "window", 1, 65535)
    hop = r.integer(m, "model", "hop", 1, window)
    channels = r.integer(m, "model", "channels", 1, 255)
    calibration = r.text(tables["input"], "input", "calibration")
    if calibration not in CALIBRATIONS:
        raise r.fail("input.calibration", f"{calibration!r} unknown; known: {', '.join(CALIBRATIONS)}")
    if calibration == "rotation-z" and channels != 3:
        raise r.fail("input.calibration", f"rotation-z needs 3 channels (x, y, z), the model has {channels}")
    here = path.resolve().parent
    models_dir = packaged_path(r.text(tables["paths"], "paths", "models"), here)
    fixtures_dir = packaged_path(r.text(tables["paths"], "paths", "fixtures"), here)
    generated_dir = (packaged_path(r.text(tables["paths"], "paths", "generated"), here)
                     if "generated" in tables["paths"] else None)
    vraw = raw.get("variants")
    if not isinstance(vraw, dict) or not vraw:
        raise r.fail("[variants]", "missing: give at least one [variants.NAME] table")
    variants: dict[str, VariantSpec] = {}
    for name, v in vraw.items():
        sect = f"variants.{name}"
        if name not in VARIANT_NAMES:
            raise r.fail(sect, f"unknown variant; known: {', '.join(VARIANT_NAMES)}")
        if not isinstance(v, dict):
            raise r.fail(sect, f"must be a table, got {type(v).__name__}")
        r.unknown(v, sect, {"reference", "file", "tolerance"})
        kind = r.text(v, sect, "reference")
        if kind not in REFERENCE_KINDS:
            raise r.fail(f"{sect}.reference", f"{kind!r} unknown; known: {', '.join(REFERENCE_KINDS)}")
        if kind == "dq" and name == "float32":
            raise r.fail(f"{sect}.reference", "dq is an integer reference; the float32 variant needs a float one")
        if kind in FLOAT_REFERENCES and name != "float32":
            raise r.fail(f"{sect}.reference", f"{kind} is a float reference; an integer variant needs dq or expected")
        tol: float | None = None
        if "tolerance" in v:
            if kind not in FLOAT_REFERENCES and not (kind == "expected" and name == "float32"):
                raise r.fail(f"{sect}.tolerance", "only a float variant has a tolerance (integers are bit-exact)")
            tol = r.positive(v, sect, "tolerance")
        elif name == "float32":
            raise r.fail(f"{sect}.tolerance", "missing: a float variant states the tolerance it is checked with")
        variants[name] = VariantSpec(name, kind, r.text(v, sect, "file"), tol)
    return ModelDescriptor(
        source=path, name=r.text(m, "model", "name"), classes=tuple(classes), window=window, hop=hop,
        channels=channels, sample_rate_hz=r.positive(m, "model", "sample_rate_hz"),
        full_scale_g=r.positive(tables["sensor"], "sensor", "full_scale_g"),
        counts_per_g=r.positive(tables["sensor"], "sensor", "counts_per_g"), calibration=calibration,
        models_dir=models_dir, fixtures_dir=fixtures_dir, variants=variants, loader=loader, held_out=tuple(held),
        generated_dir=generated_dir,
    )
