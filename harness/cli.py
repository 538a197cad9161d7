"""The ``hil`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "db-cow-walking"
FIXTURES = REPO / "fixtures"


def _cmd_fixtures_build(args: argparse.Namespace) -> int:
    from harness.data.fixtures import build_fixtures

    meta = build_fixtures(Path(args.data), Path(args.out))
    print(f"wrote {args.out}/windows.npz ({meta['n_windows']} windows of cows "
          f"{', '.join(meta['cows'])}) sha256 {meta['windows_npz_sha256']}")  # type: ignore[arg-type]
    for e in meta["excluded_bouts"]:  # type: ignore[attr-defined]
        print(f"excluded {e['bout']}: {e['reason']}")
    return 0


def _cmd_bench_kd(args: argparse.Namespace) -> int:
    from harness.training.bench import BenchConfig, run_kd_bench

    cfg = BenchConfig.quick() if args.quick else BenchConfig()
    if args.seeds:
        from dataclasses import replace

        cfg = replace(cfg, seeds=tuple(range(args.seeds)))
    out = None if args.quick and not args.out else Path(args.out or FIXTURES / "models" / "kd_bench.json")
    run_kd_bench(Path(args.data), cfg, out)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from harness.training.bench import train_default

    train_default(Path(args.data), Path(args.out), hidden=args.hidden)
    return 0


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hil", description="Cattle-collar classifier HIL harness")
    sub = p.add_subparsers(dest="cmd", required=True)

    fx = sub.add_parser("fixtures", help="fixture data").add_subparsers(dest="sub", required=True)
    fb = fx.add_parser("build", help="rebuild fixtures/recordings from the shared recordings")
    fb.add_argument("--data", default=str(DEFAULT_DATA))
    fb.add_argument("--out", default=str(FIXTURES / "recordings"))
    fb.set_defaults(func=_cmd_fixtures_build)

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="sub", required=True)
    kd = bench.add_parser("kd", help="leave-one-cow-out CV of teacher, hard and KD students")
    kd.add_argument("--data", default=str(DEFAULT_DATA))
    kd.add_argument("--quick", action="store_true", help="one fold, few epochs: a smoke test")
    kd.add_argument("--seeds", type=int, default=0, help="number of seeds (default 1)")
    kd.add_argument("--out", default=None, help="JSON output (default fixtures/models/kd_bench.json)")
    kd.set_defaults(func=_cmd_bench_kd)

    tr = sub.add_parser("train", help="train the default teacher and KD student into fixtures/models")
    tr.add_argument("--data", default=str(DEFAULT_DATA))
    tr.add_argument("--out", default=str(FIXTURES / "models"))
    tr.add_argument("--hidden", type=int, default=32, choices=(16, 32, 64))
    tr.set_defaults(func=_cmd_train)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (FileNotFoundError, ValueError, ConnectionError, TimeoutError) as exc:
        print(f"hil: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hil: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
