"""Energy per inference measured on a real board: a power meter records current and the marker
GPIO while the harness runs a batch of inferences; E = mean over the complete marker-high spans of
sum(V * I * dt). Used by ``hil run --meter`` and ``pytest --hil-meter``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from harness.energy.estimate import EnergyEstimate
from harness.energy.meter import MarkedTrace, PowerMeter, energy_per_span

__all__ = ["MEASURE_WINDOWS", "measure_energy"]

MEASURE_WINDOWS = 20
"""Inferences run while the meter records."""


def measure_energy(meter: PowerMeter, run_batch: Callable[[], int], voltage_v: float,
                   seconds: float) -> EnergyEstimate:
    """Record ``seconds`` with ``meter`` while ``run_batch`` runs (it returns how many inferences it
    ran); the energy is the mean over the complete marker spans.

    Raises:
        RuntimeError: the meter failed, or saw fewer complete marker spans than inferences ran
            (the marker is not wired to the meter's digital input, or the recording was too short).
    """
    traces: list[MarkedTrace] = []
    errors: list[BaseException] = []

    def record() -> None:
        try:
            traces.append(meter.record(seconds, voltage_v))
        except Exception as exc:  # re-raised below, in the caller's thread
            errors.append(exc)

    th = threading.Thread(target=record, name="power-meter", daemon=True)
    th.start()
    time.sleep(min(0.2, seconds / 10))  # the meter is recording before the first marker edge
    ran = run_batch()
    th.join(timeout=seconds + 30)
    if errors:
        raise RuntimeError(f"{meter.name}: recording failed: {errors[0]}") from errors[0]
    if not traces:
        raise RuntimeError(f"{meter.name}: no trace within {seconds + 30:.0f} s")
    spans = energy_per_span(traces[0])
    if len(spans) < ran:
        raise RuntimeError(f"{meter.name}: {len(spans)} complete marker spans for {ran} inferences: is the marker "
                           "GPIO wired to the meter's digital input, and the recording long enough?")
    j = float(np.mean(spans))
    return EnergyEstimate(j, f"measured: {meter.name}, mean of {len(spans)} marker spans at {voltage_v} V "
                             f"(sd {float(np.std(spans)) * 1e6:.2f} uJ)", kind="measured")
