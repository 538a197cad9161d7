"""The acceptance suite under pytest-xdist (``pytest -n N``): which worker runs which device.

xdist's default (``--dist load``) hands tests out one by one, so the tests of one case land on
several workers and each worker makes the case's device run itself (a whole fixture stream per
worker, for one verdict). Here, instead, the tests are handed out in work units that each need one
device, and a unit goes to one worker whole:

- on an emulator (qemu, renode): one unit per case and test module (the module's tests share one
  device run: ``hil_run``, ``hil_stream_run`` or ``hil_device``), so each run happens exactly once;
- on the labgrid and board targets: one unit per board (all its cases and modules), because a
  board is one device: the worker that has it keeps it, and no two workers ask for the same place
  or port.

Units go out longest first: by the seconds the unit took in the last session that measured it
(pytest's cache, ``hil/unit-seconds``), else whole-fixture runs before stream and device-level
ones and, among those, a float variant on a board without an FPU (software floating point) first.
A worker takes its next unit when the one it has is almost done (xdist's load-scope rule).

The JUnit test-suite properties each worker records (``record_testsuite_property`` records nothing
on a worker: only the controller writes the JUnit file) travel to the controller in the worker's
output and are added to its one JUnit file.

Only ``--dist load`` (what ``-n N`` means when no ``--dist`` is given) is replaced; another
``--dist`` given explicitly is xdist's own.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

__all__ = ["CASE_ID", "HilXdist", "unit_of"]

CASE_ID = re.compile(r"\[([^\]]*)\]$")
"""the parameter id of a test node id (``...::test_x[collar-float32]``)"""
SUITE_PROPERTIES = "hil_suite_properties"
"""key of the suite properties in a worker's output (``config.workeroutput``)"""
_CACHE = "hil/unit-seconds"


def unit_of(nodeid: str, cases: dict[str, str | None]) -> str:
    """The work unit of a test: ``cases`` maps a case id (``collar-float32``) to the device it needs
    when that device is a board (a labgrid place, a port), else None (an emulator of its own). A
    test of a case is in the unit of its device, or else of its case and module; any other test is
    a unit of its own."""
    m = CASE_ID.search(nodeid)
    if m is not None:
        parts = m.group(1).split("-")
        for n in range(len(parts), 0, -1):  # the case id is a run of the id's dash-separated parts
            for i in range(len(parts) - n + 1):
                case = "-".join(parts[i:i + n])
                if case in cases:
                    device = cases[case]
                    if device is not None:
                        return f"hil-device:{device}"
                    return f"{nodeid.split('::', 1)[0]}::{case}"
    return nodeid


def _cache_key(unit: str) -> str:
    return f"{_CACHE}/{hashlib.sha256(unit.encode()).hexdigest()[:16]}"


def _estimate(unit: str, model_module: str) -> float:
    """Seconds a unit is expected to take when no session measured it: only the order matters."""
    from harness.config.boards import BOARDS

    if "::" not in unit:  # a board device's unit, or a test of its own
        return 0.0
    module, case = unit.split("::", 1)
    board, _, variant = case.partition("-")
    whole = 10.0 if module.endswith(model_module) else 1.0
    soft_float = 10.0 if variant == "float32" and board in BOARDS and not BOARDS[board].fpu else 1.0
    return whole * soft_float


class HilXdist:
    """The xdist hooks of the plugin (registered by harness.pytest_plugin when xdist is there)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._cases: dict[str, str | None] | None = None
        self.unit_seconds: dict[str, float] = {}

    @property
    def cases(self) -> dict[str, str | None]:
        """Case id -> the board device it needs (None: an emulator), from the parsed options."""
        if self._cases is None:
            from harness.pytest_plugin import case_devices

            self._cases = case_devices(self.config)
        return self._cases

    # --- the controller ---------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """A load-scope scheduler whose scopes are the units above (only for ``--dist load``)."""
        if config.getvalue("dist") != "load":
            return None
        from xdist.scheduler import LoadScopeScheduling

        cases = self.cases

        class HilScheduling(LoadScopeScheduling):  # type: ignore[misc]
            def _split_scope(self, nodeid: str) -> str:
                return unit_of(nodeid, cases)

        config.option.loadscopereorder = False  # keep the order the workers collected (longest first)
        return HilScheduling(config, log)

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """A worker finished: its suite properties go into the controller's JUnit file."""
        from _pytest.junitxml import xml_key

        xml = node.config.stash.get(xml_key, None)
        for name, value in getattr(node, "workeroutput", {}).get(SUITE_PROPERTIES, []):
            if xml is not None:
                xml.add_global_property(name, value)

    # --- a worker ----------------------------------------------------------------------------------
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        """Longest unit first (every worker sorts alike, so their collections stay identical)."""
        if not hasattr(config, "workerinput"):
            return
        cache = getattr(config, "cache", None)  # None under -p no:cacheprovider
        units = {item.nodeid: unit_of(item.nodeid, self.cases) for item in items}

        def cost(unit: str) -> float:
            measured = cache.get(_cache_key(unit), None) if cache is not None else None
            return float(measured) if isinstance(measured, int | float) else _estimate(unit, "test_acceptance.py")

        costs = {u: cost(u) for u in set(units.values())}
        first_seen = {u: i for i, u in reversed(list(enumerate(units[it.nodeid] for it in items)))}
        items.sort(key=lambda it: (-costs[units[it.nodeid]], first_seen[units[it.nodeid]]))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        unit = unit_of(report.nodeid, self.cases)
        if unit != report.nodeid:  # a unit of the harness's cases
            self.unit_seconds[unit] = self.unit_seconds.get(unit, 0.0) + report.duration

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        if not hasattr(config, "workeroutput"):
            return
        from harness.pytest_plugin import suite_properties

        config.workeroutput[SUITE_PROPERTIES] = suite_properties(config)
        if getattr(config, "cache", None) is not None:
            for unit, seconds in self.unit_seconds.items():
                config.cache.set(_cache_key(unit), round(seconds, 2))
