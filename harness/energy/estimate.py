"""The emulation energy estimate: E = cycles / f_clk * I_run * V, from the board table."""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.boards import BOARDS

__all__ = ["EnergyEstimate", "estimate_energy"]


@dataclass(frozen=True)
class EnergyEstimate:
    joules: float
    basis: str
    kind: str = "estimate"


def estimate_energy(board: str, cycles: float, time_base: str = "cycles") -> EnergyEstimate:
    """E = cycles / f_clk x I_run x V. ``time_base`` names what ``cycles`` counts, for the basis
    text: "cycles" (DWT), or "instructions as cycles" (an emulator's instruction count, 1 per cycle)."""
    b = BOARDS[board]
    j = cycles / b.clock_hz * b.run_current_a * b.supply_v
    return EnergyEstimate(j, f"estimate: {time_base} / {b.clock_hz / 1e6:g} MHz x {b.run_current_a * 1e3:.2f} mA x "
                             f"{b.supply_v} V ({b.power_source})")
