"""The ``hil`` command."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from harness.assets import CHECKOUT, DEVICE_FW, FIXTURES, reports_root
from harness.config.descriptor import VARIANT_NAMES
from harness.config.thresholds import ACCEPTANCE_FILE
from harness.device.linkfaults import DIRECTIONS, FAULT_KINDS, UNITS, LinkFaults, parse_rate

if TYPE_CHECKING:
    from harness.config.descriptor import ModelDescriptor
    from harness.config.thresholds import Thresholds
    from harness.data.fixtures import FixtureSet
    from harness.energy import PowerMeter
    from harness.verdict.evaluate import DeviceRun

__all__ = ["main"]

T = TypeVar("T")

REPO = CHECKOUT
DEFAULT_DATA = Path(os.environ.get("HIL_DATA") or REPO.parent / "shared" / "data" / "db-cow-walking")
"""The recordings folder: $HIL_DATA, else a copy of db-cow-walking beside this checkout."""
DEFAULT_VARIANTS = ("float32", "w8a16")
"""The variants `hil run` takes when no --variant is given (those of them the descriptor has)."""
BENCH_DEFAULTS = {"kd_alpha": 0.5, "temperature": 2.0}
"""KD defaults (see fixtures/models/kd_bench.json and the README for how they were chosen)."""


def _cmd_fixtures_build(args: argparse.Namespace) -> int:
    from harness.data.fixtures import build_fixtures

    model = _descriptor_only(args)
    cows = (tuple(c.strip() for c in args.cows.split(",") if c.strip()) if args.cows is not None
            else model.held_out)
    if not cows:
        raise ValueError("option --cows: give at least one animal id")
    if args.max_per_class < 0:
        raise ValueError(f"option --max-per-class: {args.max_per_class} must be 0 (keep all) or more")
    cap_n = args.max_per_class or None
    out = args.out or str(model.fixtures_dir)
    _guard_packaged("--out", out, args.update_packaged)
    meta = build_fixtures(Path(args.data), Path(out), model, cows=cows, max_per_class=cap_n)
    cap = (f", at most {cap_n} per cow and class: {meta['n_windows']} of {meta['windows_before_cap']}"
           if cap_n is not None else ", all windows")
    print(f"wrote {out}/windows.npz ({meta['n_windows']} windows of cows "
          f"{', '.join(meta['cows'])}{cap}) sha256 {meta['windows_npz_sha256']}")  # type: ignore[arg-type]
    for e in meta["excluded_bouts"]:  # type: ignore[attr-defined]
        print(f"excluded {e['bout']}: {e['reason']}")
    return 0


def _cmd_bench_others(args: argparse.Namespace) -> int:
    import json

    from harness.training.others import format_others, lever_presets, run_others

    presets = lever_presets()
    names = ["default", *(args.lever or [])]
    unknown = [n for n in names if n not in presets]
    if unknown:
        raise ValueError(f"option --lever: {', '.join(unknown)}: not one of {', '.join(presets)}")
    res = run_others(Path(args.data), [presets[n] for n in names], model=_descriptor_only(args),
                     cows=args.cows.split(",") if args.cows else None, max_folds=args.max_folds)
    print(format_others(res, breakdown=names))
    if args.out:
        Path(args.out).write_text(json.dumps(res.as_dict(), indent=1) + "\n")
    return 0


def _cmd_bench_kd(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from harness.training.bench import BenchConfig, run_kd_bench

    if args.merge:
        import json

        from harness.training.paired import format_paired, merge_paired

        parts = []
        for f in args.merge:
            try:
                parts.append(json.loads(Path(f).read_text()))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{f}: not a paired bench result: {exc}") from exc
            except FileNotFoundError as exc:
                raise FileNotFoundError(f"{f}: no such file (option --merge)") from exc
        try:
            merged = merge_paired(parts)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"option --merge: a part is not a paired bench result (missing {exc})") from exc
        print(format_paired(merged))
        if args.out:
            Path(args.out).write_text(json.dumps(merged, indent=1, default=str) + "\n")
            print(f"wrote {args.out}")
        return 0
    if not args.paired:
        for opt in ("context", "dense_hop", "tune", "ensemble", "folds", "feature_match"):
            if getattr(args, opt):
                raise ValueError(f"option --{opt.replace('_', '-')}: only with --paired")
        if args.jobs != 1:
            raise ValueError("option --jobs: only with --paired")
    from harness.config.descriptor import PACKAGED_DESCRIPTOR

    if args.descriptor != str(PACKAGED_DESCRIPTOR) and not args.paired:
        raise ValueError("option --descriptor: only with --paired (the plain KD bench is the cattle model's)")
    model = _descriptor_only(args)
    if args.context and args.context < model.window:
        raise ValueError(f"option --context: {args.context} samples is shorter than a window ({model.window})")
    if args.dense_hop < 0 or args.context < 0 or args.ensemble < 0 or args.feature_match < 0:
        raise ValueError("options --context/--dense-hop/--ensemble/--feature-match: must not be negative")
    if args.jobs < 1:
        raise ValueError(f"option --jobs: {args.jobs} must be at least 1")
    from harness.quant.export import firmware_max_hidden

    bad = [h for h in args.hidden or () if not 1 <= h <= firmware_max_hidden()]
    if bad:
        raise ValueError(f"option --hidden: {bad[0]} outside 1..{firmware_max_hidden()} (the firmware's NN_MAX_HIDDEN)")
    if args.paired:
        from harness.training.paired import PairedConfig, run_paired_bench

        pc = PairedConfig.quick() if args.quick else PairedConfig()
        pc = replace(pc, kd_alpha=args.alpha, temperature=args.temperature, ensemble=args.ensemble,
                     context=args.context, dense_hop=args.dense_hop, tune=args.tune, jobs=args.jobs,
                     feature_match=args.feature_match)
        if args.seeds:
            pc = replace(pc, seeds=tuple(range(args.seeds)))
        if args.folds:
            pc = replace(pc, folds=tuple(int(f) for f in args.folds.split(",")))
        if args.hidden:
            if len(args.hidden) > 1:
                raise ValueError("option --hidden: --paired runs one student size; run it once per size")
            pc = replace(pc, hidden=args.hidden[0])
        run_paired_bench(Path(args.data), pc, Path(args.out) if args.out else None,
                         log=lambda m: print(m, file=sys.stderr, flush=True), model=model)
        return 0
    cfg = BenchConfig.quick() if args.quick else BenchConfig()
    cfg = replace(cfg, kd_alpha=args.alpha, temperature=args.temperature, kd_consistent=args.consistent)
    if args.seeds:
        cfg = replace(cfg, seeds=tuple(range(args.seeds)))
    if args.hidden:
        cfg = replace(cfg, hidden=tuple(args.hidden))
    run_kd_bench(Path(args.data), cfg, Path(args.out) if args.out else None)
    return 0


def _descriptor_only(args: argparse.Namespace) -> ModelDescriptor:
    from harness.config.descriptor import load_descriptor

    _check_path_option("--descriptor", args.descriptor, folder=False)
    return load_descriptor(Path(args.descriptor))


def _descriptor_arg(p: argparse.ArgumentParser) -> None:
    from harness.config.descriptor import PACKAGED_DESCRIPTOR

    p.add_argument("--descriptor", default=str(PACKAGED_DESCRIPTOR), metavar="FILE",
                   help="the model descriptor (TOML; its loader reads --data; default: the packaged cattle model)")


PACKAGED_OUTPUTS = (FIXTURES / "recordings", FIXTURES / "models", DEVICE_FW / "generated")
"""Folders of committed files that fixtures build, train, quantize and export change only with
--update-packaged."""


def _guard_packaged(opt: str, folder: str, update: bool) -> None:
    """Refuse to write into a packaged folder unless --update-packaged says so."""
    target = Path(folder).resolve()
    for p in PACKAGED_OUTPUTS:
        if target == p.resolve() and not update:
            raise ValueError(f"option {opt}: {folder} holds the packaged files ({p.relative_to(REPO)}): give a folder "
                             "of your own, or --update-packaged to change the packaged files on purpose")


def _cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from harness.quant.export import firmware_max_hidden
    from harness.training.bench import BenchConfig, train_default

    if not 1 <= args.hidden <= firmware_max_hidden():
        raise ValueError(f"option --hidden: {args.hidden} outside 1..{firmware_max_hidden()} (the firmware's "
                         "NN_MAX_HIDDEN, device_fw/src/nn/nn.h)")
    model = _descriptor_only(args)
    out = args.out or str(model.models_dir)
    _guard_packaged("--out", out, args.update_packaged)
    cfg = replace(BenchConfig(), kd_alpha=args.alpha, temperature=args.temperature, kd_consistent=args.consistent)
    train_default(Path(args.data), Path(out), model, hidden=args.hidden, cfg=cfg)
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from harness.quant.bench import quantize_all

    model = _descriptor_only(args)
    if args.models:
        model = model.with_models_dir(Path(args.models))
    _guard_packaged("--models", str(model.models_dir), args.update_packaged)
    quantize_all(Path(args.data), model, args.clip_pct)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from harness.quant.export import write_exports

    model = _descriptor_only(args)
    models = args.models or str(model.models_dir)
    out = args.out or str(model.generated_dir or DEVICE_FW / "generated")
    _guard_packaged("--out", out, args.update_packaged)
    for p in write_exports(Path(models), Path(out)):
        print(f"wrote {p}")
    return 0


def _cmd_onnx(args: argparse.Namespace) -> int:
    from harness.reference.onnxref import export_student

    for suffix in (".pt", ".json"):
        if not Path(args.student + suffix).is_file():
            raise FileNotFoundError(f"option --student: {args.student}{suffix} not found")
    out = Path(args.out)
    _guard_packaged("--out", str(out.parent), args.update_packaged)
    if out.suffix != ".onnx":
        raise ValueError(f"option --out: {out} should end in .onnx")
    with contextlib.redirect_stdout(sys.stderr):  # the exporter's progress lines are not this command's output
        export_student(Path(args.student), out)
    print(f"wrote {out}")
    return 0


INIT_FILES = {
    "model.toml": "the model descriptor: a copy of the packaged cattle one, to edit for your model",
    "thresholds.json": "acceptance floors and budgets per board and variant (a copy of the packaged ones)",
    "boards.toml": "an example board of your own: the ear tag's support, a Cortex-M4F at 32 MHz on mps2-an386",
    "pytest.ini": "runs the acceptance suite with this folder's descriptor and thresholds",
    "conftest.py": "where your own fixtures go (the hil_* fixtures come from the installed plugin)",
    "tests/": "the acceptance suite (test_acceptance.py, test_device_level.py, test_stream_mode.py)",
}
"""What `hil init DIR` lays out, and what each is for."""
EXAMPLE_BOARDS = Path(__file__).with_name("config") / "boards.example.toml"
"""The boards file `hil init` copies (tests/test_descriptor.py checks that it loads)."""

_INIT_INI = """[pytest]
# `pytest` in this folder runs the acceptance suite against QEMU (--hil-target renode or board for
# the others); paths here are relative to this file's folder.
testpaths = tests
addopts = -ra
hil_descriptor = model.toml
hil_thresholds = thresholds.json
# hil_boards = boards.toml
"""

_INIT_CONFTEST = '''"""Your own fixtures for your device-level tests go here. The hil_* fixtures (hil_run, hil_device,
hil_recordings, hil_stream_run) come from the harness's pytest plugin, which the installed package
registers; pytest.ini points it at this folder's descriptor and thresholds."""
'''


PROGRESS_EVERY_S = 5.0
"""A log (stderr not a terminal) gets one progress line at most this often, not a redrawn bar."""


def _progress_lines(it: Iterable[T], total: int, label: str) -> Iterator[T]:
    """``it`` unchanged, with a line ``label: k/total windows`` on stderr every PROGRESS_EVERY_S."""
    import time

    last = time.monotonic()
    for k, item in enumerate(it, 1):
        yield item
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S and k < total:
            print(f"{label}: {k}/{total} windows", file=sys.stderr, flush=True)
            last = now


def _cmd_history(args: argparse.Namespace) -> int:
    import json

    from harness.report.summary import format_history, history

    root = Path(args.reports) if args.reports else reports_root()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no reports folder (hil run writes one; or give --reports DIR)")
    if args.last < 1:
        raise ValueError(f"option --last: {args.last} must be at least 1")
    runs = history(root, args.last)
    print(json.dumps(runs, indent=1) if args.json else format_history(runs))
    return 0


COMPLETION_SHELLS = ("bash", "zsh", "fish", "tcsh")


def _complete_boards(**_kwargs: object) -> list[str]:
    """Completions for --board: the packaged boards (a --boards file's own are typed out)."""
    from harness.config.boards import PACKAGED_BOARDS

    return sorted(PACKAGED_BOARDS)


def _cmd_completion(args: argparse.Namespace) -> int:
    """Completion by argcomplete, from this parser's own declarations (commands, options, choices)."""
    from argcomplete.shell_integration import shellcode

    print(shellcode(["hil"], shell=args.shell))
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    import json

    from harness.report.doctor import TARGET_NAMES, doctor, format_doctor, ready_for

    checks = doctor()
    if args.json:
        print(json.dumps({"schema": "hil-doctor/1", "checks": [c.as_dict() for c in checks],
                          "ready": {t: ready_for(checks, t) for t in TARGET_NAMES}}, indent=1))
    else:
        print(format_doctor(checks))
    return 0 if ready_for(checks, "qemu") else 1


def _cmd_init(args: argparse.Namespace) -> int:
    import shutil

    from harness.assets import ACCEPTANCE
    from harness.config.descriptor import PACKAGED_DESCRIPTOR

    out = Path(args.dir)
    _check_path_option("DIR", args.dir, folder=True)
    clash = [n for n in INIT_FILES if (out / n.rstrip("/")).exists()]
    if clash:
        raise ValueError(f"{out}: already has {', '.join(clash)}; `hil init` writes only into a folder without them")
    out.mkdir(parents=True, exist_ok=True)
    head = ("# Laid out by `hil init`: the packaged cattle model's descriptor, a start for your own. Its\n"
            "# `packaged:` paths name the harness's own models and fixtures; give yours instead.\n")
    (out / "model.toml").write_text(head + PACKAGED_DESCRIPTOR.read_text())
    shutil.copyfile(ACCEPTANCE_FILE, out / "thresholds.json")
    shutil.copyfile(EXAMPLE_BOARDS, out / "boards.toml")
    (out / "pytest.ini").write_text(_INIT_INI)
    (out / "conftest.py").write_text(_INIT_CONFTEST)
    (out / "tests").mkdir()
    for f in sorted(ACCEPTANCE.glob("test_*.py")):
        shutil.copyfile(f, out / "tests" / f.name)
    for name, what in INIT_FILES.items():
        print(f"wrote {out / name}: {what}")
    print(f"next: cd {out} && pytest   (the acceptance suite on QEMU)")
    return 0


def _cmd_bench_quant(args: argparse.Namespace) -> int:
    from harness.quant.bench import run_quant_bench

    model = _model(args)
    run_quant_bench(model, Path(args.fixtures), Path(args.out) if args.out else None)
    return 0


def _meter(args: argparse.Namespace) -> PowerMeter | None:
    from harness.energy.meter import Joulescope, Ppk2

    if args.meter == "ppk2":
        return Ppk2(args.meter_port)
    if args.meter == "joulescope":
        return Joulescope()
    return None


class Interrupted(BaseException):
    """SIGINT or SIGTERM during a command: raised where the process is, so that emulators are
    stopped by their ``finally`` and ``hil run`` still writes its report."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signame = signal.Signals(signum).name
        self.status = 128 + signum
        super().__init__(self.signame)


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def _model(args: argparse.Namespace) -> ModelDescriptor:
    """The model descriptor of this command (--descriptor), with --models applied; fills in
    --fixtures from it when not given."""
    from harness.config.descriptor import load_descriptor

    _check_path_option("--descriptor", args.descriptor, folder=False)
    model = load_descriptor(Path(args.descriptor))
    if args.models:
        model = model.with_models_dir(Path(args.models))
    if getattr(args, "fixtures", None) is None:
        args.fixtures = str(model.fixtures_dir)
    from harness.device.targets.base import use_model_sources

    use_model_sources(model.generated_dir)  # our firmware for this model: built from its exported sources
    return model


def _resolve_cases(args: argparse.Namespace, model: ModelDescriptor) -> None:
    """--boards FILE merged into the board table; --board and --variant checked against the boards
    in use and the descriptor's variants, and their defaults filled in (the boards of --boards FILE
    when given, else the packaged ones; DEFAULT_VARIANTS)."""
    from harness.config.boards import PACKAGED_BOARDS, board, use_boards_file

    _check_path_option("--boards", getattr(args, "boards", None), folder=False)
    extra = use_boards_file(Path(args.boards)) if getattr(args, "boards", None) else []
    args.board = args.board or extra or list(PACKAGED_BOARDS)
    for b in args.board:
        try:
            board(b)
        except ValueError as exc:
            raise ValueError(f"option --board: {exc}") from None
    if hasattr(args, "variant") and isinstance(args.variant, list | type(None)):
        args.variant = args.variant or [v for v in DEFAULT_VARIANTS if v in model.variants]
        for v in args.variant:
            if v not in model.variants:
                raise ValueError(f"option --variant: {v}: {model.source} has no such variant (it has "
                                 f"{', '.join(model.variants)})")


def _case_device(args: argparse.Namespace, board: str) -> str | None:
    """The board device a case of ``board`` runs on (a labgrid place, an attached board), or None
    on an emulator, which starts a device of its own for each case. Cases of one device run one
    after the other, in one job."""
    if args.target == "labgrid":
        return f"place {args.place}" if args.place else f"board {board}"
    if args.target == "board":
        return f"board {board}"
    return None


def _job_units(args: argparse.Namespace, cases: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The cases of ``hil run --jobs N`` in units of one device each, longest expected first (a
    float variant on a board without an FPU runs in software floating point)."""
    from harness.config.boards import BOARDS

    units: dict[object, list[tuple[str, str]]] = {}
    for b, v in cases:
        dev = _case_device(args, b)
        units.setdefault(dev if dev is not None else (b, v), []).append((b, v))

    def cost(unit: list[tuple[str, str]]) -> int:
        return sum(10 if v == "float32" and not BOARDS[b].fpu else 1 for b, v in unit)

    return sorted(units.values(), key=cost, reverse=True)


_JOB_INTERRUPTED: list[int] = []
"""in a job process: the signal that interrupted it (its later units do not start)"""


def _job_interrupted(signum: int, _frame: object) -> None:
    _JOB_INTERRUPTED.append(signum)
    raise Interrupted(signum)


def _job_init() -> None:
    """A job process: SIGINT and SIGTERM end its case as they end one of ``hil run`` (the
    emulator stopped, the place released, by the ``finally`` of the run), and no case of it starts
    after that."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _job_interrupted)


def _run_job(args: argparse.Namespace, fixtures: FixtureSet, thresholds: dict[tuple[str, str], Thresholds],
             report_dir: Path, link_faults: LinkFaults | None,
             cases: list[tuple[str, str]]) -> tuple[list[DeviceRun], int]:
    """One job of ``hil run --jobs N``, in its own process: its cases, one device."""
    model = _model(args)  # the descriptor's model sources and boards file, in this process too
    _resolve_cases(args, model)
    if _JOB_INTERRUPTED:
        from harness.verdict.evaluate import failed_run

        name = signal.Signals(_JOB_INTERRUPTED[0]).name
        n = len(fixtures.windows) if args.limit is None else min(args.limit, len(fixtures.windows))
        return ([failed_run(b, v, args.target, n, f"interrupted by {name}: not started", model.classes)
                 for b, v in cases], 128 + _JOB_INTERRUPTED[0])
    return _run_cases(args, model, fixtures, thresholds, report_dir, link_faults, cases)


def _run_jobs(args: argparse.Namespace, model: ModelDescriptor, fixtures: FixtureSet,
              thresholds: dict[tuple[str, str], Thresholds], report_dir: Path,
              link_faults: LinkFaults | None = None) -> tuple[list[DeviceRun], int]:
    """The cases of ``hil run`` in ``--jobs`` processes, one device each; the runs in the order
    of the cases, as ``--jobs 1`` gives them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from harness.verdict.evaluate import failed_run

    cases = [(b, v) for b in args.board for v in args.variant]
    units = _job_units(args, cases)
    if args.jobs == 1 or len(units) == 1:
        return _run_cases(args, model, fixtures, thresholds, report_dir, link_faults, cases)
    n = len(fixtures.windows) if args.limit is None else min(args.limit, len(fixtures.windows))
    by_case: dict[tuple[str, str], DeviceRun] = {}
    status = 0
    pool = ProcessPoolExecutor(max_workers=min(args.jobs, len(units)), initializer=_job_init,
                               mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(_run_job, args, fixtures, thresholds, report_dir, link_faults, u) for u in units]
        for fut in futures:
            runs, st = fut.result()
            status = max(status, st)
            by_case.update({(r.board, r.variant): r for r in runs})
    except Interrupted as exc:
        for proc in list(getattr(pool, "_processes", {}).values()):  # each job stops its device and exits
            if proc.is_alive():
                os.kill(proc.pid, exc.signum)
        pool.shutdown(wait=True, cancel_futures=True)
        for fut in futures:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                by_case.update({(r.board, r.variant): r for r in fut.result()[0]})
        why = f"interrupted by {exc.signame}: not finished; continue with the same command plus --resume"
        return [by_case.get(c) or failed_run(c[0], c[1], args.target, n, why, model.classes) for c in cases], exc.status
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [by_case[c] for c in cases], status


def _run_cases(args: argparse.Namespace, model: ModelDescriptor, fixtures: FixtureSet,
               thresholds: dict[tuple[str, str], Thresholds], report_dir: Path,
               link_faults: LinkFaults | None = None,
               cases: list[tuple[str, str]] | None = None) -> tuple[list[DeviceRun], int]:
    """The board x variant cases of ``hil run`` (default every one), one after the other; a case
    that fails does not stop the others. Returns the runs and 3 when a target was not configured
    at all (else 0)."""
    import time

    from tqdm import tqdm

    from harness.device.targets import TargetUnavailable, make_target
    from harness.verdict.evaluate import check_acceptance, failed_run, run_device

    runs: list[DeviceRun] = []
    status = 0
    n = len(fixtures.windows) if args.limit is None else min(args.limit, len(fixtures.windows))
    cases = cases if cases is not None else [(b, v) for b in args.board for v in args.variant]
    for k, (board, variant) in enumerate(cases):
        journal = report_dir / "journals" / f"{args.target}_{board}_{variant}.jsonl"

        def progress(it, total, label=f"{board}/{variant}"):  # type: ignore[no-untyped-def]
            if args.quiet:
                return it
            if sys.stderr.isatty() and args.jobs == 1:  # bars of parallel jobs would draw over each other
                return tqdm(it, total=total, desc=label, unit="win", leave=False)
            return _progress_lines(it, total, label)

        t0 = time.monotonic()
        t = thresholds.get((board, variant))
        try:
            target = make_target(args.target, board, variant, image=Path(args.image) if args.image else None,
                                 port=args.port, probe=args.probe, no_flash=args.no_flash,
                                 hardware_map=Path(args.hardware_map) if args.hardware_map else None,
                                 place=args.place, coordinator=args.coordinator)
            run = run_device(target, fixtures, model, journal, resume=args.resume, limit=args.limit,
                             progress=progress, log=lambda m: None, depth=args.depth, link_faults=link_faults,
                             link_proxy=args.link_proxy, part_bytes=args.part_bytes, abort_after=args.abort_after,
                             latency_budget_ms=t.max_latency_ms if t else None, meter=_meter(args))
        except TargetUnavailable as exc:
            print(f"hil: {args.target} target unavailable for {board}/{variant}: {exc}", file=sys.stderr)
            run = failed_run(board, variant, args.target, n, f"target unavailable: {exc}", model.classes)
            status = 3
        except (OSError, ValueError, RuntimeError, TimeoutError) as exc:
            run = failed_run(board, variant, args.target, n, f"{type(exc).__name__}: {exc}", model.classes)
            print(f"hil: {board}/{variant}: {run.aborted}", file=sys.stderr)
        except Interrupted as exc:
            # the journal keeps every window finished so far; the report says what is missing
            why = f"interrupted by {exc.signame}: not finished; continue with the same command plus --resume"
            runs.append(failed_run(board, variant, args.target, n, why, model.classes))
            runs += [failed_run(b, v, args.target, n, f"interrupted by {exc.signame}: not started", model.classes)
                     for b, v in cases[k + 1:]]
            print(f"hil: {board}/{variant}: {why}", file=sys.stderr)
            return runs, exc.status
        check_acceptance(run, thresholds)
        runs.append(run)
        print(f"{board}/{variant}: {run.n_verified}/{run.n} windows verified, {run.n_mismatches} mismatched, "
              f"{len(run.failures)} failed in {time.monotonic() - t0:.1f} s, "
              f"{'PASS' if run.passed else 'FAIL'}", file=sys.stderr)
    return runs, status


def _check_path_option(opt: str, path: str | None, folder: bool) -> None:
    """A path option that can be used as given: UTF-8 (the report names it), and for a folder
    to be written, no plain file where it or one of its parents should be."""
    if path is None:
        return
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"option {opt}: {path.encode('utf-8', 'backslashreplace').decode()}: the path is not "
                         "valid UTF-8; give a path the report can name") from None
    if folder:
        for parent in (Path(path), *Path(path).parents):
            if parent.exists() and not parent.is_dir():
                raise ValueError(f"option {opt}: {path}: {parent} is a file, not a folder")


def _validate_run(args: argparse.Namespace, model: ModelDescriptor, fixtures: FixtureSet | None = None,
                  thresholds: dict[tuple[str, str], Thresholds] | None = None) -> None:
    """Every input of ``hil run`` checked before any emulator starts or board is flashed; raises
    ValueError or FileNotFoundError saying what and where (exit 2)."""
    from harness.device.run import read_journal
    from harness.device.targets.base import check_image
    from harness.device.targets.board import HardwareMap
    from harness.reference import reference_files

    boards, variants = args.board, args.variant
    _check_path_option("--report", args.report, folder=True)  # --fixtures: checked before it is loaded
    _check_path_option("--baseline", args.baseline, folder=False)
    if args.image and Path(args.image).is_dir():
        raise ValueError(f"option --image: {args.image}: a folder, not a firmware image (give the ELF file)")
    if thresholds is not None:
        missing = [f"{b}/{v}" for b in boards for v in variants if (b, v) not in thresholds]
        if missing:
            raise ValueError(f"option --thresholds: {args.thresholds}: no entry for {', '.join(missing)} (it has "
                             f"{', '.join(sorted(f'{b}/{v}' for b, v in thresholds)) or 'none'}): a case without "
                             "thresholds cannot pass")
    if fixtures is not None:
        n = len(fixtures.windows) if args.limit is None else min(args.limit, len(fixtures.windows))
        if args.poison_window is not None and not 0 <= args.poison_window < n:
            raise ValueError(f"option --poison-window: {args.poison_window} is not one of the {n} windows this run "
                             f"sends (0..{n - 1}): it would do nothing")
        if args.mode == "stream":
            args.hop = args.hop or model.hop
            window = int(fixtures.windows.x.shape[1])
            spf = args.samples_per_frame
            if args.hop % spf or window % spf:
                raise ValueError(f"options --hop {args.hop} / --samples-per-frame {spf}: the samples per frame must "
                                 f"divide the hop and the window ({window} samples)")
            from harness.verdict.stream import check_hop
            check_hop(window, args.hop, "option --hop")
    if args.mode == "stream" and args.jobs != 1:
        raise ValueError("option --jobs: window mode only (--mode stream runs its cases one after the other)")
    if args.mode != "stream":
        for opt, flag in (("drop_frame", "--drop-frame"), ("limit_streams", "--stream-limit")):
            if getattr(args, opt):
                raise ValueError(f"option {flag}: only with --mode stream: it would do nothing")
    else:
        for opt in ("limit", "resume", "depth", "link_faults", "poison_window", "baseline", "meter", "json",
                    "link_unit", "link_proxy", "part_bytes", "abort_after"):
            if getattr(args, opt) not in (None, False):
                raise ValueError(f"option --{opt.replace('_', '-')}: not used by --mode stream: it would do nothing")
    if (args.link_unit or args.link_proxy) and not (args.link_faults or args.poison_window is not None):
        flag = "--link-unit" if args.link_unit else "--link-proxy"
        raise ValueError(f"option {flag}: only with --link-faults or --poison-window: it would do nothing")
    if args.link_proxy and args.target not in ("qemu", "renode"):
        raise ValueError(f"option --link-proxy: the proxy sits on an emulator's TCP socket; target {args.target} "
                         "has none")
    if any(f < 0 for f in args.drop_frame or ()):
        raise ValueError(f"option --drop-frame: {min(args.drop_frame)}: frame numbers start at 0")
    if len(set(boards)) != len(boards) or len(set(variants)) != len(variants):
        raise ValueError("options --board/--variant: a board or variant is given twice")
    if args.no_flash and args.image:
        raise ValueError("option --no-flash tests the firmware already on the board: it cannot be combined with "
                         "--image")
    if args.image:
        if len(boards) != 1:
            raise ValueError("option --image: an image is built for one board: give exactly one --board")
        if len(variants) != 1:
            raise ValueError("option --image: an image holds one model variant: give exactly one --variant")
        image_board = f"{boards[0]}-qemu" if args.target == "qemu" else boards[0]
        check_image(Path(args.image), boards[0], image_board)
    if args.target not in ("board", "labgrid"):
        for opt in ("port", "probe", "hardware_map"):
            if getattr(args, opt):
                raise ValueError(f"option --{opt.replace('_', '-')}: only for --target board (target is "
                                 f"{args.target})")
        if args.no_flash:
            raise ValueError(f"option --no-flash: only for --target board or labgrid (target is {args.target})")
    if args.target == "labgrid":
        for opt in ("port", "probe"):
            if getattr(args, opt):
                raise ValueError(f"option --{opt}: the labgrid target talks to a place's own resources; give "
                                 "--place (and --coordinator) instead")
        if args.place and args.hardware_map:
            raise ValueError("options --place and --hardware-map: give the place, or a map naming a place per board, "
                             "not both")
    else:
        for opt in ("place", "coordinator"):
            if getattr(args, opt):
                raise ValueError(f"option --{opt}: only for --target labgrid (target is {args.target})")
    if args.jobs < 1:
        raise ValueError(f"option --jobs: {args.jobs} must be at least 1")
        if args.meter:
            raise ValueError(f"option --meter: a power meter measures a real board, not {args.target}")
    if args.meter:
        from harness.energy import meter_backends

        why = meter_backends()[args.meter].available()
        if why:
            raise ValueError(f"option --meter: {why}")
        if args.meter == "ppk2" and not args.meter_port:
            raise ValueError("option --meter ppk2: give the PPK2's serial port with --meter-port")
    if args.hardware_map:
        hw = HardwareMap.load(Path(args.hardware_map))
        for b in boards:
            entry = hw.for_board(b)
            if args.target == "labgrid" and entry.place is None:
                raise ValueError(f"option --hardware-map: {args.hardware_map}: boards.{entry.name} names no labgrid "
                                 "place (target labgrid)")
            if args.target == "board" and entry.place is not None:
                raise ValueError(f"option --hardware-map: {args.hardware_map}: boards.{entry.name} names labgrid place "
                                 f"{entry.place}: use --target labgrid")
    if args.target == "labgrid":
        _check_places(args, boards)
    for v in variants:
        for f in reference_files(model, v):
            if not f.is_file():
                raise FileNotFoundError(f"{f}: reference file missing for variant {v} ({model.source}: "
                                        f"variants.{v}; folder: --models or paths.models)")
    if args.resume:
        for b in boards:
            for v in variants:
                j = _report_dir(args) / "journals" / f"{args.target}_{b}_{v}.jsonl"
                header = read_journal(j)[0]
                if header is None:
                    continue
                for key, want in (("board", b), ("variant", v), ("target", args.target)):
                    if getattr(header, key) != want:
                        raise ValueError(f"{j}: cannot resume: the journal's header says {key} "
                                         f"{getattr(header, key)!r}, this case is {want!r}")


def _check_places(args: argparse.Namespace, boards: list[str]) -> None:
    """Ask each place's coordinator about it before anything starts: a place that is unknown,
    acquired by someone else, offline, or without a flashing resource when the run would flash
    (no --no-flash) is refused with the coordinator's reason (exit 2). Nothing is acquired here."""
    from harness.device.targets.board import HardwareMap
    from harness.device.targets.labgrid import PlaceLease, PlaceRefused

    if args.place:
        places = {(args.place, args.coordinator)}
    elif args.hardware_map:
        hw = HardwareMap.load(Path(args.hardware_map))
        places = {(e.place, args.coordinator or e.coordinator) for e in (hw.for_board(b) for b in boards)
                  if e.place is not None}
    else:
        return  # nothing configured: the target says so (exit 3)
    opt = "--place" if args.place else "--hardware-map"
    for place, coordinator in sorted(places, key=str):
        lease = PlaceLease(coordinator, place)
        try:
            lease.check(need_flasher=not args.no_flash)
        except PlaceRefused as exc:
            raise ValueError(f"option {opt}: {exc}") from None
        finally:
            lease.release()


def _report_dir(args: argparse.Namespace) -> Path:
    """--report as given; else a new folder reports/<UTC time>-<target>-<boards> (with --resume: the
    folder reports/latest points to, whose journals are continued)."""
    import time

    if args.report:
        return Path(args.report)
    root = reports_root()
    latest = root / "latest"
    if args.resume:
        if not latest.exists():
            raise FileNotFoundError(f"{latest}: no earlier run to resume (give --report DIR)")
        return latest.resolve()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return root / f"{stamp}-{args.target}-{'-'.join(args.board)}"


def _point_latest(report_dir: Path) -> None:
    """reports/latest -> this run's folder (when it is under reports/)."""
    root = reports_root()
    if report_dir.resolve().parent != root.resolve():
        return
    latest = root / "latest"
    if latest.is_symlink() or not latest.exists():
        tmp = root / ".latest.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(report_dir.name)
        tmp.replace(latest)


def _cmd_run_stream(args: argparse.Namespace) -> int:
    import json

    from harness.data.fixtures import load_fixtures
    from harness.device.targets import TargetUnavailable, make_target
    from harness.report.provenance import collect_provenance
    from harness.verdict.stream import StreamRun, format_stream_table, run_stream

    model = _model(args)
    _resolve_cases(args, model)
    _check_path_option("--fixtures", args.fixtures, folder=False)
    fixtures = load_fixtures(Path(args.fixtures), model)
    _validate_run(args, model, fixtures)
    report_dir = _report_dir(args)
    report_dir.mkdir(parents=True, exist_ok=True)
    _point_latest(report_dir)
    prov = collect_provenance()
    runs: list[StreamRun] = []
    failed: list[str] = []
    interrupted = 0
    for board in args.board:
        for variant in args.variant:
            try:
                target = make_target(args.target, board, variant, image=Path(args.image) if args.image else None,
                                     port=args.port, probe=args.probe, no_flash=args.no_flash,
                                     hardware_map=Path(args.hardware_map) if args.hardware_map else None,
                                     place=args.place, coordinator=args.coordinator)
                runs.append(run_stream(target, fixtures, model, hop=args.hop,
                                       samples_per_frame=args.samples_per_frame, drop_frames=args.drop_frame or (),
                                       limit_streams=args.limit_streams))
                r = runs[-1]
                print(f"{board}/{variant}: {r.streams} streams, {r.samples} samples, {r.windows_verified}/"
                      f"{r.windows_expected} windows verified, {'PASS' if r.passed else 'FAIL'}", file=sys.stderr)
            except (TargetUnavailable, OSError, ValueError, RuntimeError, TimeoutError) as exc:
                failed.append(f"{board}/{variant}: {type(exc).__name__}: {exc}")
                print(f"hil: {failed[-1]}", file=sys.stderr)
            except Interrupted as exc:
                failed.append(f"{board}/{variant}: interrupted by {exc.signame}")
                interrupted = exc.status
                break
        if interrupted:
            break
    if runs:
        print(format_stream_table(runs))
    for f in failed:
        print(f"FAIL {f}")
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "stream.json").write_text(json.dumps(
        {"provenance": prov, "runs": [r.as_dict() for r in runs], "failed": failed}, indent=1, default=str) + "\n")
    from harness.report.stream_report import write_stream_report

    page = write_stream_report(runs, report_dir, prov, failed, model.classes, int(fixtures.windows.x.shape[1]))
    print(f"report: {page} (every window in {report_dir / 'stream.json'})")
    if interrupted:
        return interrupted
    return 0 if runs and not failed and all(r.passed for r in runs) else 1


def _cmd_run(args: argparse.Namespace) -> int:

    if args.mode == "stream":
        return _cmd_run_stream(args)
    import json
    from dataclasses import replace

    from harness.config.thresholds import load_thresholds
    from harness.data.fixtures import load_fixtures
    from harness.report.provenance import collect_provenance, file_sha256
    from harness.report.summary import baseline_text, load_baseline, run_summary, summary_table, write_report

    model = _model(args)
    _resolve_cases(args, model)
    _check_path_option("--fixtures", args.fixtures, folder=False)
    fixtures = load_fixtures(Path(args.fixtures), model)
    thresholds = load_thresholds(Path(args.thresholds), model.classes)
    _validate_run(args, model, fixtures, thresholds)
    sample = None
    if args.limit is not None and args.limit < len(fixtures.windows):
        from harness.data.fixtures import SAMPLE_SEED

        fixtures = fixtures.sample(args.limit)
        ws = fixtures.windows
        sample = (f"--limit {args.limit}: a stratified sample (seed {SAMPLE_SEED}) of {len(ws)} of the fixture "
                  f"windows, {len(set(ws.y.tolist()))} classes, {len(ws.cows)} animals; window numbers in this "
                  "report count within the sample")
        print(f"hil: {sample}", file=sys.stderr)
    baseline = load_baseline(Path(args.baseline)) if args.baseline else None
    unit = args.link_unit or "frame"
    link_faults = LinkFaults.parse(args.link_faults, args.link_seed, args.link_direction, unit) \
        if args.link_faults else None
    if args.poison_window is not None:
        link_faults = replace(link_faults or LinkFaults({}, args.link_direction, args.link_seed, unit=unit),
                              poison_window=args.poison_window)
    report_dir = _report_dir(args)
    report_dir.mkdir(parents=True, exist_ok=True)
    _point_latest(report_dir)  # now, so that an interrupted run is the one --resume continues
    prov = collect_provenance()
    runs, status = _run_jobs(args, model, fixtures, thresholds, report_dir, link_faults)
    human = sys.stderr if args.json else sys.stdout  # --json: stdout holds the JSON document alone
    print(summary_table(runs), file=human)
    if baseline is not None:
        print(baseline_text(runs, baseline), file=human)
    prov.update({
        "descriptor": {"path": str(model.source), "sha256": file_sha256(model.source), "model": model.summary()},
        "target": args.target,
        "fixtures": {"path": args.fixtures, "windows_npz_sha256": fixtures.sha256,
                     "generated_by": fixtures.meta.get("generated_by")},
        "thresholds": {"path": args.thresholds, "sha256": file_sha256(Path(args.thresholds))},
        "models": {f"{r.board}/{r.variant}": {"reference": r.reference, "device_model_hash": r.info.get("model_hash"),
                                              "device_build_id": r.info.get("build_id")} for r in runs},
        "images": {f"{r.board}/{r.variant}": f"{r.image} (sha256 {r.image_sha256})" for r in runs if r.image},
    })
    if sample is not None:
        prov["sample"] = sample
    if link_faults is not None:
        prov["link_faults"] = link_faults.describe() + (", in a TCP proxy process" if args.link_proxy else "")
    from harness.device.client import PART_BYTES
    from harness.device.run import MAX_CONSECUTIVE_FAILURES

    abort_after = MAX_CONSECUTIVE_FAILURES if args.abort_after is None else args.abort_after
    prov["abort_policy"] = (f"the stream stops after {abort_after} windows in a row failed (--abort-after)"
                            if abort_after else "never stop the stream (--abort-after 0)")
    pb = PART_BYTES if args.part_bytes is None else args.part_bytes
    prov["transfer"] = (f"windows in Parts of {pb} sample bytes and a Run" if pb and (args.depth or 1) == 1
                        else "each window as one Infer frame")
    if args.baseline:
        prov["baseline"] = args.baseline
    out = write_report(runs, report_dir, prov, baseline)
    summary = run_summary(runs, out, str(prov["date_utc"]))
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"report: {out / 'index.html'}", file=human)
    if args.json:
        print(json.dumps(summary, indent=1))
    if status:
        if status > 128:
            print(f"hil: interrupted; continue with the same command plus --resume (journals in "
                  f"{report_dir / 'journals'})", file=sys.stderr)
        return status
    return 0 if all(r.passed for r in runs) else 1


def _cmd_bench_link(args: argparse.Namespace) -> int:
    import json

    from harness.bench.linkbench import format_link_bench, rows_as_json, run_link_bench
    from harness.config.boards import PACKAGED_BOARDS, board
    from harness.data.fixtures import load_fixtures

    model = _model(args)
    args.board = args.board or PACKAGED_BOARDS[-1]
    board(args.board)
    fx = load_fixtures(Path(args.fixtures), model)
    if args.stall_s is not None and not 0.0 < args.stall_s <= 60.0:
        raise ValueError(f"option --stall-s: {args.stall_s} outside (0, 60] seconds")
    common = {"seed": args.seed, "unit": args.unit, "proxy": args.proxy, "part_bytes": args.part_bytes,
              "stall_s": args.stall_s, "log": lambda m: print(m, file=sys.stderr)}
    if args.quick:
        rows = run_link_bench(fx, model, args.board, args.variant, limit=60, kinds=args.kinds or ("all",),
                              rates=args.rates or (0.01 if args.unit == "frame" else 0.001,), **common)
    else:
        rows = run_link_bench(fx, model, args.board, args.variant, limit=args.limit, kinds=args.kinds,
                              rates=args.rates, **common)
    print(format_link_bench(rows, args.board, args.variant, proxy=args.proxy, part_bytes=args.part_bytes))
    if args.out:
        Path(args.out).write_text(json.dumps(rows_as_json(rows), indent=1) + "\n")
        print(f"wrote {args.out}")
    bad = [r for r in rows if r.silently_wrong or r.aborted]
    return 1 if bad else 0


def _cmd_gen(args: argparse.Namespace) -> int:
    from harness.config.boards import write_board_files
    from protocol.cgen import write_proto_defs
    from protocol.docgen import update_readme
    from protocol.golden import write_golden

    gen = DEVICE_FW / "generated"
    for p in write_board_files(gen / "boards"):
        print(f"wrote {p}")
    print(f"wrote {write_proto_defs(gen / 'proto_defs.h')}")
    print(f"wrote {write_golden(FIXTURES / 'frames')}")
    readme = REPO / "protocol" / "README.md"
    readme.write_text(update_readme(readme.read_text()))
    print(f"wrote {readme}")
    return 0


def _cmd_gen_vectors(args: argparse.Namespace) -> int:
    from harness.data.fixtures import load_fixtures
    from harness.quant.vectors import write_vectors

    out = DEVICE_FW / "tests" / "vectors"
    model = _model(args)
    for p in write_vectors(model.models_dir, load_fixtures(Path(args.fixtures), model), out):
        print(f"wrote {p}")
    return 0


def _cmd_bench_fw(args: argparse.Namespace) -> int:
    from harness.bench.fwbench import format_bench, run_fw_bench
    from harness.data.fixtures import load_fixtures

    model = _model(args)
    _resolve_cases(args, model)
    fx = load_fixtures(Path(args.fixtures), model)
    boards = args.board
    rows = run_fw_bench(fx, model.models_dir, boards, args.repeat, log=lambda m: print(m, file=sys.stderr),
                        cycles=not args.no_cycles)
    print(format_bench(rows, args.repeat))
    if args.breakdown:
        from harness.bench.fwbench import format_breakdown

        print()
        print(format_breakdown(fx, boards, log=lambda m: print(m, file=sys.stderr)))
    return 0


def _version() -> str:
    from harness.device.run import harness_version

    return harness_version()


def _int_at_least(lo: int, text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < lo:
        raise argparse.ArgumentTypeError(f"{v} must be at least {lo}")
    return v


def _nonnegative_int(text: str) -> int:
    return _int_at_least(0, text)


def _part_bytes(text: str) -> int:
    v = _nonnegative_int(text)
    if v % 2:
        raise argparse.ArgumentTypeError(f"{v} is odd: a part holds whole int16 values (0: whole windows)")
    return v


def _fault_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in (*FAULT_KINDS, "all")]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"{text!r}: kinds are {', '.join(FAULT_KINDS)} or all")
    return kinds


def _rates(text: str) -> tuple[float, ...]:
    out = []
    for part in filter(None, (t.strip() for t in text.split(","))):
        try:
            r = parse_rate(part)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        if not 0.0 < r <= 1.0:
            raise argparse.ArgumentTypeError(f"rate {part!r} outside (0, 1]")
        out.append(r)
    if not out:
        raise argparse.ArgumentTypeError(f"{text!r}: no rate given")
    return tuple(out)


def _positive_int(text: str) -> int:
    return _int_at_least(1, text)


def _models_and_fixtures(p: argparse.ArgumentParser, boards: bool = False) -> None:
    from harness.config.descriptor import PACKAGED_DESCRIPTOR

    p.add_argument("--descriptor", default=str(PACKAGED_DESCRIPTOR), metavar="FILE",
                   help="the model descriptor (TOML): classes, window, rate, variants and their references "
                   "(default: the packaged cattle model, %(default)s)")
    p.add_argument("--models", default=None,
                   help="folder of the reference files (default: the descriptor's paths.models)")
    p.add_argument("--fixtures", default=None,
                   help="fixture windows: windows.npz + meta.json (default: the descriptor's paths.fixtures)")
    if boards:
        p.add_argument("--boards", default=None, metavar="FILE",
                       help="a boards file (TOML) whose boards are added to the packaged ones; its boards are "
                       "then the default --board")


def _kd_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alpha", type=float, default=BENCH_DEFAULTS["kd_alpha"],
                   help="hard-label weight in KD (default %(default)s)")
    p.add_argument("--temperature", type=float, default=BENCH_DEFAULTS["temperature"],
                   help="KD temperature (default %(default)s)")
    p.add_argument("--consistent", action="store_true", help="teacher labels each augmented batch (online KD)")


def _build_parser() -> argparse.ArgumentParser:
    from harness.device.client import PART_BYTES
    from harness.device.run import MAX_CONSECUTIVE_FAILURES

    p = argparse.ArgumentParser(prog="hil", description="Cattle-collar classifier HIL harness")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="cmd", required=True)

    fx = sub.add_parser("fixtures", help="fixture data").add_subparsers(dest="sub", required=True)
    fb = fx.add_parser("build", help="rebuild a fixture folder from a recordings folder (the descriptor's loader)")
    _descriptor_arg(fb)
    fb.add_argument("--data", default=str(DEFAULT_DATA), help="recordings folder (default $HIL_DATA or %(default)s)")
    fb.add_argument("--out", default=None, help="fixture folder to write (default: the descriptor's paths.fixtures; "
                    "the packaged one needs --update-packaged)")
    fb.add_argument("--update-packaged", action="store_true",
                    help="allow writing into the packaged fixtures/recordings (refused without it)")
    fb.add_argument("--cows", default=None, help="comma-separated animal ids to take (default: the descriptor's "
                    "data.held_out, the animals its models never trained on)")
    fb.add_argument("--max-per-class", type=int, default=75,
                    help="at most N windows per cow and class, evenly spaced; 0 keeps all (default %(default)s, "
                    "the committed set; the command prints how many windows the cap left out)")
    fb.set_defaults(func=_cmd_fixtures_build)

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="sub", required=True)
    kd = bench.add_parser("kd", help="leave-one-cow-out CV of teacher, hard and KD students")
    kd.add_argument("--data", default=str(DEFAULT_DATA), help="recordings folder (default $HIL_DATA or %(default)s)")
    kd.add_argument("--quick", action="store_true", help="one fold, few epochs: a smoke test")
    kd.add_argument("--seeds", type=int, default=0, help="number of seeds (0, the default: one seed; --paired: two)")
    kd.add_argument("--paired", action="store_true",
                    help="the low-noise paired benchmark: hard, hard again with another seed (noise floor), KD "
                    "(and --ensemble), paired differences with bootstrap intervals over cows, one torch thread")
    kd.add_argument("--ensemble", type=int, default=0, help="--paired: also distil from this many teachers")
    kd.add_argument("--context", type=int, default=0, metavar="SAMPLES",
                    help="--paired: add a teacher with privileged context (this many samples around each window, "
                    "e.g. 200 = 20 s) and the student distilled from it")
    kd.add_argument("--dense-hop", type=int, default=0, metavar="N",
                    help="--paired: add a KD arm trained on windows every N samples, all soft-labelled")
    kd.add_argument("--tune", action="store_true",
                    help="--paired: add a KD arm with T and alpha chosen on the validation cows")
    kd.add_argument("--feature-match", type=float, default=0.0, metavar="WEIGHT",
                    help="--paired: add a KD arm that also matches the teacher's pooled features (loss weight)")
    kd.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="--paired: run the folds in N processes of one torch thread each and merge them "
                    "(the results do not depend on N; 2 on a 2-core machine)")
    kd.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                    help="combine --paired results of disjoint --folds runs (their --out files) into one table")
    kd.add_argument("--folds", default=None, help="--paired: comma-separated fold indices to run (default all)")
    _descriptor_arg(kd)
    kd.add_argument("--hidden", type=int, action="append",
                    help="student size, repeatable (default 16, 32 and 64; --paired: one, default 32)")
    kd.add_argument("--out", default=None, help="also write the results as JSON here (the committed table is "
                    "fixtures/models/kd_bench.json); default: print only")
    _kd_args(kd)
    kd.set_defaults(func=_cmd_bench_kd)

    bq = bench.add_parser("quant", help="float vs quantized variants on the held-out fixture windows")
    _models_and_fixtures(bq)
    bq.add_argument("--out", default=None, help="also write the table as JSON here (the committed one is "
                    "fixtures/models/quant_bench.json); default: print only")
    bq.set_defaults(func=_cmd_bench_quant)

    bf = bench.add_parser("fw", help="flash, RAM, emulated instructions and estimated cycles per inference, "
                          "board x variant")
    bf.add_argument("--board", action="append", help="repeatable; default: every packaged board"
                    ).completer = _complete_boards  # type: ignore[attr-defined]
    bf.add_argument("--repeat", type=int, default=1,
                    help="run N times and fail unless the counts are identical (default %(default)s)")
    bf.add_argument("--breakdown", action="store_true",
                    help="also trace one Infer exchange per board x variant: instructions per kernel group")
    bf.add_argument("--no-cycles", action="store_true",
                    help="skip the cycle estimate (it traces every image's windows through QEMU's execution log: "
                    "about 20 minutes for the two packaged boards on 2 shared cores)")
    _models_and_fixtures(bf, boards=True)
    bf.set_defaults(func=_cmd_bench_fw)

    bo = bench.add_parser("others", help="leave-one-cow-out: where held-out 'other' windows go, per Others "
                          "behaviour and cow, for the default recipe and optional levers (docs/cattle-others.md)")
    bo.add_argument("--data", default=str(DEFAULT_DATA), help="recordings folder (default $HIL_DATA or %(default)s)")
    _descriptor_arg(bo)
    bo.add_argument("--lever", action="append", default=None,
                    help="arm to add after the default, repeatable: one of the presets of "
                    "harness.training.others.lever_presets (other-w2, other-w4, cow-balance, dyn-aug, ...)")
    bo.add_argument("--cows", default=None, help="comma-separated cows to use (default all)")
    bo.add_argument("--max-folds", type=_positive_int, default=None, help="only the first N folds (default all)")
    bo.add_argument("--out", default=None, help="also write the result as JSON here")
    bo.set_defaults(func=_cmd_bench_others)

    bl = bench.add_parser("link", help="the verdict under seeded link faults: kind x rate against a clean run")
    bl.add_argument("--quick", action="store_true", help="1 board x 1 variant x 60 windows at 1%% of every kind")
    bl.add_argument("--board", default=None, help="default: the last board of the packaged boards file"
                    ).completer = _complete_boards  # type: ignore[attr-defined]
    bl.add_argument("--variant", default="w8a16", choices=("w8a16", "w16a16", "w8a8", "float32"),
                    help="default %(default)s")
    bl.add_argument("--limit", type=_positive_int, default=None, help="only the first N windows (default all)")
    bl.add_argument("--link-seed", "--seed", dest="seed", type=int, default=1,
                    help="fault seed (default %(default)s; --seed is the old name)")
    bl.add_argument("--unit", default="frame", choices=UNITS,
                    help="faults drawn per frame or per byte (default %(default)s)")
    bl.add_argument("--kinds", type=_fault_kinds, default=None, metavar="K[,K...]",
                    help=f"fault kinds, of {', '.join(FAULT_KINDS)} and all (default: each, then all)")
    bl.add_argument("--rates", type=_rates, default=None, metavar="R[,R...]",
                    help="rates per unit, 0..1 or N%% (default 0.1%%,1%%,5%% per frame; 0.1%%,1%% per byte)")
    bl.add_argument("--stall-s", type=float, default=None,
                    help="stall length in seconds (default 2 per frame, 0.2 per byte)")
    bl.add_argument("--proxy", action="store_true",
                    help="inject in a TCP proxy process on the socket path, not inside the harness")
    bl.add_argument("--part-bytes", type=_part_bytes, default=None, metavar="N",
                    help=f"sample bytes per Part frame (0: whole windows; default {PART_BYTES})")
    bl.add_argument("--out", default=None, help="also write the rows as JSON here")
    _models_and_fixtures(bl)
    bl.set_defaults(func=_cmd_bench_link)

    qz = sub.add_parser("quantize", help="calibrate and quantize the default student (every variant)")
    qz.add_argument("--data", default=str(DEFAULT_DATA), help="recordings folder (default $HIL_DATA or %(default)s)")
    _descriptor_arg(qz)
    qz.add_argument("--models", default=None, help="models folder (default: the descriptor's paths.models)")
    qz.add_argument("--clip-pct", type=float, default=None, help="range from this percentile of |x| (default max)")
    qz.add_argument("--update-packaged", action="store_true",
                    help="allow writing into the packaged fixtures/models (refused without it)")
    qz.set_defaults(func=_cmd_quantize)

    ex = sub.add_parser("export", help="write a model's C sources (model_<variant>.c, model_dims.h, models.json) "
                        "for every variant in its models folder")
    _descriptor_arg(ex)
    ex.add_argument("--models", default=None, help="models folder (default: the descriptor's paths.models)")
    ex.add_argument("--out", default=None,
                    help="folder of the C model sources (default: the descriptor's paths.generated, else the "
                    "packaged device_fw/generated, which needs --update-packaged)")
    ex.add_argument("--update-packaged", action="store_true",
                    help="allow writing into the packaged device_fw/generated (refused without it)")
    ex.set_defaults(func=_cmd_export)

    hi = sub.add_parser("history", help="the last runs' verdict, accuracy, latency and energy per case (from "
                        "their report folders' summary.json)")
    hi.add_argument("--reports", default=None, metavar="DIR",
                    help="the folder of report folders (default: the reports/ that hil run writes into)")
    hi.add_argument("--last", type=int, default=10, help="how many runs, newest last (default %(default)s)")
    hi.add_argument("--json", action="store_true", help="the runs' summaries as a JSON list")
    hi.set_defaults(func=_cmd_history)

    dr = sub.add_parser("doctor", help="what this machine has for each target (toolchain, QEMU, Renode, probes, "
                        "ports, packages); exit 1 when the QEMU target cannot run")
    dr.add_argument("--json", action="store_true", help="the checks as JSON (schema hil-doctor/1)")
    dr.set_defaults(func=_cmd_doctor)

    co = sub.add_parser("completion", help="print the shell code that completes hil's commands and options "
                        "(bash: eval \"$(hil completion bash)\" in ~/.bashrc)")
    co.add_argument("shell", nargs="?", default="bash", choices=COMPLETION_SHELLS,
                    help="the shell to print it for (default %(default)s)")
    co.set_defaults(func=_cmd_completion)

    it = sub.add_parser("init", help="lay out a team's project folder: descriptor, thresholds, boards file, "
                        "pytest.ini, conftest and the acceptance suite")
    it.add_argument("dir", metavar="DIR", help="the folder to lay out (created; must not hold those files yet)")
    it.set_defaults(func=_cmd_init)

    ox = sub.add_parser("onnx", help="write a float student as an ONNX model (a float32 reference for onnxruntime)")
    ox.add_argument("--student", default=str(FIXTURES / "models" / "student"), metavar="STEM",
                    help="the student's files without suffix (STEM.pt, STEM.json; default %(default)s)")
    ox.add_argument("--out", required=True, metavar="FILE.onnx",
                    help="the ONNX file to write; name it in a descriptor as reference = \"onnx\"")
    ox.add_argument("--update-packaged", action="store_true",
                    help="allow writing into the packaged fixtures/models (refused without it)")
    ox.set_defaults(func=_cmd_onnx)

    rn = sub.add_parser("run", help="stream the fixture windows through devices and report (the main job)")
    rn.add_argument("--target", default="qemu", choices=("qemu", "renode", "board", "labgrid"),
                    help="where the firmware runs (default %(default)s)")
    rn.add_argument("--mode", default="window", choices=("window", "stream"),
                    help="window: classify the fixture windows; stream: replay whole bouts as raw samples, the "
                    "device calibrates and windows them itself (default %(default)s)")
    rn.add_argument("--hop", type=_positive_int, default=None, help="stream mode: samples between window starts "
                    "(default: the descriptor's model.hop)")
    rn.add_argument("--samples-per-frame", type=_positive_int, default=5,
                    help="stream mode: samples per Samples frame; must divide the hop and the window (default 5)")
    rn.add_argument("--drop-frame", type=int, action="append", metavar="N",
                    help="stream mode: do not send sample frame N (counted over the run), repeatable")
    rn.add_argument("--stream-limit", "--limit-streams", dest="limit_streams", type=_positive_int, default=None,
                    help="stream mode: only the first N bouts (pytest: --hil-stream-limit; --limit-streams is the old "
                    "name)")
    rn.add_argument("--board", action="append",
                    help="repeatable; a board of the packaged boards file or of --boards FILE (default: the boards "
                    "of --boards FILE when given, else every packaged board)"
                    ).completer = _complete_boards  # type: ignore[attr-defined]
    rn.add_argument("--variant", action="append", choices=VARIANT_NAMES,
                    help=f"repeatable; default {' and '.join(DEFAULT_VARIANTS)} (those the descriptor has)")
    rn.add_argument("--port", default=None, help="serial port of an attached board")
    rn.add_argument("--probe", default=None, help="debug probe unique id of an attached board")
    rn.add_argument("--hardware-map", default=None,
                    help="JSON file binding boards to probes and ports, or to labgrid places (--target labgrid)")
    rn.add_argument("--place", default=None, metavar="NAME",
                    help="--target labgrid: the labgrid place to acquire (every case runs on it)")
    rn.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                    help="--target labgrid: the labgrid coordinator (default $LG_COORDINATOR, else 127.0.0.1:20408)")
    rn.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="run the board/variant cases in N processes, one device each (cases of one board "
                    "device, a place or a port, share its job); one merged report (default 1)")
    rn.add_argument("--image", default=None, help="run this ELF instead of building the image (checked first: an "
                    "ARM ELF that fits the board's memory map and, where it names one, was built for this board)")
    rn.add_argument("--no-flash", action="store_true",
                    help="board target: test the firmware already on the board (port only, no probe needed)")
    rn.add_argument("--meter", default=None, choices=("ppk2", "joulescope"),
                    help="board target: measure energy per inference with this power meter (marker GPIO on its "
                    "digital input); without one the report gives the board-table estimate")
    rn.add_argument("--meter-port", default=None, help="serial port of the PPK2")
    rn.add_argument("--thresholds", default=str(ACCEPTANCE_FILE), metavar="FILE",
                    help="acceptance floors and budgets per board and variant (default: %(default)s)")
    rn.add_argument("--limit", type=_positive_int, default=None,
                    help="only N windows: a stratified sample, every class of every animal while they last "
                    "(fixed seed; the report says so; default: every fixture window)")
    rn.add_argument("--resume", action="store_true", help="continue the journals of an interrupted run")
    rn.add_argument("--depth", type=_positive_int, default=None,
                    help="requests in flight (default: 1 on QEMU and Renode for exact instruction counts, else 2)")
    rn.add_argument("--link-faults", default=None, metavar="SPEC",
                    help=f"inject seeded link faults: KIND:RATE[,...] per frame, KIND in {', '.join(FAULT_KINDS)} "
                    "or all (e.g. all:1%%)")
    rn.add_argument("--link-seed", type=int, default=0, help="seed of the injected link faults (default 0)")
    rn.add_argument("--link-direction", default="both", choices=DIRECTIONS,
                    help="where link faults are injected (default both)")
    rn.add_argument("--link-unit", default=None, choices=UNITS,
                    help="what a --link-faults rate is per: a frame or a byte (default frame)")
    rn.add_argument("--link-proxy", action="store_true",
                    help="inject the link faults in a TCP proxy process between the harness and the emulator's "
                    "socket (the real transport path) instead of inside the harness")
    rn.add_argument("--part-bytes", type=_part_bytes, default=None, metavar="N",
                    help=f"window mode: sample bytes per Part frame (even; 0: each window as one Infer frame; "
                    f"default {PART_BYTES}; at --depth > 1 windows go whole)")
    rn.add_argument("--abort-after", type=_nonnegative_int, default=None, metavar="N",
                    help=f"stop the stream after N windows in a row failed (0: never; default "
                    f"{MAX_CONSECUTIVE_FAILURES}); the report states the policy")
    rn.add_argument("--poison-window", type=int, default=None, metavar="ID",
                    help="damage every transmission of this window: it fails, is reported, and the run goes on")
    rn.add_argument("--report", default=None, metavar="DIR",
                    help="report folder: report.json, index.html, plots, journals (default: a new folder "
                    "reports/<time>-<target>-<boards>, and reports/latest points to it)")
    rn.add_argument("--baseline", default=None, metavar="DIR",
                    help="an earlier report folder: show deltas of accuracy, recall, latency, energy, flash, RAM")
    _models_and_fixtures(rn, boards=True)
    rn.add_argument("--quiet", action="store_true", help="no progress bars")
    rn.add_argument("--json", action="store_true",
                    help="window mode: print the run summary as JSON on stdout (schema hil-run/1, also the report "
                    "folder's summary.json); the table goes to stderr")
    rn.set_defaults(func=_cmd_run)

    gn = sub.add_parser("gen", help="regenerate generated files").add_subparsers(dest="sub", required=True)
    gn.add_parser("all", help="board files, protocol header, golden frames").set_defaults(func=_cmd_gen)
    gv = gn.add_parser("vectors", help="C kernel test vectors from the integer reference")
    _models_and_fixtures(gv)
    gv.set_defaults(func=_cmd_gen_vectors)

    tr = sub.add_parser("train", help="train the default teacher and KD student into fixtures/models")
    tr.add_argument("--data", default=str(DEFAULT_DATA), help="recordings folder (default $HIL_DATA or %(default)s)")
    _descriptor_arg(tr)
    tr.add_argument("--out", default=None,
                    help="models folder to write (default: the descriptor's paths.models; the packaged one needs "
                    "--update-packaged)")
    tr.add_argument("--update-packaged", action="store_true",
                    help="allow writing into the packaged fixtures/models (refused without it)")
    tr.add_argument("--hidden", type=int, default=32,
                    help="student GRU size (default 32; at most the firmware's NN_MAX_HIDDEN, device_fw/src/nn/nn.h)")
    _kd_args(tr)
    tr.set_defaults(func=_cmd_train)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (hil completion): answer and exit
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    previous = ({sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
                if threading.current_thread() is threading.main_thread() else {})
    try:
        return func(args)
    except (OSError, ValueError, TimeoutError, RuntimeError) as exc:
        print(f"hil: error: {exc}", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt) as exc:
        hint = "; continue with the same command plus --resume" if args.cmd == "run" else ""
        print(f"hil: interrupted{hint}", file=sys.stderr)
        return exc.status if isinstance(exc, Interrupted) else 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
