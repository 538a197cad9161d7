"""Dynamic fixed-point quantization: formats, rounding, activation tables, the torch graph against
the integer reference, the C export and the benchmark contract of the default variant."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CATTLE, FIXTURES, REPO
from hypothesis import given
from hypothesis import strategies as st

from harness.config.descriptor import load_descriptor
from harness.data.fixtures import load_fixtures
from harness.quant.calibrate import VARIANTS, float_params, float_trace, torch_logits
from harness.quant.export import render_exports
from harness.quant.intref import GATE_FRAC, model_forward_q, nn_sigmoid_s16, nn_tanh_s16
from harness.quant.model_io import load_quant, quant_model_hash
from harness.quant.qformat import QFormat, frac_for_range, requant
from harness.quant.torch_graph import QuantGraphTorch
from harness.quant.vectors import render_vectors
from harness.training.models import GruStudent
from harness.training.train import load_model

MODELS = FIXTURES / "models"
CLASSES = load_descriptor().classes


@pytest.fixture(scope="module")
def x_fixture() -> np.ndarray:
    """Calibrated counts of every fixture window."""
    return load_fixtures(FIXTURES / "recordings", CATTLE).calibrated_x()


@pytest.fixture(scope="module")
def student() -> GruStudent:
    """The default float student."""
    m = load_model(MODELS / "student")
    assert isinstance(m, GruStudent)
    return m


@given(st.integers(-(2**45), 2**45), st.integers(-20, 40), st.sampled_from([8, 16, 32]))
def test_requant_rounds_half_up_and_saturates(acc: int, shift: int, bits: int) -> None:
    # round half up, computed exactly with fractions
    want = math.floor(Fraction(acc, 2**shift) + Fraction(1, 2)) if shift > 0 else acc * 2 ** (-shift)
    want = max(-(2 ** (bits - 1)), min(2 ** (bits - 1) - 1, want))
    assert int(requant(np.array(acc), shift, bits)) == want


def test_requant_ties_go_up_for_negative_values_too() -> None:
    assert requant(np.array([-3, -2, -1, 1, 2, 3]), 1, 16).tolist() == [-1, -1, 0, 1, 1, 2]


@given(st.floats(-1e6, 1e6, allow_nan=False), st.integers(2, 32), st.integers(-8, 30))
def test_qformat_quantize_saturates_and_round_trips_within_half_a_step(x: float, bits: int, frac: int) -> None:
    f = QFormat(bits, frac)
    q = int(f.quantize(np.array(x)))
    assert f.qmin <= q <= f.qmax
    if f.qmin < x * 2**frac < f.qmax:
        assert abs(float(f.dequantize(np.array(q))) - x) <= 2.0 ** -(frac + 1) + 1e-12


def test_frac_for_range_uses_every_integer_bit() -> None:
    assert frac_for_range(1.0, 16) == 14  # 1.0 needs one integer bit: Q1.14
    assert frac_for_range(0.99, 16) == 15
    assert frac_for_range(100.0, 8) == 0


def test_activation_tables_worst_case_error() -> None:
    """Worst case over all int16 inputs: sigmoid 1.0e-4 inside [-8, 8] and 3.4e-4 beyond (the table
    clamps at sigmoid(+-8)); tanh 2.1e-4 inside [-4, 4] and 6.8e-4 beyond."""
    x = np.arange(-32768, 32768)
    for frac in (8, 10, 12, 14):
        xr = x / 2.0**frac
        sig = nn_sigmoid_s16(x, frac) / 2.0**GATE_FRAC
        th = nn_tanh_s16(x, frac) / 2.0**GATE_FRAC
        es, et = np.abs(sig - 1 / (1 + np.exp(-xr))), np.abs(th - np.tanh(xr))
        assert es[np.abs(xr) <= 8].max() < 1.0e-4 and es.max() < 3.4e-4
        assert et[np.abs(xr) <= 4].max() < 2.1e-4 and et.max() < 6.8e-4
        assert sig.min() >= 0 and sig.max() < 1 and th.min() >= -1 and th.max() < 1
        assert (np.diff(sig) >= 0).all() and (np.diff(th) >= 0).all()  # monotonic


def test_float_trace_reproduces_the_torch_student(student: GruStudent, x_fixture: np.ndarray) -> None:
    tr = float_trace(float_params(student), x_fixture)
    np.testing.assert_allclose(tr["logits"], torch_logits(student, x_fixture), atol=1e-4)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_torch_graph_equals_integer_reference_on_every_fixture_window(variant: str, x_fixture: np.ndarray) -> None:
    m = load_quant(MODELS / f"student_{variant}")
    lq, cq = model_forward_q(m, x_fixture)
    with torch.no_grad():
        lt, ct = QuantGraphTorch(m)(torch.from_numpy(x_fixture))
    assert lq.dtype == np.int64
    np.testing.assert_array_equal(lt.numpy().astype(np.int64), lq)
    np.testing.assert_array_equal(ct.numpy(), cq)


def test_default_variant_meets_the_accuracy_contract(student: GruStudent, x_fixture: np.ndarray) -> None:
    """w8a16: argmax agreement with the float student >= 99% of held-out windows, MCC within 0.01."""
    from harness.verdict.metrics import score

    y = load_fixtures(FIXTURES / "recordings", CATTLE).windows.y
    fl = torch_logits(student, x_fixture)
    _, cq = model_forward_q(load_quant(MODELS / "student_w8a16"), x_fixture)
    assert (cq == fl.argmax(1)).mean() >= 0.99
    assert abs(score(y, cq, 4).mcc - score(y, fl.argmax(1), 4).mcc) <= 0.01


def test_model_hash_changes_with_any_weight() -> None:
    m = load_quant(MODELS / "student_w8a16")
    h = quant_model_hash(m)
    m.gates["z"].w_h[3, 5] += 1
    assert quant_model_hash(m) != h


def test_export_is_reproducible_and_the_committed_files_are_not_stale() -> None:
    first, second = render_exports(MODELS), render_exports(MODELS)
    assert first == second
    gen = REPO / "device_fw" / "generated"
    for name, text in first.items():
        assert (gen / name).read_text() == text, f"{name} is stale: run `hil export`"


FLOAT_VECTOR_RTOL = 1e-5
"""torch's float logits differ in the last digits between CPUs (AVX2 against AVX-512 kernels, seen
as 1.2e-5 relative on a logit of 0.0216): a float is compared within this tolerance relative to the
scale of its line (the largest float on it, at least 1), never relative to itself, so a small logit
next to large ones gets the same absolute room as they do. FLOAT_VECTOR_ATOL_MAX caps that room far
below the firmware's 1e-3 contract, so a 1e-3 change is always caught. Integers compare exactly."""
FLOAT_VECTOR_ATOL_MAX = 1e-4


def _is_int(token: str) -> bool:
    return token.lstrip("-").isdigit()


def _same_vectors(committed: str, fresh: str, name: str) -> str | None:
    """None when equal (integers and text exactly, floats within the line's tolerance), else where not."""
    a, b = committed.splitlines(), fresh.splitlines()
    if len(a) != len(b):
        return f"{name}: {len(a)} lines, want {len(b)}"
    for lineno, (la, lb) in enumerate(zip(a, b, strict=True), start=1):
        if la == lb:
            continue
        ta, tb = la.split(), lb.split()
        if len(ta) != len(tb):
            return f"{name}:{lineno}: {len(ta)} fields, want {len(tb)}"
        floats = []
        for t in tb:
            try:
                floats.append(abs(float(t)) if not _is_int(t) else 0.0)
            except ValueError:
                floats.append(0.0)
        tol = min(FLOAT_VECTOR_RTOL * max(1.0, *floats), FLOAT_VECTOR_ATOL_MAX)
        for col, (x, y) in enumerate(zip(ta, tb, strict=True)):
            if x == y:
                continue
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                return f"{name}:{lineno} field {col}: got {x!r}, want {y!r}"
            if (_is_int(x) and _is_int(y)) or abs(fx - fy) > tol:
                return f"{name}:{lineno} field {col}: got {x}, want {y} (tolerance {tol:.2g})"
    return None


def test_kernel_vectors_are_not_stale() -> None:
    vec = REPO / "device_fw" / "tests" / "vectors"
    for name, text in render_vectors(MODELS, load_fixtures(FIXTURES / "recordings", CATTLE)).items():
        diff = _same_vectors((vec / name).read_text(), text, name)
        assert diff is None, (f"{diff}: the committed vectors and the ones computed here from the same models "
                              "differ beyond CPU noise: the exporter, the references or the models changed")


def test_the_vector_comparison_tolerates_cpu_noise_but_catches_a_logit_changed_by_1e_3() -> None:
    vec = REPO / "device_fw" / "tests" / "vectors" / "float_model.txt"
    lines = vec.read_text().splitlines()
    fields = lines[1].split()
    logit = float(fields[-2])
    noisy = [*fields[:-2], f"{logit * (1 + 1e-7):.9g}", fields[-1]]
    small = [f"{float(f) + 3e-7:.9g}" if not _is_int(f) else f for f in fields]  # AVX-512 noise on small logits
    changed = [*fields[:-2], f"{logit + 1e-3:.9g}", fields[-1]]
    text = "\n".join(lines)
    assert _same_vectors("\n".join([lines[0], " ".join(noisy), *lines[2:]]), text, "float_model.txt") is None
    assert _same_vectors("\n".join([lines[0], " ".join(small), *lines[2:]]), text, "float_model.txt") is None
    diff = _same_vectors("\n".join([lines[0], " ".join(changed), *lines[2:]]), text, "float_model.txt")
    assert diff is not None and "float_model.txt:2" in diff
    bumped = [str(int(fields[1]) + 1), *fields[2:]]
    assert _same_vectors("\n".join([lines[0], " ".join([fields[0], *bumped]), *lines[2:]]), text, "x") is not None


def test_quantized_model_file_refuses_a_tampered_hash(tmp_path: Path) -> None:
    for ext in (".npz", ".json"):
        (tmp_path / f"m{ext}").write_bytes((MODELS / f"student_w8a16{ext}").read_bytes())
    js = tmp_path / "m.json"
    meta = json.loads(js.read_text())
    meta["shift_in"] += 1
    js.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="model hash does not match"):
        load_quant(tmp_path / "m")


def test_the_exporter_proves_32_bit_sums_per_layer_and_falls_back_to_64_bit_when_it_cannot() -> None:
    from dataclasses import replace

    from harness.quant.export import ACC32_LIMIT, acc32_proof, block_weights, render_quant

    w = np.array([[127, -128, 5], [1, 2, 3]])
    p = acc32_proof(w, np.array([1000, -7]), shift=4, x_max=32768)
    assert p.bound == 1000 + 8 + (127 + 128 + 5) * 32768 and p.ok
    assert not acc32_proof(w, np.array([ACC32_LIMIT, 0]), shift=4, x_max=32768).ok
    assert not acc32_proof(w, np.array([0, 0]), shift=0, x_max=32768).ok  # a left shift: 64-bit path
    wb, in_pad = block_weights(np.arange(1, 16).reshape(5, 3))
    assert in_pad == 4 and wb.size == 8 * 4  # 5 rows -> 8, 3 inputs -> 4
    assert wb[:8].tolist() == [1, 2, 4, 5, 7, 8, 10, 11]  # pair 0 of rows 0..3

    m = load_quant(MODELS / "student_w8a16")
    shipped = render_quant(m, MODELS / "student_w8a16.npz", CLASSES)
    assert shipped.count("32-bit accumulators, blocked") == 8 and "64-bit reference" not in shipped
    g = m.gates["r"]
    big = replace(g, w_h=np.full_like(g.w_h, 127), b_h=np.full_like(g.b_h, 2**31 - 2**20))  # built to overflow
    text = render_quant(replace(m, gates={**m.gates, "r": big}), MODELS / "student_w8a16.npz", CLASSES)
    line = next(ln for ln in text.splitlines() if "r.h    bound" in ln)
    assert ">= 2^31" in line and "64-bit reference kernel (nn_fully_connected_s8w)" in line
    assert "q_r_h_w[" in text and "q_r_h_wb[" not in text and "q_r_i_wb[" in text and "q_r_i_wc[" in text


def test_the_chained_layout_recovers_every_row_exactly_modulo_2_32() -> None:
    """The arithmetic of nn_fc_blk_chain (nn.h, wc) on the exporter's words: three 32-bit MLA
    sums and one exact sum per block give the four rows' sums, for int8 and int16 weights at the
    extremes, with any input, as long as the proof's bound holds."""
    from harness.quant.export import CHAIN_OFFSET, acc32_proof, chain_weights

    rng = np.random.default_rng(7)
    m32 = (1 << 32) - 1
    for lo, hi, n_out, n_in in ((-128, 128, 6, 32), (-32768, 32768, 8, 3), (-128, 128, 4, 64)):
        w = rng.integers(lo, hi, (n_out, n_in))
        w[0, :] = lo  # extremes: a row of the most negative weight, one of the largest
        w[1, :] = hi - 1
        x_max = min(32768, ((1 << 31) - 1) // int(np.abs(w).sum(axis=1).max() + 1))
        b_r = rng.integers(-1000, 1000, n_out)
        assert acc32_proof(w, b_r - (1 << 3), 4, x_max).ok
        words, init = chain_weights(w, b_r)
        blocks = -(-n_out // 4)
        assert words.dtype == np.uint32 and words.size == blocks * n_in * 3 and init.size == blocks * 4
        for x in (np.full(n_in, -x_max), np.full(n_in, x_max - 1), rng.integers(-x_max, x_max, n_in)):
            kx = (int(x.sum()) * CHAIN_OFFSET) & m32
            got = []
            for blk in range(blocks):
                wd = words[blk * n_in * 3:(blk + 1) * n_in * 3].astype(np.int64).reshape(n_in, 3)
                ini = init[blk * 4:(blk + 1) * 4].astype(np.int64)
                p = [(int(ini[k]) - kx + int((wd[:, k] * x).sum())) & m32 for k in range(3)]
                hi16 = np.where(wd[:, 2] >= 1 << 31, wd[:, 2] - (1 << 32), wd[:, 2]) >> 16
                td = (int(ini[3]) + int((hi16 * x).sum())) & m32
                sc = (p[2] - (td << 16)) & m32
                sb = (p[1] - (sc << 16)) & m32
                sa = (p[0] - (sb << 16)) & m32
                got += [v - (1 << 32) if v >= 1 << 31 else v for v in (sa, sb, sc, td)]
            want = (w.astype(np.int64) @ x + b_r).tolist()
            assert got[:n_out] == want
