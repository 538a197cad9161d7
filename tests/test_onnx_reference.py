"""ONNX float models as references (harness.reference.onnxref): the harness's own student exported and run
with onnxruntime, and every way a team's ONNX file can be unfit, refused with file and reason."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CATTLE

from harness.config.descriptor import VariantSpec
from harness.data.fixtures import load_fixtures
from harness.quant.export import float_model_hash
from harness.reference import load_reference
from harness.reference.onnxref import HASH_KEY, OnnxError, export_student, run_onnx
from harness.training.train import load_model

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'cattle-hil[onnx]')")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'cattle-hil[onnx]')")


def _tiny(path: Path, window: int = 50, channels: int = 3, classes: int = 4, meta: dict[str, str] | None = None,
          batch: int | str = "n") -> Path:
    """A small ONNX model: scores = mean over time of the window times a fixed [channels, classes] matrix."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.arange(channels * classes, dtype=np.float32).reshape(channels, classes) / 10
    g = helper.make_graph(
        [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
         helper.make_node("MatMul", ["m", "w"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, window, channels])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, classes])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([1], np.int64), "axes")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 9
    helper.set_model_props(m, {HASH_KEY: "0123456789abcdef"} if meta is None else meta)
    onnx.save_model(m, str(path))
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_student(CATTLE.reference_path("float32"), tmp_path_factory.mktemp("onnx") / "student.onnx")


def test_the_exported_student_scores_the_fixtures_as_torch_does_and_carries_the_firmware_hash(exported: Path) -> None:
    fx = load_fixtures(CATTLE.fixtures_dir, CATTLE)
    x = fx.calibrated_x().astype(np.float32)
    student = load_model(CATTLE.reference_path("float32"))
    with torch.no_grad():
        want = student(torch.from_numpy(x)).double().numpy()
    got, h = run_onnx(exported, x, CATTLE.window, CATTLE.channels, CATTLE.n_classes)
    assert got.shape == want.shape == (len(x), 4)
    assert np.abs(got - want).max() < 1e-4
    assert h == float_model_hash(student)  # type: ignore[arg-type]


def test_a_descriptor_variant_with_an_onnx_reference_is_checked_within_its_tolerance(exported: Path) -> None:
    model = replace(CATTLE, variants={"float32": VariantSpec("float32", "onnx", str(exported), 1e-3)})
    x = load_fixtures(CATTLE.fixtures_dir, CATTLE).calibrated_x()[:8]
    ref = load_reference(model, "float32", x)
    assert not ref.exact and ref.tolerance == pytest.approx(1e-3) and ref.source == f"onnx {exported}"
    assert ref.logits.shape == (8, 4) and (ref.classes == ref.logits.argmax(1)).all()


def test_a_small_graph_runs_in_any_batch_and_a_fixed_batch_is_run_in_parts(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(6, 50, 3)).astype(np.float32)
    want = x.mean(axis=1) @ (np.arange(12, dtype=np.float32).reshape(3, 4) / 10)
    for batch in ("n", 3):
        got, h = run_onnx(_tiny(tmp_path / f"t{batch}.onnx", batch=batch), x, 50, 3, 4)
        assert np.allclose(got, want, atol=1e-5) and h == bytes.fromhex("0123456789abcdef")
    with pytest.raises(OnnxError, match=r"fixed batch of 4 windows, and 6 windows do not divide"):
        run_onnx(_tiny(tmp_path / "t4.onnx", batch=4), x, 50, 3, 4)


@pytest.mark.parametrize(("kw", "message"), [
    ({"meta": {}}, r"no 'hil.model_hash' in the model's metadata"),
    ({"meta": {HASH_KEY: "beef"}}, r"metadata hil.model_hash = 'beef' is not 16 hex digits"),
    ({"window": 64}, r"input 'x' has shape \['n', 64, 3\], but the descriptor's windows are \[N, 50, 3\]"),
    ({"channels": 2}, r"input 'x' has shape \['n', 50, 2\]"),
    ({"classes": 5}, r"output 'y' has shape \['n', 5\], but the descriptor has 4 classes"),
])
def test_an_unfit_onnx_file_is_refused_with_its_path_and_the_reason(tmp_path: Path, kw: dict[str, object],
                                                                     message: str) -> None:
    p = _tiny(tmp_path / "m.onnx", **kw)  # type: ignore[arg-type]
    with pytest.raises(OnnxError, match=message) as e:
        run_onnx(p, np.zeros((2, 50, 3), np.float32), 50, 3, 4)
    assert str(p) in str(e.value)


def test_a_file_that_is_not_onnx_or_is_missing_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x00not a model\xff" * 10)
    with pytest.raises(OnnxError, match=r"garbage\.onnx: not a model onnxruntime can load"):
        run_onnx(bad, np.zeros((1, 50, 3), np.float32), 50, 3, 4)
    with pytest.raises(FileNotFoundError, match=r"nothere\.onnx: ONNX model missing"):
        run_onnx(tmp_path / "nothere.onnx", np.zeros((1, 50, 3), np.float32), 50, 3, 4)
