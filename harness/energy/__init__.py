"""Energy per inference: an estimate from the board table in emulation, or a measurement from a
power meter (Nordic PPK2, Joulescope) integrated over GPIO-marker spans on real boards."""

from harness.energy.estimate import EnergyEstimate, estimate_energy
from harness.energy.measure import MEASURE_WINDOWS, measure_energy
from harness.energy.meter import MarkedTrace, PowerMeter, energy_per_span, meter_backends

__all__ = [
    "MEASURE_WINDOWS",
    "EnergyEstimate",
    "MarkedTrace",
    "PowerMeter",
    "energy_per_span",
    "estimate_energy",
    "measure_energy",
    "meter_backends",
]
