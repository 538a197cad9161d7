"""scripts/mutation.py at its API boundary: mutmut's exit codes folded into the score, mutant names
mapped to functions, the out-of-scope functions left out, the summary naming every survivor. (The
mutmut run itself takes about 20 minutes and is not part of ``pytest -q``.)"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("hil_mutation_script", ROOT / "scripts" / "mutation.py")
assert _spec is not None and _spec.loader is not None
mutation = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = mutation
_spec.loader.exec_module(mutation)


@pytest.mark.parametrize(("code", "status"), [
    (1, "killed"), (3, "killed"), (-24, "killed"), (36, "killed"), (-11, "killed"),
    (0, "survived"), (5, "no tests"), (33, "no tests"), (35, "suspicious"), (99, "suspicious"),
    (None, "left out"), (34, "left out"),
])
def test_exit_codes_fold_into_what_the_score_counts(code: int | None, status: str) -> None:
    assert mutation.status_of(code) == status


def test_mutant_names_map_to_their_function_and_a_bad_name_is_refused() -> None:
    assert mutation.function_of("harness.device.run.x__chain__mutmut_3") == "harness.device.run._chain"
    assert mutation.function_of("protocol.cobs.xǁCobsStreamDecoderǁfeed__mutmut_5") == \
        "protocol.cobs.CobsStreamDecoder.feed"
    with pytest.raises(ValueError, match="not a mutmut mutant name"):
        mutation.function_of("harness.device.run._chain")


def test_the_score_is_killed_over_every_counted_mutant_and_out_of_scope_ones_are_left_out() -> None:
    m, e = "harness.verdict.metrics", "harness.verdict.evaluate"
    codes = {
        "harness/verdict/metrics.py": {f"{m}.x_score__mutmut_1": 1, f"{m}.x_score__mutmut_2": 0,
                                       f"{m}.x_score__mutmut_3": 5, f"{m}.x_score__mutmut_4": None},
        "harness/verdict/evaluate.py": {f"{e}.x_run_device__mutmut_1": 0, f"{e}.x_check__mutmut_1": -24},
    }
    per_file, total = mutation.tally(codes, {"harness.verdict.evaluate.run_device"})
    assert per_file["harness/verdict/metrics.py"].score == pytest.approx(1 / 3)
    assert total.counts["killed"] == 2 and total.counts["survived"] == 1 and total.counts["out of scope"] == 1
    assert total.denominator == 4 and total.score == pytest.approx(0.5)
    text = mutation.summary(per_file, total)
    assert f"{m}.x_score__mutmut_2" in text and f"{e}.x_run_device__mutmut_1" not in text
    assert "2/4 = 50.0 %" in text and "harness.verdict.metrics.score (1 mutants)" in text


def test_results_are_read_from_mutmuts_meta_files(tmp_path: Path) -> None:
    meta = tmp_path / "harness" / "device" / "run.py.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": {"harness.device.run.x__chain__mutmut_1": 1}}))
    (tmp_path / "protocol").mkdir()
    (tmp_path / "protocol" / "cobs.py.meta").write_text(json.dumps({"exit_code_by_key": {}}))
    assert mutation.read_results(tmp_path) == {"harness/device/run.py": {"harness.device.run.x__chain__mutmut_1": 1}}


def test_the_out_of_scope_list_is_read_from_pyproject() -> None:
    assert "harness.verdict.evaluate.run_device" in mutation.config()
