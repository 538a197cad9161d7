"""Power meters and the integration of a current trace over GPIO-marker spans.

The firmware holds its marker pin high around each inference (board_marker). A meter records
current and the marker as a digital channel; the energy of one inference is the integral of
V * I over a high span. Backends (optional extras): Nordic PPK2 via ``ppk2-api`` (GPL) and
Joulescope via ``joulescope``; each is imported only when used and says so when missing.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

__all__ = ["Joulescope", "MarkedTrace", "PowerMeter", "Ppk2", "energy_per_span", "meter_backends"]


@dataclass(frozen=True)
class MarkedTrace:
    """Uniformly sampled current (A) with the marker channel (bool) and the supply voltage (V)."""

    t0: float
    dt: float
    current_a: np.ndarray
    marker: np.ndarray
    voltage_v: float


def energy_per_span(tr: MarkedTrace) -> np.ndarray:
    """Energy (J) of every complete marker-high span (a span cut by the trace's start or end is
    dropped, never counted short). Rectangle rule: E = sum(V * I * dt) over the span's samples."""
    m = np.asarray(tr.marker, dtype=bool)
    if m.shape != np.shape(tr.current_a):
        raise ValueError(f"marker {m.shape} and current {np.shape(tr.current_a)} differ in length")
    edges = np.diff(m.astype(np.int8))
    rises = np.flatnonzero(edges == 1) + 1
    falls = np.flatnonzero(edges == -1) + 1
    spans = []
    for a in rises:
        later = falls[falls > a]
        if later.size:
            spans.append((int(a), int(later[0])))
    power = np.asarray(tr.current_a, dtype=np.float64) * tr.voltage_v
    return np.array([power[a:b].sum() * tr.dt for a, b in spans])


class PowerMeter(ABC):
    """A meter that records a marked current trace while ``run`` executes."""

    name = "?"
    package = "?"
    extra = "?"

    @classmethod
    def available(cls) -> str | None:
        """None when usable, else the reason it is not."""
        if importlib.util.find_spec(cls.package) is None:
            return f"{cls.name}: Python package {cls.package!r} not installed (pip install '.[{cls.extra}]')"
        return None

    @abstractmethod
    def record(self, seconds: float, voltage_v: float) -> MarkedTrace:
        """Record ``seconds`` of current and marker."""


class Ppk2(PowerMeter):
    name, package, extra = "Nordic PPK2", "ppk2_api", "ppk2"

    def __init__(self, port: str) -> None:
        self.port = port

    def record(self, seconds: float, voltage_v: float) -> MarkedTrace:
        import time

        from ppk2_api.ppk2_api import PPK2_API  # type: ignore[import-not-found]

        ppk = PPK2_API(self.port)
        ppk.get_modifiers()
        ppk.use_source_meter()
        ppk.set_source_voltage(int(voltage_v * 1000))
        ppk.toggle_DUT_power("ON")
        ppk.start_measuring()
        cur: list[float] = []
        mark: list[bool] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            data = ppk.get_data()
            if data:
                samples, raw = ppk.get_samples(data)
                bits = ppk.digital_channels(raw)
                cur += [s * 1e-6 for s in samples]  # ppk2-api reports microamps
                mark += [bool(b) for b in bits[0]]
            time.sleep(0.01)
        ppk.stop_measuring()
        return MarkedTrace(0.0, 1e-5, np.array(cur), np.array(mark), voltage_v)  # PPK2: 100 kS/s


class Joulescope(PowerMeter):
    name, package, extra = "Joulescope", "joulescope", "joulescope"

    def record(self, seconds: float, voltage_v: float) -> MarkedTrace:
        import joulescope  # type: ignore[import-not-found]

        with joulescope.scan_require_one(config="auto") as js:
            data = js.read(contiguous_duration=seconds, out_format="samples_get")
        sig = data["signals"]
        cur = np.asarray(sig["current"]["value"], dtype=np.float64)
        mark = np.asarray(sig["current_lsb"]["value"], dtype=bool)  # IN0 carries the marker
        dt = 1.0 / float(data["time"]["sample_rate"]["value"]) if "time" in data else 1e-6
        return MarkedTrace(0.0, dt, cur, mark, voltage_v)


def meter_backends() -> dict[str, type[PowerMeter]]:
    return {"ppk2": Ppk2, "joulescope": Joulescope}
