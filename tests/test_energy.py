"""Energy: the emulation estimate and the marker-span integration of power-meter traces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import CATTLE, FIXTURES, needs_qemu

from harness.config.boards import BOARDS
from harness.energy import MarkedTrace, PowerMeter, energy_per_span, estimate_energy, meter_backends


def test_estimate_is_cycles_over_clock_times_current_times_voltage() -> None:
    b = BOARDS["collar"]
    e = estimate_energy("collar", 48_000_000)
    assert e.joules == pytest.approx(1.0 * b.run_current_a * b.supply_v)
    assert e.kind == "estimate" and "datasheet" in e.basis


def test_spans_integrate_to_the_known_energy_of_a_generated_trace() -> None:
    dt, v = 1e-5, 3.0
    rng = np.random.default_rng(0)
    current = np.full(10_000, 1e-3) + rng.normal(0, 1e-6, 10_000)
    marker = np.zeros(10_000, bool)
    spans = [(1000, 1500), (3000, 3800), (6000, 6200)]
    for a, b in spans:
        marker[a:b] = True
        current[a:b] += 4e-3  # 5 mA while inferring
    got = energy_per_span(MarkedTrace(0.0, dt, current, marker, v))
    want = [(b - a) * dt * 5e-3 * v for a, b in spans]
    np.testing.assert_allclose(got, want, rtol=1e-3)


def test_spans_cut_by_the_start_or_end_of_the_trace_are_dropped() -> None:
    marker = np.array([1, 1, 0, 0, 1, 1, 0, 1, 1], bool)
    got = energy_per_span(MarkedTrace(0.0, 1.0, np.ones(9), marker, 1.0))
    assert got.tolist() == [2.0]


def test_meter_backends_say_why_they_are_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    for name, cls in meter_backends().items():
        reason = cls.available()
        assert reason is not None and repr(cls.package) in reason and f"[{name}]" in reason


class _TraceMeter(PowerMeter):
    """A meter at its API boundary: record() returns a generated trace with one marker span of a
    known energy per inference the harness runs (2 mA above a 1 mA floor for 3 ms, at 3 V)."""

    name, package, extra = "generated trace", "numpy", "-"

    def __init__(self, spans: int) -> None:
        self.spans = spans

    def record(self, seconds: float, voltage_v: float) -> MarkedTrace:
        dt, n = 1e-5, 1000 + self.spans * 1000
        current = np.full(n, 1e-3)
        marker = np.zeros(n, bool)
        for k in range(self.spans):
            a = 500 + k * 1000
            marker[a:a + 300] = True
            current[a:a + 300] += 2e-3
        return MarkedTrace(0.0, dt, current, marker, voltage_v)


@needs_qemu
def test_a_meter_measures_the_energy_per_inference_and_the_report_says_measured(tmp_path: Path) -> None:
    from harness.data.fixtures import load_fixtures
    from harness.device.targets import QemuTarget
    from harness.energy import MEASURE_WINDOWS
    from harness.verdict.evaluate import run_device

    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    run = run_device(QemuTarget("eartag", "w8a16"), fx, CATTLE, tmp_path / "j.jsonl", limit=25,
                     log=lambda m: None, meter=_TraceMeter(MEASURE_WINDOWS))
    v = BOARDS["eartag"].supply_v
    assert run.energy_uj_mean == pytest.approx(300 * 1e-5 * 3e-3 * v * 1e6)
    assert run.energy_basis.startswith("measured: generated trace, mean of 20 marker spans")


@needs_qemu
def test_a_meter_that_sees_too_few_marker_spans_is_an_error(tmp_path: Path) -> None:
    from harness.data.fixtures import load_fixtures
    from harness.device.targets import QemuTarget
    from harness.verdict.evaluate import run_device

    fx = load_fixtures(FIXTURES / "recordings", CATTLE)
    with pytest.raises(RuntimeError, match="3 complete marker spans for 20 inferences"):
        run_device(QemuTarget("eartag", "w8a16"), fx, CATTLE, tmp_path / "j.jsonl", limit=25,
                   log=lambda m: None, meter=_TraceMeter(3))
