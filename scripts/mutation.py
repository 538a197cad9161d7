"""Mutation testing of the verdict rooms with mutmut: run it, print the score and the survivors.

    .venv/bin/python scripts/mutation.py                 # fresh run (about 15-20 min on one core), then the summary
    .venv/bin/python scripts/mutation.py --summary-only  # the summary of the last run (mutants/)
    .venv/bin/python scripts/mutation.py --keep 'harness.verdict.metrics.*'   # re-run some mutants, keep the rest

What is mutated and which tests run is mutmut's own config, ``[tool.mutmut]`` in pyproject.toml
(protocol/, harness/device/client.py, run.py, metrics.py, evaluate.py; the fast unit tests). The score
is over the verdict scope: every mutant of those files except the functions listed in
``[tool.hil_mutation] not_in_scope`` (they drive a target and only the QEMU tests reach them).

Score = killed / (killed + survived + no tests + suspicious). A timeout counts as killed (the
mutant changed behaviour: a test hung on it), and so does a crash of the test process; "no tests"
(no selected test calls the mutated function) and "suspicious" count against the score; mutants
mutmut skipped or never checked are left out and counted separately. Not part of ``pytest -q``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT_VERSION = "3.8.1"

# mutmut 3.8.1's exit codes (mutmut.stats.status_by_exit_code), folded into what the score counts
KILLED, SURVIVED, NO_TESTS, SUSPICIOUS, LEFT_OUT = "killed", "survived", "no tests", "suspicious", "left out"
_FOLD = {
    "killed": KILLED, "timeout": KILLED, "segfault": KILLED, "caught by type check": KILLED,
    "survived": SURVIVED, "no tests": NO_TESTS, "suspicious": SUSPICIOUS,
    "skipped": LEFT_OUT, "not checked": LEFT_OUT, "check was interrupted by user": LEFT_OUT,
}
_STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed", 3: "killed", 0: "survived", 5: "no tests", 2: "check was interrupted by user", None: "not checked",
    33: "no tests", 34: "skipped", 35: "suspicious", 36: "timeout", 37: "caught by type check",
    -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", -11: "segfault", -9: "segfault",
}


def status_of(exit_code: int | None) -> str:
    """mutmut's status of a mutant's test exit code, folded into killed / survived / no tests /
    suspicious / left out (an unknown code is suspicious, as in mutmut)."""
    return _FOLD[_STATUS_BY_EXIT_CODE.get(exit_code, "suspicious")]


_MUTANT = re.compile(r"^(?P<module>.+?)\.x(?:ǁ(?P<cls>[^ǁ]+)ǁ(?P<meth>.+)|_(?P<func>.+))__mutmut_(?P<n>\d+)$")


def function_of(mutant: str) -> str:
    """The dotted function a mutmut mutant name belongs to: ``harness.device.run.x__chain__mutmut_3`` ->
    ``harness.device.run._chain``, ``protocol.cobs.xǁCobsStreamDecoderǁfeed__mutmut_5`` ->
    ``protocol.cobs.CobsStreamDecoder.feed``."""
    m = _MUTANT.match(mutant)
    if m is None:
        raise ValueError(f"not a mutmut mutant name: {mutant!r}")
    name = f"{m['cls']}.{m['meth']}" if m["cls"] else m["func"]
    return f"{m['module']}.{name}"


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    survivors: list[str] = field(default_factory=list)
    no_tests: Counter[str] = field(default_factory=Counter)
    """function -> mutants no selected test reaches"""

    def add(self, mutant: str, status: str) -> None:
        self.counts[status] += 1
        if status == SURVIVED:
            self.survivors.append(mutant)
        elif status == NO_TESTS:
            self.no_tests[function_of(mutant)] += 1

    @property
    def denominator(self) -> int:
        return self.counts[KILLED] + self.counts[SURVIVED] + self.counts[NO_TESTS] + self.counts[SUSPICIOUS]

    @property
    def score(self) -> float | None:
        return self.counts[KILLED] / self.denominator if self.denominator else None


def tally(exit_codes: dict[str, dict[str, int | None]], not_in_scope: set[str]) -> tuple[dict[str, Tally], Tally]:
    """Per source file and over all of them, the in-scope mutants by status; the out-of-scope ones
    (functions named in ``not_in_scope``) are counted under "out of scope" in the total only."""
    per_file: dict[str, Tally] = defaultdict(Tally)
    total = Tally()
    for path, codes in sorted(exit_codes.items()):
        for mutant, code in codes.items():
            if function_of(mutant) in not_in_scope:
                total.counts["out of scope"] += 1
                continue
            status = status_of(code)
            per_file[path].add(mutant, status)
            total.add(mutant, status)
    return dict(per_file), total


def read_results(mutants_dir: Path) -> dict[str, dict[str, int | None]]:
    """Exit code of every mutant, per source file, from mutmut's ``mutants/**/*.py.meta`` files."""
    out: dict[str, dict[str, int | None]] = {}
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        path = meta.relative_to(mutants_dir).as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if codes:
            out[path] = codes
    return out


def config(pyproject: Path = ROOT / "pyproject.toml") -> set[str]:
    """The functions left out of the score (``[tool.hil_mutation] not_in_scope``)."""
    return set(tomllib.loads(pyproject.read_text())["tool"]["hil_mutation"]["not_in_scope"])


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def summary(per_file: dict[str, Tally], total: Tally) -> str:
    """The score table per file and in total, then the survivors and the untested functions per file."""
    cols = (KILLED, SURVIVED, NO_TESTS, SUSPICIOUS, LEFT_OUT)
    lines = [f"{'file':<22}" + "".join(f"{c:>11}" for c in cols) + f"{'score':>9}"]
    for path, t in per_file.items():
        lines.append(f"{path:<22}" + "".join(f"{t.counts[c]:>11}" for c in cols) + f"{_pct(t.score):>9}")
    lines.append(f"{'verdict scope':<22}" + "".join(f"{total.counts[c]:>11}" for c in cols) + f"{_pct(total.score):>9}")
    lines.append(f"score = killed / (killed + survived + no tests + suspicious) = {total.counts[KILLED]}/"
                 f"{total.denominator} = {_pct(total.score)} (timeouts count as killed; "
                 f"{total.counts['out of scope']} mutants of functions not in scope left out)")
    for path, t in per_file.items():
        if t.survivors:
            lines.append(f"\nsurvived in {path} ({len(t.survivors)}; mutmut show NAME for the diff):")
            lines += [f"  {m}" for m in t.survivors]
        if t.no_tests:
            lines.append(f"\nno test reaches, in {path}:")
            lines += [f"  {fn} ({n} mutants)" for fn, n in sorted(t.no_tests.items())]
    return "\n".join(lines)


def _have_mutmut() -> bool:
    try:
        import mutmut
    except ImportError:
        print(f"mutmut is not installed: .venv/bin/pip install -e '.[mutation]' (mutmut=={MUTMUT_VERSION})",
              file=sys.stderr)
        return False
    if getattr(mutmut, "__version__", MUTMUT_VERSION) != MUTMUT_VERSION:
        print(f"mutmut {mutmut.__version__} found; this script reads mutmut {MUTMUT_VERSION}'s results",
              file=sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mutants", nargs="*", help="mutant-name globs to (re-)run (default: all)")
    ap.add_argument("--max-children", type=int, default=1, help="parallel test processes (default 1)")
    ap.add_argument("--keep", action="store_true", help="keep mutants/ from the last run (default: start fresh)")
    ap.add_argument("--summary-only", action="store_true", help="do not run, summarise the last run")
    ap.add_argument("--fail-under", type=float, default=None, metavar="PCT", help="exit 1 below this score")
    args = ap.parse_args(argv)
    mutants_dir = ROOT / "mutants"
    if not args.summary_only:
        if not _have_mutmut():
            return 2
        # tests/cproto.py loads the host build of the C protocol: build it before mutmut copies device_fw
        subprocess.run(["make", "-s", "-C", str(ROOT / "device_fw"), "host"], check=True)
        if not args.keep:
            shutil.rmtree(mutants_dir, ignore_errors=True)
        mutants_dir.mkdir(exist_ok=True)
        log = mutants_dir / "run.log"
        start = time.monotonic()
        with log.open("w") as fh:
            rc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children),
                                 *args.mutants], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            print(log.read_text()[-3000:], file=sys.stderr)
            print(f"mutmut run failed (exit {rc}); its output is in {log}", file=sys.stderr)
            return 1
        print(f"mutmut {MUTMUT_VERSION} run: {time.monotonic() - start:.0f} s wall, "
              f"{args.max_children} test process(es)")
    if not mutants_dir.is_dir():
        print("no mutants/ folder: run without --summary-only first", file=sys.stderr)
        return 1
    per_file, total = tally(read_results(mutants_dir), config())
    print(summary(per_file, total))
    if args.fail_under is not None and (total.score or 0.0) * 100 < args.fail_under:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
