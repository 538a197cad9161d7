"""Energy: the emulation estimate and the marker-span integration of power-meter traces."""

from __future__ import annotations

import numpy as np
import pytest

from harness.boards import BOARDS
from harness.energy import MarkedTrace, energy_per_span, estimate_energy, meter_backends


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
