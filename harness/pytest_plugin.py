"""pytest plugin (entry point ``pytest11: hil``): run the acceptance suite against QEMU, Renode or
an attached board with the same test module.

Options (all ``--hil-*``) are declared in :func:`pytest_addoption`; each also reads an environment
variable (``HIL_TARGET``, ``HIL_BOARD``, ...: the option name in capitals) and an ini key of the
same name (``hil_target`` in ``[tool.pytest.ini_options]``); the command line wins, then the
environment, then the ini file. A path in an ini file is relative to that file's folder. Session
fixtures below; the hooks parametrize every test that takes ``hil_case`` over board x variant.

Configured means required: a target that was configured (a board port, probe or hardware map; an
image; a thresholds file) and cannot be used is an error, not a skip. Only a target that was
never configured (no board given for ``--hil-target board``, no ``renode`` on PATH) skips, with
the reason. A case whose device run failed errors once with the reason; the rest of its tests
skip with that reason instead of repeating the error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.config.boards import BOARDS, PACKAGED_BOARDS, load_boards, use_boards_file
from harness.config.descriptor import PACKAGED_DESCRIPTOR, VARIANT_NAMES, ModelDescriptor, load_descriptor
from harness.config.thresholds import ACCEPTANCE_FILE, Thresholds, load_thresholds
from harness.data.fixtures import FixtureSet, load_fixtures
from harness.device.client import DeviceClient
from harness.device.targets import TargetUnavailable
from harness.device.targets.base import Target, use_model_sources
from harness.energy import PowerMeter, meter_backends
from harness.energy.meter import Ppk2
from harness.verdict.evaluate import DeviceRun, check_acceptance, run_device
from harness.verdict.stream import StreamRun

__all__ = ["HilCase", "HilConfig"]

_DEFAULT_VARIANTS = ("float32", "w8a16")
_PATH_OPTIONS = ("descriptor", "boards", "hardware-map", "image", "thresholds", "fixtures", "models")
"""Options that name a file or folder: given in an ini file, relative to the ini file's folder."""
_OPTIONS: dict[str, dict[str, object]] = {
    "target": {"default": "qemu", "choices": ("qemu", "renode", "board", "labgrid"),
               "help": "where the firmware runs: qemu (default), renode, an attached board or a labgrid place"},
    "descriptor": {"help": f"the model descriptor (TOML; default the packaged {PACKAGED_DESCRIPTOR.name})"},
    "boards": {"help": "a boards file (TOML) whose boards are added to the packaged ones (and are then the "
               "default boards)"},
    "board": {"action": "append",
              "help": "board to test, repeatable (env/ini: comma-separated); default: the boards of --hil-boards "
              "when given, else every packaged board"},
    "variant": {"action": "append", "choices": VARIANT_NAMES,
                "help": "firmware variant, repeatable (env/ini: comma-separated); default float32 and w8a16 (those "
                "the descriptor has)"},
    "port": {"help": "serial port of an attached board (board target)"},
    "probe": {"help": "debug probe unique id of an attached board, used to flash it (board target)"},
    "hardware-map": {"help": "JSON file binding boards to probes and ports (board target) or to labgrid places "
                     "(labgrid target)"},
    "place": {"help": "labgrid target: the place to acquire (every case runs on it)"},
    "coordinator": {"help": "labgrid target: the coordinator, HOST:PORT (default $LG_COORDINATOR, else "
                    "127.0.0.1:20408)"},
    "no-flash": {"action": "store_true", "help": "board target: test the firmware already on the board"},
    "image": {"help": "test this ELF (e.g. field firmware) instead of building ours"},
    "thresholds": {"help": f"acceptance floors and budgets (default {ACCEPTANCE_FILE})"},
    "meter": {"choices": ("ppk2", "joulescope"), "help": "board target: measure energy with this power meter"},
    "meter-port": {"help": "serial port of the PPK2 (with --hil-meter ppk2)"},
    "limit": {"type": int, "help": "only the first N fixture windows"},
    "hop": {"type": int, "help": "stream mode: samples between window starts (default: the descriptor's hop)"},
    "stream-limit": {"type": int, "help": "stream mode: only the first N bouts (default all)"},
    "fixtures": {"help": "fixture folder (windows.npz + meta.json) to stream (default: the descriptor's "
                 "paths.fixtures)"},
    "models": {"help": "folder of the reference files (default: the descriptor's paths.models)"},
}


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("hil", "hardware-in-the-loop harness")
    for name, kw in _OPTIONS.items():
        opts = dict(kw)
        default = opts.pop("default", None)
        help_ = str(opts.pop("help"))
        env = "HIL_" + name.upper().replace("-", "_")
        g.addoption(f"--hil-{name}", default=None, help=f"{help_} [env {env}, ini hil_{name.replace('-', '_')}]",
                    **opts)  # type: ignore[arg-type]
        parser.addini(f"hil_{name.replace('-', '_')}", help_, default=default)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: acceptance test run against a target (see --hil-target)")
    boards_file = _opt(config, "boards")
    if boards_file:
        try:
            use_boards_file(Path(str(boards_file)))
        except (OSError, ValueError) as exc:
            raise pytest.UsageError(f"hil_boards: {exc}") from None
    for b in BOARDS:
        config.addinivalue_line("markers", f"hil_{b}: a case on the {b} board (select with -m hil_{b})")
    for t in ("qemu", "renode", "board", "labgrid"):
        config.addinivalue_line("markers", f"hil_{t}: a case run on the {t} target")
    if config.pluginmanager.hasplugin("xdist"):
        from harness.device.xdist import HilXdist

        config.pluginmanager.register(HilXdist(config), "hil-xdist")


def _opt(config: pytest.Config, name: str) -> object:
    """Command line, then environment variable, then ini key (with its default)."""
    v = config.getoption(f"--hil-{name}")
    if v not in (None, False):
        return v
    env = os.environ.get("HIL_" + name.upper().replace("-", "_"))
    raw = env if env is not None else config.getini(f"hil_{name.replace('-', '_')}")
    if raw in (None, ""):
        return v
    kw = _OPTIONS[name]
    if env is None and name in _PATH_OPTIONS and config.inipath is not None:
        return str(config.inipath.parent / str(raw))  # an ini file's paths are relative to its folder
    if kw.get("action") == "append":
        vals = [x.strip() for x in str(raw).split(",") if x.strip()]
        bad = [x for x in vals if "choices" in kw and x not in kw["choices"]]  # type: ignore[operator]
        if bad:
            raise pytest.UsageError(f"hil_{name}: {', '.join(bad)} not one of {', '.join(kw['choices'])}")  # type: ignore[arg-type]
        return vals
    if kw.get("action") == "store_true":
        return str(raw).lower() in ("1", "true", "yes", "on")
    if kw.get("type") is int:
        try:
            return int(str(raw))
        except ValueError:
            raise pytest.UsageError(f"hil_{name}: {raw!r} is not a whole number") from None
    if "choices" in kw and raw not in kw["choices"]:  # type: ignore[operator]
        raise pytest.UsageError(f"hil_{name}: {raw!r} not one of {', '.join(kw['choices'])}")  # type: ignore[arg-type]
    return str(raw)


@dataclass(frozen=True)
class HilConfig:
    target: str
    boards: tuple[str, ...]
    variants: tuple[str, ...]
    port: str | None
    probe: str | None
    hardware_map: str | None
    place: str | None
    coordinator: str | None
    no_flash: bool
    image: str | None
    thresholds: Path
    meter: str | None
    meter_port: str | None
    limit: int | None
    hop: int
    stream_limit: int | None
    fixtures: Path
    model: ModelDescriptor
    """the descriptor (--hil-descriptor), its models folder set by --hil-models when given"""


@dataclass(frozen=True)
class HilCase:
    board: str
    variant: str

    def __str__(self) -> str:
        return f"{self.board}-{self.variant}"


def _config(config: pytest.Config) -> HilConfig:
    limit = _opt(config, "limit")
    if limit is not None and int(limit) < 1:  # type: ignore[call-overload]
        raise pytest.UsageError(f"--hil-limit: {limit} must be at least 1")
    try:
        model = load_descriptor(Path(str(_opt(config, "descriptor") or PACKAGED_DESCRIPTOR)))
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(f"hil_descriptor: {exc}") from None
    if _opt(config, "models"):
        model = model.with_models_dir(Path(str(_opt(config, "models"))))
    use_model_sources(model.generated_dir)
    boards_file = _opt(config, "boards")
    extra = list(load_boards(Path(str(boards_file)))) if boards_file else []
    boards: tuple[str, ...] = tuple(_opt(config, "board") or extra or PACKAGED_BOARDS)  # type: ignore[arg-type]
    unknown = [b for b in boards if b not in BOARDS]
    if unknown:
        raise pytest.UsageError(f"hil_board: {', '.join(unknown)}: unknown; known: {', '.join(BOARDS)} (a team's own "
                                "board comes from a boards file: --hil-boards FILE)")
    variants: tuple[str, ...] = tuple(_opt(config, "variant")  # type: ignore[arg-type]
                                      or [v for v in _DEFAULT_VARIANTS if v in model.variants])
    missing = [v for v in variants if v not in model.variants]
    if missing:
        raise pytest.UsageError(f"hil_variant: {', '.join(missing)}: {model.source} has no such variant (it has "
                                f"{', '.join(model.variants)})")
    target = str(_opt(config, "target") or "qemu")
    for name in ("place", "coordinator"):
        if _opt(config, name) and target != "labgrid":
            raise pytest.UsageError(f"hil_{name}: only for --hil-target labgrid (target is {target})")
    return HilConfig(
        target=target,
        boards=boards, variants=variants,
        port=_opt(config, "port"), probe=_opt(config, "probe"),  # type: ignore[arg-type]
        hardware_map=_opt(config, "hardware-map"), no_flash=bool(_opt(config, "no-flash")),  # type: ignore[arg-type]
        place=_opt(config, "place"), coordinator=_opt(config, "coordinator"),  # type: ignore[arg-type]
        image=_opt(config, "image"),  # type: ignore[arg-type]
        thresholds=Path(str(_opt(config, "thresholds") or ACCEPTANCE_FILE)),
        meter=_opt(config, "meter"), meter_port=_opt(config, "meter-port"),  # type: ignore[arg-type]
        limit=limit, hop=int(str(_opt(config, "hop") or model.hop)),  # type: ignore[arg-type]
        stream_limit=_opt(config, "stream-limit"),  # type: ignore[arg-type]
        fixtures=Path(str(_opt(config, "fixtures") or model.fixtures_dir)), model=model)


_CONFIG_KEY = pytest.StashKey[HilConfig]()


def _session_config(config: pytest.Config) -> HilConfig:
    """The parsed options, once per session. A bad value (an option, an HIL_* variable, an ini key)
    ends the session with one line naming it and pytest's usage-error status, not a traceback."""
    if _CONFIG_KEY not in config.stash:
        try:
            config.stash[_CONFIG_KEY] = _config(config)
        except pytest.UsageError as exc:
            pytest.exit(f"hil: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    return config.stash[_CONFIG_KEY]


def pytest_collection(session: pytest.Session) -> None:
    """Parse the options before any module is collected, so a bad value stops the session there."""
    _session_config(session.config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hil_case" in metafunc.fixturenames:
        cfg = _session_config(metafunc.config)
        cases = [pytest.param(HilCase(b, v), id=f"{b}-{v}",
                              marks=[pytest.mark.hil, getattr(pytest.mark, f"hil_{b}"),
                                     getattr(pytest.mark, f"hil_{cfg.target}")])
                 for b in cfg.boards for v in cfg.variants]
        metafunc.parametrize("hil_case", cases, scope="session")


@pytest.fixture(scope="session")
def hil_config(request: pytest.FixtureRequest) -> HilConfig:
    """The --hil-* options (or their environment variables and ini keys), parsed."""
    return _session_config(request.config)


@pytest.fixture(scope="session")
def hil_recordings(hil_config: HilConfig) -> FixtureSet:
    """The fixture windows (calibrated counts via .calibrated_x()) and their labels."""
    return load_fixtures(hil_config.fixtures, hil_config.model)


@pytest.fixture(scope="session")
def hil_thresholds(hil_config: HilConfig) -> dict[tuple[str, str], Thresholds]:
    """The acceptance thresholds (--hil-thresholds, default the packaged file), validated."""
    return load_thresholds(hil_config.thresholds, hil_config.model.classes)


def make_target(cfg: HilConfig, board: str, variant: str) -> Target:
    """The target for one case; raises TargetUnavailable only when nothing was configured."""
    from harness.device.targets import make_target as _make

    return _make(cfg.target, board, variant, image=Path(cfg.image) if cfg.image else None, port=cfg.port,
                 probe=cfg.probe, hardware_map=Path(cfg.hardware_map) if cfg.hardware_map else None,
                 no_flash=cfg.no_flash, place=cfg.place, coordinator=cfg.coordinator)


def case_devices(config: pytest.Config) -> dict[str, str | None]:
    """Each case's id (``collar-float32``) -> the board device it runs on when the target is a
    board (labgrid: its place; board: its board name), None on an emulator (a device of its own).
    harness.device.xdist gives each device's tests to one worker."""
    cfg = _session_config(config)
    out: dict[str, str | None] = {}
    for b in cfg.boards:
        for v in cfg.variants:
            device: str | None = None
            if cfg.target == "labgrid":
                device = f"place {cfg.place}" if cfg.place else f"board {b}"
            elif cfg.target == "board":
                device = f"board {b}"
            out[str(HilCase(b, v))] = device
    return out


_SUITE_KEY = pytest.StashKey[list[tuple[str, str]]]()


def suite_properties(config: pytest.Config) -> list[tuple[str, str]]:
    """The JUnit test-suite properties this process recorded (a worker's go to the controller)."""
    props: list[tuple[str, str]] = config.stash.get(_SUITE_KEY, [])
    return [*props]


def _suite_property(request: pytest.FixtureRequest, name: str, value: str) -> None:
    """record_testsuite_property, also under xdist: a worker keeps the property, and
    harness.device.xdist hands it to the controller, which writes the JUnit file."""
    config = request.config
    config.stash.setdefault(_SUITE_KEY, []).append((name, value))
    if not hasattr(config, "workerinput"):
        request.getfixturevalue("record_testsuite_property")(name, value)


def _meter(cfg: HilConfig) -> PowerMeter | None:
    """The configured power meter; configured but unusable is an error."""
    if cfg.meter is None:
        return None
    if cfg.target != "board":
        raise ValueError(f"--hil-meter: a power meter measures a real board, not {cfg.target}")
    cls = meter_backends()[cfg.meter]
    why = cls.available()
    if why:
        raise RuntimeError(f"--hil-meter: {why}")
    if cls is Ppk2:
        if not cfg.meter_port:
            raise ValueError("--hil-meter ppk2: give the PPK2's serial port with --hil-meter-port")
        return Ppk2(cfg.meter_port)
    return cls()  # type: ignore[call-arg]


class _Runs:
    """Session cache: one device run per case; unavailable and broken targets with their reason."""

    def __init__(self) -> None:
        self.runs: dict[HilCase, DeviceRun] = {}
        self.unavailable: dict[str, str] = {}
        self.broken: dict[HilCase, str] = {}


@pytest.fixture(scope="session")
def _hil_runs() -> _Runs:
    """Runs of this session, by case."""
    return _Runs()


@pytest.fixture
def hil_run(hil_case: HilCase, hil_config: HilConfig, hil_recordings: FixtureSet, _hil_runs: _Runs,
            hil_thresholds: dict[tuple[str, str], Thresholds], request: pytest.FixtureRequest,
            record_property, tmp_path_factory: pytest.TempPathFactory,  # type: ignore[no-untyped-def]
            _hil_devices: _Devices) -> DeviceRun:
    """The device run of this case: every fixture window streamed, scored and checked once per
    session (cached here rather than by pytest, so a failed run errors once and then skips)."""
    if hil_config.target in _hil_runs.unavailable:
        pytest.skip(_hil_runs.unavailable[hil_config.target])
    if hil_case in _hil_runs.broken:
        pytest.skip(f"this case's device run failed (reported by its first test): {_hil_runs.broken[hil_case]}")
    if hil_case not in _hil_runs.runs:
        _release_kept_device(hil_config, _hil_devices)
        try:
            target = make_target(hil_config, hil_case.board, hil_case.variant)
            journal = tmp_path_factory.mktemp("journal") / f"{hil_case}.jsonl"
            t = hil_thresholds.get((hil_case.board, hil_case.variant))
            run = run_device(target, hil_recordings, hil_config.model, journal, limit=hil_config.limit,
                             log=lambda m: None, latency_budget_ms=t.max_latency_ms if t else None,
                             meter=_meter(hil_config))
        except TargetUnavailable as exc:
            _hil_runs.unavailable[hil_config.target] = f"{hil_config.target} target unavailable: {exc}"
            pytest.skip(_hil_runs.unavailable[hil_config.target])
        except Exception as exc:
            _hil_runs.broken[hil_case] = f"{type(exc).__name__}: {exc}"
            pytest.fail(f"{hil_case} on {hil_config.target}: {type(exc).__name__}: {exc}", pytrace=False)
        check_acceptance(run, hil_thresholds)
        _hil_runs.runs[hil_case] = run
        record_property("hil.device_run", f"ran here: {run.wall_s:.1f} s host wall time (the other tests of "
                        f"{hil_case} read this run)")
        if run.device_logs:  # into the JUnit system-out with junit_logging = system-out
            print("\n".join(f"device log: {line}" for line in run.device_logs))
        prefix = f"hil.{hil_case}"
        for key, value in (("target", hil_config.target), ("board", run.info.get("board")),
                           ("firmware_build_id", run.info.get("build_id")), ("model_hash", run.info.get("model_hash")),
                           ("image", f"{run.image} sha256 {run.image_sha256}"),
                           ("fixture_set", f"{hil_config.fixtures.name} sha256 {hil_recordings.sha256[:16]}"),
                           ("thresholds", str(hil_config.thresholds))):
            _suite_property(request, f"{prefix}.{key}", str(value))
    else:
        record_property("hil.device_run", "shared: this case's run was charged to its first test")
    run = _hil_runs.runs[hil_case]
    for key, value in run.measured().items():
        record_property(f"hil.{key}", value)
    return run


@pytest.fixture(scope="session")
def _hil_streams() -> dict[HilCase, object]:
    """Stream-mode runs of this session, by case (a StreamRun, or the error string)."""
    return {}


@pytest.fixture
def hil_stream_run(hil_case: HilCase, hil_config: HilConfig, hil_recordings: FixtureSet,
                   _hil_streams: dict[HilCase, object], record_property,  # type: ignore[no-untyped-def]
                   _hil_devices: _Devices) -> StreamRun:
    """This case in stream mode: whole bouts replayed as raw samples, the device calibrating and
    windowing them itself; run once per session, a failed run errors once and then skips."""
    from harness.verdict.stream import run_stream

    done = _hil_streams.get(hil_case)
    if isinstance(done, str):
        pytest.skip(f"this case's stream run failed (reported by its first test): {done}")
    if done is None:
        _release_kept_device(hil_config, _hil_devices)
        try:
            target = make_target(hil_config, hil_case.board, hil_case.variant)
        except TargetUnavailable as exc:
            pytest.skip(f"{hil_config.target} target unavailable: {exc}")
        try:
            done = run_stream(target, hil_recordings, hil_config.model, hop=hil_config.hop,
                              limit_streams=hil_config.stream_limit)
        except TargetUnavailable as exc:
            pytest.skip(f"{hil_config.target} target unavailable: {exc}")
        except Exception as exc:
            _hil_streams[hil_case] = f"{type(exc).__name__}: {exc}"
            pytest.fail(f"{hil_case} stream mode on {hil_config.target}: {_hil_streams[hil_case]}", pytrace=False)
        _hil_streams[hil_case] = done
        record_property("hil.stream_run", "ran here (the other stream tests of this case read this run)")
    else:
        record_property("hil.stream_run", "shared: this case's stream run was charged to its first test")
    assert isinstance(done, StreamRun)
    for key, value in done.measured().items():
        record_property(f"hil.{key}", value)
    return done


class _Devices:
    """Session cache of the connected device of one case at a time (tests run grouped by case)."""

    def __init__(self) -> None:
        self.case: HilCase | None = None
        self.client: DeviceClient | None = None
        self.target: Target | None = None
        self.broken: dict[HilCase, str] = {}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.target is not None:
            self.target.stop()
        self.case = self.client = self.target = None


def _release_kept_device(cfg: HilConfig, devices: _Devices) -> None:
    """Before a device run on a board (a labgrid place, a port): stop the connected device that
    ``hil_device`` keeps for the next test, which holds the same board (one holder at a time)."""
    if cfg.target in ("labgrid", "board"):
        devices.close()


@pytest.fixture(scope="session")
def _hil_devices() -> Iterator[_Devices]:
    """Connected devices of this session; the last one is stopped at its end."""
    d = _Devices()
    yield d
    d.close()


@pytest.fixture
def hil_device(hil_case: HilCase, hil_config: HilConfig, hil_recordings: FixtureSet,
               _hil_devices: _Devices) -> DeviceClient:
    """A connected device of this case for a team's own device-level tests: the target started,
    hello done, the model hash checked against the reference. Kept for the following tests of the
    same case; a case whose device cannot be reached errors once, then its tests skip."""
    from harness.device.client import open_transport
    from harness.device.targets.base import WrongBoard
    from harness.reference import load_reference
    from harness.verdict.evaluate import board_family, check_case

    d = _hil_devices
    if hil_case in d.broken:
        pytest.skip(f"this case's device could not be reached (reported by its first test): {d.broken[hil_case]}")
    if d.case == hil_case and d.client is not None:
        return d.client
    d.close()
    try:
        target = make_target(hil_config, hil_case.board, hil_case.variant)
    except TargetUnavailable as exc:
        pytest.skip(f"{hil_config.target} target unavailable: {exc}")
    try:
        ws = hil_recordings.windows
        ref = load_reference(hil_config.model, hil_case.variant, hil_recordings.calibrated_x()[:1],
                             [(str(ws.bout[0]), int(ws.start[0]))])
        d.target = target
        client = DeviceClient(open_transport(target.start()), target.description, latency_budget_s=30.0)
        d.client, d.case = client, hil_case
        info = client.hello()
        if board_family(info.board) != hil_case.board:
            raise WrongBoard(f"{target.description}: the device says it is board {info.board!r}")
        check_case(info, hil_config.model, hil_case.variant, target.description, ref)
    except TargetUnavailable as exc:
        d.close()
        pytest.skip(f"{hil_config.target} target unavailable: {exc}")
    except Exception as exc:
        d.close()
        d.broken[hil_case] = f"{type(exc).__name__}: {exc}"
        pytest.fail(f"{hil_case} on {hil_config.target}: {d.broken[hil_case]}", pytrace=False)
    return client
