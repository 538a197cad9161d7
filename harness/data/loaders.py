"""Recordings loaders as plug-ins: the model descriptor's ``[data] loader = "module:function"``.

A loader is ``load(data_root: Path, model: ModelDescriptor) -> (bouts, excluded)``: every labelled
bout (harness.data.recordings.Bout: int16 counts [N, channels], 0-based class in the descriptor's
order, the animal it came from) and the bouts or runs it left out, as (where, why). The module is
imported by name, or, when no such module is installed, from ``<module>.py`` in the descriptor's
folder (a team keeps its loader beside its descriptor). What it returns is checked here.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.config.descriptor import DescriptorError, ModelDescriptor
from harness.data.recordings import Bout, RecordingError

__all__ = ["load_bouts", "resolve_loader"]

Loader = Callable[[Path, ModelDescriptor], tuple[list[Bout], list[tuple[str, str]]]]


def resolve_loader(model: ModelDescriptor) -> Loader:
    """The loader function the descriptor names. Raises DescriptorError saying what is missing."""
    if model.loader is None:
        raise DescriptorError(f"{model.source}: data.loader: missing: this command reads recordings, and the "
                              "descriptor names no loader for them")
    mod_name, func = model.loader.split(":")
    local = model.source.resolve().parent / f"{mod_name.replace('.', '/')}.py"
    try:
        if importlib.util.find_spec(mod_name) is not None:
            module = importlib.import_module(mod_name)
        elif local.is_file():
            spec = importlib.util.spec_from_file_location(f"hil_loader_{mod_name}", local)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            raise DescriptorError(f"{model.source}: data.loader: no module {mod_name!r} installed, and no {local}")
    except ModuleNotFoundError as exc:
        raise DescriptorError(f"{model.source}: data.loader: {exc}") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise DescriptorError(f"{model.source}: data.loader: {mod_name} has no function {func!r}")
    return fn  # type: ignore[no-any-return]


def load_bouts(model: ModelDescriptor, data_root: Path) -> tuple[list[Bout], list[tuple[str, str]]]:
    """The descriptor's loader run on ``data_root``, its bouts checked against the descriptor."""
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise FileNotFoundError(f"{data_root}: recordings folder not found")
    bouts, excluded = resolve_loader(model)(data_root, model)
    for b in bouts:
        if b.counts.dtype != np.int16 or b.counts.ndim != 2 or b.counts.shape[1] != model.channels:
            raise RecordingError(f"{b.path}: the loader gave {b.counts.dtype}{list(b.counts.shape)} counts, not "
                                 f"int16[N, {model.channels}] (model.channels of {model.source})")
        if not 0 <= b.label < model.n_classes:
            raise RecordingError(f"{b.path}: the loader gave class {b.label}, outside 0..{model.n_classes - 1}")
    return bouts, excluded
