"""pytest plugin (entry point ``pytest11: hil``): run the acceptance suite against QEMU, Renode or
an attached board with the same test module.

Options (all ``--hil-*``) are declared in :func:`pytest_addoption`; session fixtures below; the
hooks parametrize every test that takes ``hil_case`` over board x variant. A target that is
unavailable skips with its reason; a target that broke once is marked broken and the rest of its
tests skip with that reason instead of failing one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.data.fixtures import FixtureSet, load_fixtures
from harness.evaluate import DeviceRun, check_acceptance, load_thresholds, run_device
from harness.targets import TargetUnavailable
from harness.targets.base import Target

__all__ = ["HilCase", "HilConfig"]

_REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("hil", "hardware-in-the-loop harness")
    g.addoption("--hil-target", default="qemu", choices=("qemu", "renode", "board"),
                help="where the firmware runs (default qemu)")
    g.addoption("--hil-board", action="append", choices=("collar", "eartag"), help="repeatable; default both")
    g.addoption("--hil-variant", action="append", choices=("float32", "w8a16", "w16a16", "w8a8"),
                help="repeatable; default float32 and w8a16")
    g.addoption("--hil-port", default=None, help="serial port of an attached board")
    g.addoption("--hil-probe", default=None, help="debug probe unique id of an attached board")
    g.addoption("--hil-hardware-map", default=None, help="JSON hardware map (boards -> probes, ports)")
    g.addoption("--hil-image", default=None, help="test this ELF (e.g. field firmware) instead of building")
    g.addoption("--hil-limit", type=int, default=None, help="only the first N fixture windows")
    g.addoption("--hil-fixtures", default=str(_REPO / "fixtures" / "recordings"))
    g.addoption("--hil-models", default=str(_REPO / "fixtures" / "models"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: acceptance test run against a target (see --hil-target)")


@dataclass(frozen=True)
class HilConfig:
    target: str
    boards: tuple[str, ...]
    variants: tuple[str, ...]
    port: str | None
    probe: str | None
    hardware_map: str | None
    image: str | None
    limit: int | None
    fixtures: Path
    models: Path


@dataclass(frozen=True)
class HilCase:
    board: str
    variant: str

    def __str__(self) -> str:
        return f"{self.board}-{self.variant}"


def _config(config: pytest.Config) -> HilConfig:
    o = config.getoption
    return HilConfig(
        target=o("--hil-target"), boards=tuple(o("--hil-board") or ("collar", "eartag")),
        variants=tuple(o("--hil-variant") or ("float32", "w8a16")), port=o("--hil-port"), probe=o("--hil-probe"),
        hardware_map=o("--hil-hardware-map"), image=o("--hil-image"), limit=o("--hil-limit"),
        fixtures=Path(o("--hil-fixtures")), models=Path(o("--hil-models")))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hil_case" in metafunc.fixturenames:
        cfg = _config(metafunc.config)
        cases = [HilCase(b, v) for b in cfg.boards for v in cfg.variants]
        metafunc.parametrize("hil_case", cases, ids=[str(c) for c in cases], scope="session")


@pytest.fixture(scope="session")
def hil_config(request: pytest.FixtureRequest) -> HilConfig:
    """The --hil-* options, parsed."""
    return _config(request.config)


@pytest.fixture(scope="session")
def hil_recordings(hil_config: HilConfig) -> FixtureSet:
    """The fixture windows (calibrated counts via .calibrated_x()) and their labels."""
    return load_fixtures(hil_config.fixtures)


def make_target(cfg: HilConfig, board: str, variant: str) -> Target:
    """The target for one case; raises TargetUnavailable when it cannot run here."""
    from harness.targets import make_target as _make

    return _make(cfg.target, board, variant, image=Path(cfg.image) if cfg.image else None, port=cfg.port,
                 probe=cfg.probe, hardware_map=Path(cfg.hardware_map) if cfg.hardware_map else None)


class _Runs:
    """Session cache: one device run per case; broken targets remembered with their reason."""

    def __init__(self) -> None:
        self.runs: dict[HilCase, DeviceRun] = {}
        self.unavailable: dict[str, str] = {}
        self.broken: dict[HilCase, str] = {}


@pytest.fixture(scope="session")
def _hil_runs() -> _Runs:
    return _Runs()


@pytest.fixture(scope="session")
def hil_run(hil_case: HilCase, hil_config: HilConfig, hil_recordings: FixtureSet, _hil_runs: _Runs,
            record_testsuite_property, tmp_path_factory: pytest.TempPathFactory) -> DeviceRun:  # type: ignore[no-untyped-def]
    """The device run of this case: every fixture window streamed, scored and checked once."""
    if hil_config.target in _hil_runs.unavailable:
        pytest.skip(_hil_runs.unavailable[hil_config.target])
    if hil_case in _hil_runs.broken:
        pytest.skip(f"target broke earlier: {_hil_runs.broken[hil_case]}")
    if hil_case not in _hil_runs.runs:
        try:
            target = make_target(hil_config, hil_case.board, hil_case.variant)
            journal = tmp_path_factory.mktemp("journal") / f"{hil_case}.jsonl"
            run = run_device(target, hil_recordings, hil_config.models, journal, limit=hil_config.limit,
                             log=lambda m: None)
        except TargetUnavailable as exc:
            _hil_runs.unavailable[hil_config.target] = f"{hil_config.target} target unavailable: {exc}"
            pytest.skip(_hil_runs.unavailable[hil_config.target])
        except Exception as exc:
            _hil_runs.broken[hil_case] = f"{type(exc).__name__}: {exc}"
            raise
        check_acceptance(run, load_thresholds())
        _hil_runs.runs[hil_case] = run
        prefix = f"hil.{hil_case}"
        for key, value in (("target", hil_config.target), ("board", run.info.get("board")),
                           ("firmware_build_id", run.info.get("build_id")), ("model_hash", run.info.get("model_hash")),
                           ("fixture_set", f"{hil_config.fixtures.name} sha256 {hil_recordings.sha256[:16]}")):
            record_testsuite_property(f"{prefix}.{key}", str(value))
    return _hil_runs.runs[hil_case]
