"""No class count, class name, window length, rate or board name of the packaged model and boards
is written into the harness's code: they come from the packaged descriptor and boards file.

The scan reads the code's syntax tree (docstrings and comments are prose, not code): every string
constant equal to a packaged class or board name (or ``<board>-qemu``), and every assignment of a
number other than 0 to a name that says class count, window, hop, rate or channels. The few places that state
such facts on purpose are listed in ALLOWED with the reason; a test checks each of those against
the descriptor. ``python tests/test_no_model_literals.py`` prints what the scan finds."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import CATTLE, REPO

from harness.config.boards import PACKAGED_BOARDS

ROOTS = ("harness", "protocol")
NAMES = {*CATTLE.classes, *PACKAGED_BOARDS, *(f"{b}-qemu" for b in PACKAGED_BOARDS)}
NUMBER_NAME = re.compile(r"(?i)^_?(n_?classes|classes|window(_len)?|hop|sample_rate(_hz)?|rate_hz|channels|"
                         r"default_(window|hop))$")
ALLOWED = {
    "harness/data/recordings.py": "the db-cow-walking loader's own facts (its folders' class names, 10 Hz, the "
                                  "MPU9250 scale); test_the_packaged_descriptor_states_what_the_cattle_loader_and_the_"
                                  "models_are checks them equal to the descriptor",
    "harness/data/windows.py": "DEFAULT_WINDOW/DEFAULT_HOP of the cattle benches, checked equal to the descriptor "
                               "by the same test",
    "protocol/golden.py": "the golden frames: fixed example field values of the wire format, not a model",
}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
        # attribute docstrings: a bare string right after an assignment
        for field in ("body", "orelse"):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list):
                for s in stmts:
                    if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str):
                        ids.add(id(s.value))
    return ids


def scan() -> list[str]:
    """Every literal the rules above find, as 'file:line: what'."""
    found = []
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            tree = ast.parse(path.read_text(), rel)
            prose = _docstrings(tree)
            for node in ast.walk(tree):
                if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
                        and node.value in NAMES):
                    found.append(f"{rel}:{node.lineno}: string {node.value!r}")
                if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant) \
                        and isinstance(node.value.value, int | float) and not isinstance(node.value.value, bool) \
                        and node.value.value != 0:  # 0: a "not yet measured" default, not a fact
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for t in targets:
                        if isinstance(t, ast.Name) and NUMBER_NAME.match(t.id):
                            found.append(f"{rel}:{node.lineno}: {t.id} = {node.value.value!r}")
    return found


def test_no_model_or_board_fact_is_a_literal_outside_the_descriptor_and_boards_file() -> None:
    stray = [f for f in scan() if f.split(":", 1)[0] not in ALLOWED]
    assert not stray, "literals that belong in harness/config/cattle.toml or boards.toml:\n" + "\n".join(stray)


def test_the_allowed_places_still_hold_what_they_are_allowed_for() -> None:
    """An entry of ALLOWED that no longer has a literal is stale: remove it."""
    files = {f.split(":", 1)[0] for f in scan()}
    assert set(ALLOWED) <= files, sorted(set(ALLOWED) - files)


def test_the_scan_sees_a_planted_literal(tmp_path: Path) -> None:
    planted = "x = 'walking'\nN_CLASSES = 4\ndef f():\n    '''walking in a docstring is prose'''\n"
    tree = ast.parse(planted)
    prose = _docstrings(tree)
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and id(n) not in prose
               and n.value in NAMES]
    assert strings == ["walking"] and NUMBER_NAME.match("N_CLASSES")


if __name__ == "__main__":
    for line in scan():
        print(line, "(allowed: " + ALLOWED[line.split(":", 1)[0]] + ")" if line.split(":", 1)[0] in ALLOWED else "")
