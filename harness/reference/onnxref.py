"""ONNX float models as references: ``reference = "onnx"`` in a model descriptor's variant.

A team's float model from any toolchain, exported to ONNX, is run here with onnxruntime on the
same calibrated windows the device gets. The file must carry, in its metadata (``metadata_props``),
the model hash its firmware reports in the hello: key :data:`HASH_KEY`, 16 hex digits. Its one
input is ``[N, window, channels]`` float32 (N free), its one output ``[N, n_classes]`` scores.

:func:`export_student` writes such a file from the harness's own float GRU student (`hil onnx`),
with the hash `hil export` gives the float firmware. onnxruntime and onnx are the extra ``onnx``
(`pip install 'cattle-hil[onnx]'`)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

__all__ = ["HASH_KEY", "OnnxError", "export_student", "run_onnx"]

HASH_KEY = "hil.model_hash"
"""The metadata key of the model hash the firmware reports (16 hex digits)."""


class OnnxError(ValueError):
    """An ONNX file that cannot serve as a reference; the message says which file and why."""


def _need(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise OnnxError(f"an ONNX reference needs the Python package {module!r}: pip install 'cattle-hil[onnx]'")


def run_onnx(path: Path, x: np.ndarray, window: int, channels: int, n_classes: int) -> tuple[np.ndarray, bytes]:
    """Scores (float64 [N, n_classes]) of the ONNX model at ``path`` for the windows ``x``
    ([N, window, channels], calibrated counts) and the model hash its metadata carries.

    Raises:
        OnnxError: the file is not a readable ONNX model, has no hash, or its input or output
            shape does not fit the descriptor's window, channels or class count.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX model missing")
    _need("onnxruntime")
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
        raise OnnxError(f"{path}: not a model onnxruntime can load ({type(exc).__name__}: {exc})") from None
    meta = sess.get_modelmeta().custom_metadata_map
    if HASH_KEY not in meta:
        raise OnnxError(f"{path}: no {HASH_KEY!r} in the model's metadata: the file must say which model hash the "
                        "firmware reports (16 hex digits)")
    try:
        model_hash = bytes.fromhex(meta[HASH_KEY])
    except ValueError:
        model_hash = b""
    if len(model_hash) != 8:
        raise OnnxError(f"{path}: metadata {HASH_KEY} = {meta[HASH_KEY]!r} is not 16 hex digits")
    ins, outs = sess.get_inputs(), sess.get_outputs()
    if len(ins) != 1 or len(outs) != 1:
        raise OnnxError(f"{path}: {len(ins)} inputs and {len(outs)} outputs; a reference has one of each "
                        "(windows in, scores out)")
    shape = list(ins[0].shape)
    fixed = [d for d in shape[1:] if isinstance(d, int)]
    if len(shape) != 3 or fixed != [window, channels]:
        raise OnnxError(f"{path}: input {ins[0].name!r} has shape {shape}, but the descriptor's windows are "
                        f"[N, {window}, {channels}]")
    if ins[0].type != "tensor(float)":
        raise OnnxError(f"{path}: input {ins[0].name!r} is {ins[0].type}, not tensor(float)")
    oshape = list(outs[0].shape)
    if len(oshape) != 2 or oshape[1] != n_classes:
        raise OnnxError(f"{path}: output {outs[0].name!r} has shape {oshape}, but the descriptor has "
                        f"{n_classes} classes")
    xs = np.ascontiguousarray(x, dtype=np.float32)
    if isinstance(shape[0], int):  # a fixed batch: one run per batch
        if len(xs) % shape[0]:
            raise OnnxError(f"{path}: a fixed batch of {shape[0]} windows, and {len(xs)} windows do not divide")
        parts = [sess.run(None, {ins[0].name: xs[i:i + shape[0]]})[0] for i in range(0, len(xs), shape[0])]
        y = np.concatenate(parts) if parts else np.zeros((0, n_classes))
    else:
        y = sess.run(None, {ins[0].name: xs})[0]
    return np.asarray(y, dtype=np.float64).reshape(len(xs), n_classes), model_hash


def export_student(student_stem: Path, out: Path) -> Path:
    """Write the float GRU student ``student_stem`` (.pt + .json) as an ONNX model at ``out``
    (input ``windows`` [N, window, channels], output ``scores`` [N, n_classes]) with the model
    hash the float firmware reports in its metadata. Returns ``out``."""
    _need("onnx")
    _need("onnxscript")
    import onnx
    import torch

    from harness.quant.export import float_model_hash
    from harness.training.models import GruStudent
    from harness.training.train import load_model

    student = load_model(Path(student_stem))
    if not isinstance(student, GruStudent):
        raise OnnxError(f"{student_stem}: a {type(student).__name__}, not a GRU student")
    student.eval()
    channels = int(student.norm.mean.numel())
    x = torch.zeros(2, student.window, channels)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)  # "torchvision is not installed" and the like: not this export's business
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's deprecation notes about its own exporter internals
            prog = torch.onnx.export(student, (x,), dynamo=True, input_names=["windows"], output_names=["scores"],
                                     dynamic_shapes={"x": {0: torch.export.Dim("n")}}, verbose=False)
    finally:
        log.setLevel(level)
    if prog is None:  # the dynamo exporter always returns a program; this keeps the type checker honest
        raise OnnxError(f"{student_stem}: torch.onnx.export returned no program")
    proto = prog.model_proto
    onnx.helper.set_model_props(proto, {HASH_KEY: float_model_hash(student).hex(), "hil.source": str(student_stem)})
    onnx.save_model(proto, str(out))
    return out
