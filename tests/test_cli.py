"""Bad input never crashes and never passes: every one below gets "what: where: problem", exit
status 2, no traceback, and no emulator is started. Plus the CLI's verdict on a run with a failed
window, and a fault at boot."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, needs_qemu

from harness.cli import main
from harness.data.fixtures import write_npz

REC = FIXTURES / "recordings"


def _fixture_copy(tmp: Path, edit_meta: Callable[[dict], None] | None = None,
                  edit_npz: Callable[[dict[str, np.ndarray]], None] | None = None, rehash: bool = True) -> Path:
    import hashlib

    out = tmp / "fx"
    out.mkdir()
    meta = json.loads((REC / "meta.json").read_text())
    if edit_npz is not None:
        with np.load(REC / "windows.npz") as z:
            arrays = {k: z[k] for k in z.files}
        edit_npz(arrays)
        write_npz(out / "windows.npz", arrays)
    else:
        shutil.copy(REC / "windows.npz", out / "windows.npz")
    if rehash:
        meta["windows_npz_sha256"] = hashlib.sha256((out / "windows.npz").read_bytes()).hexdigest()
    if edit_meta is not None:
        edit_meta(meta)
    (out / "meta.json").write_text(json.dumps(meta))
    return out


def _truncated_npz(tmp: Path) -> Path:
    import hashlib

    out = _fixture_copy(tmp)
    raw = (out / "windows.npz").read_bytes()
    (out / "windows.npz").write_bytes(raw[: len(raw) // 2])
    meta = json.loads((out / "meta.json").read_text())
    meta["windows_npz_sha256"] = hashlib.sha256(raw[: len(raw) // 2]).hexdigest()
    (out / "meta.json").write_text(json.dumps(meta))
    return out


def _set(path: list[str], value: object) -> Callable[[dict], None]:
    def edit(d: dict) -> None:
        for k in path[:-1]:
            d = d[k]
        if value is KeyError:
            del d[path[-1]]
        else:
            d[path[-1]] = value
    return edit


def _file(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


def _thresholds(tmp: Path, entry: object) -> str:
    return _file(tmp, "t.json", json.dumps({"thresholds": {"collar": {"w8a16": entry}}}))


def _meta_not_json(t: Path) -> Path:
    out = _fixture_copy(t)
    (out / "meta.json").write_text("{")
    return out


ROT = ["orientation_rotation_q14", "all_cows", "1217"]
# (id, argv builder, text that must appear in the message)
def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def _descriptor(t: Path, old: str = "", new: str = "") -> str:
    """A copy of the packaged descriptor with ``old`` replaced by ``new`` (paths made absolute)."""
    from harness.config.descriptor import PACKAGED_DESCRIPTOR

    text = PACKAGED_DESCRIPTOR.read_text().replace('"packaged:', f'"{FIXTURES}/')
    assert old in text
    return _file(t, "model.toml", text.replace(old, new))


def _boards_file(t: Path, old: str = "", new: str = "") -> str:
    """A boards file with one board, 'acmetag' (the packaged ear tag's facts), ``old`` -> ``new``."""
    from harness.config.boards import BOARDS_FILE

    body = "[eartag]" + BOARDS_FILE.read_text().split("\n[eartag]", 1)[1]
    body = body.replace("[eartag", "[acmetag")
    assert old in body
    return _file(t, "boards.toml", body.replace(old, new))


BAD: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("limit zero", lambda t: ["run", "--limit", "0"], "--limit: 0 must be at least 1"),
    ("jobs zero", lambda t: ["run", "--jobs", "0"], "option --jobs: 0 must be at least 1"),
    ("jobs in stream mode", lambda t: ["run", "--mode", "stream", "--jobs", "2"],
     "option --jobs: window mode only"),
    ("place without labgrid", lambda t: ["run", "--place", "desk-3"],
     "option --place: only for --target labgrid (target is qemu)"),
    ("coordinator without labgrid",
     lambda t: ["run", "--target", "board", "--port", "/dev/x", "--coordinator", "h:1"],
     "option --coordinator: only for --target labgrid (target is board)"),
    ("labgrid with a port", lambda t: ["run", "--target", "labgrid", "--place", "p", "--port", "/dev/ttyACM0"],
     "option --port: the labgrid target talks to a place's own resources"),
    ("labgrid place and map", lambda t: ["run", "--target", "labgrid", "--place", "p", "--hardware-map",
                                         _file(t, "hw.json", '{"boards": {}}')],
     "options --place and --hardware-map: give the place, or a map naming a place per board"),
    ("labgrid map entry without a place",
     lambda t: ["run", "--target", "labgrid", "--board", "eartag", "--hardware-map",
                _file(t, "hw.json", '{"boards": {"t": {"board": "eartag", "port": "/dev/x"}}}')],
     "boards.t names no labgrid place (target labgrid)"),
    ("board map entry with a place", lambda t: ["run", "--target", "board", "--board", "eartag", "--hardware-map",
                                                _file(t, "hw.json", '{"boards": {"t": {"board": "eartag", '
                                                      '"place": "desk-3"}}}')],
     "boards.t names labgrid place desk-3: use --target labgrid"),
    ("limit negative", lambda t: ["run", "--limit", "-5"], "--limit: -5 must be at least 1"),
    ("limit not a number", lambda t: ["run", "--limit", "ten"], "--limit: 'ten' is not a whole number"),
    ("depth zero", lambda t: ["run", "--depth", "0"], "--depth: 0 must be at least 1"),
    ("unknown board", lambda t: ["run", "--board", "toaster"],
     "option --board: unknown board 'toaster'; known: collar, eartag (a team's own board comes from a boards file"),
    ("descriptor missing", lambda t: ["run", "--descriptor", str(t / "none.toml")],
     "none.toml: model descriptor not found"),
    ("descriptor not TOML", lambda t: ["run", "--descriptor", _file(t, "m.toml", "[model\n")],
     "m.toml: not valid TOML"),
    ("descriptor a folder", lambda t: ["run", "--descriptor", str(t)], "a folder, not a model descriptor"),
    ("descriptor classes not a list", lambda t: ["run", "--descriptor", _descriptor(
        t, 'classes = ["grazing", "walking", "resting", "other"]', 'classes = "grazing"')],
     "model.toml: model.classes: must be a list of non-empty names"),
    ("descriptor class named twice", lambda t: ["run", "--descriptor", _descriptor(
        t, '"resting", "other"]', '"resting", "walking"]')], "model.classes: walking named twice"),
    ("descriptor hop above the window", lambda t: ["run", "--descriptor", _descriptor(t, "hop = 25", "hop = 51")],
     "model.hop: 51 outside 1..50"),
    ("descriptor unknown key", lambda t: ["run", "--descriptor", _descriptor(t, "channels = 3", "chanels = 3")],
     "model.chanels: unknown key"),
    ("descriptor unknown reference kind", lambda t: ["run", "--descriptor", _descriptor(
        t, 'reference = "dq"\nfile = "student_w8a16"', 'reference = "tflite"\nfile = "student_w8a16"')],
     "variants.w8a16.reference: 'tflite' unknown; known: torch, dq, onnx, expected"),
    ("descriptor float variant without tolerance", lambda t: ["run", "--descriptor", _descriptor(
        t, "tolerance = 1e-3", "")], "variants.float32.tolerance: missing"),
    ("descriptor window differs from the fixtures", lambda t: ["run", "--descriptor", _descriptor(
        t, "window = 50", "window = 64")], "window_samples: 50, but model.window of"),
    ("descriptor classes differ from the fixtures", lambda t: ["run", "--descriptor", _descriptor(
        t, '"other"]', '"other", "ruminating"]')], "label_map:"),
    ("descriptor without the variant", lambda t: ["run", "--variant", "w8a8", "--descriptor", _descriptor(
        t, '[variants.w8a8]\nreference = "dq"\nfile = "student_w8a8"\n', "")],
     "option --variant: w8a8: "),
    ("descriptor names a missing reference", lambda t: ["run", "--variant", "w8a16", "--descriptor", _descriptor(
        t, 'file = "student_w8a16"', 'file = "student_w9a16"')],
     "student_w9a16.json: reference file missing for variant w8a16"),
    ("export into the packaged folder", lambda t: ["export"],
     "holds the packaged files (device_fw/generated): give a folder of your own, or --update-packaged"),
    ("train into the packaged folder", lambda t: ["train"], "holds the packaged files (fixtures/models)"),
    ("quantize the packaged models", lambda t: ["quantize"], "holds the packaged files (fixtures/models)"),
    ("boards file missing", lambda t: ["run", "--boards", str(t / "b.toml")], "b.toml: boards file not found"),
    ("boards file bad clock", lambda t: ["run", "--boards", _boards_file(
        t, "clock_hz = 64_000_000", 'clock_hz = "fast"')],
     "boards.toml: acmetag.clock_hz: must be a number above 0, got 'fast'"),
    ("boards file unknown key", lambda t: ["run", "--boards", _boards_file(t, "fpu = true", "fpu = true\nfpus = 1")],
     "boards.toml: acmetag.fpus: unknown key"),
    ("boards file unknown uart", lambda t: ["run", "--boards", _boards_file(t, 'uart = "cmsdk"', 'uart = "16550"')],
     "acmetag.qemu.uart: '16550' unknown; known: pl011, cmsdk"),
    ("boards file without power", lambda t: ["run", "--boards", _boards_file(
        t, "[acmetag.power]\nrun_current_a = 0.0033", "[acmetag.powr]\nrun_current_a = 0.0033")],
     "acmetag.powr: unknown key"),
    ("recall floor for a class the model lacks", lambda t: ["run", "--board", "collar", "--variant", "w8a16",
                                                            "--thresholds",
                                                            _thresholds(t, {"min_recall": {"ruminating": 0.5}})],
     "min_recall: unknown class(es) ruminating; the model's classes: grazing, walking, resting, other"),
    ("unknown variant", lambda t: ["run", "--variant", "w4a4"], "argument --variant: invalid choice: 'w4a4'"),
    ("fixtures folder missing", lambda t: ["run", "--fixtures", str(t / "nope")],
     "nope/windows.npz: fixture file missing"),
    ("meta not JSON", lambda t: ["run", "--fixtures", str(_meta_not_json(t))], "meta.json: not valid JSON"),
    ("meta without rotations", lambda t: ["run", "--fixtures", str(_fixture_copy(
        t, _set(["orientation_rotation_q14"], KeyError)))], "orientation_rotation_q14.all_cows: missing"),
    ("rotation not integers", lambda t: ["run", "--fixtures", str(_fixture_copy(t, _set(ROT, [0.5, 16384])))],
     "all_cows.1217: must be [cos, sin] as two whole numbers"),
    ("rotation of 1e6", lambda t: ["run", "--fixtures", str(_fixture_copy(t, _set(ROT, [1000000, 1000000])))],
     "all_cows.1217: (1000000, 1000000) is not a rotation"),
    ("wrong window_samples", lambda t: ["run", "--fixtures", str(_fixture_copy(t, _set(["window_samples"], 64)))],
     "window_samples: 64, but model.window of"),
    ("permuted label map", lambda t: ["run", "--fixtures", str(_fixture_copy(
        t, _set(["label_map"], {"0": "walking", "1": "grazing", "2": "resting", "3": "other"})))],
     "label_map: "),
    ("unknown format", lambda t: ["run", "--fixtures", str(_fixture_copy(t, _set(["format"], "other/9")))],
     "format: 'other/9' is not 'cattle-hil-windows/1'"),
    ("npz hash mismatch", lambda t: ["run", "--fixtures", str(_fixture_copy(t, _set(["windows_npz_sha256"], "0")))],
     "does not match"),
    ("truncated npz with its hash", lambda t: ["run", "--fixtures", str(_truncated_npz(t))],
     "windows.npz: not a readable npz archive"),
    ("samples not int16", lambda t: ["run", "--fixtures", str(_fixture_copy(
        t, edit_npz=lambda a: a.update(x=a["x"].astype(np.float32))))],
     "x must be int16[N, 50, 3] (model.window, model.channels of"),
    ("labels out of range", lambda t: ["run", "--fixtures", str(_fixture_copy(
        t, edit_npz=lambda a: a.update(y=a["y"] + 7)))], "y holds labels outside 0..3"),
    ("thresholds missing", lambda t: ["run", "--thresholds", str(t / "none.json")],
     "none.json: thresholds file not found"),
    ("thresholds not JSON", lambda t: ["run", "--thresholds", _file(t, "t.json", "{oops")], "t.json:1: not valid JSON"),
    ("thresholds top level a list", lambda t: ["run", "--thresholds", _file(t, "t.json", "[1, 2]")],
     'top level must be an object with a "thresholds" object'),
    ("thresholds unknown key", lambda t: ["run", "--thresholds", _thresholds(t, {"min_acuracy": 0.9})],
     "collar/w8a16: unknown key(s) min_acuracy"),
    ("thresholds out of range", lambda t: ["run", "--thresholds", _thresholds(t, {"min_accuracy": 1.5})],
     "collar/w8a16: min_accuracy: 1.5 outside 0..1"),
    ("thresholds recall of an unknown class", lambda t: ["run", "--thresholds", _thresholds(
        t, {"min_recall": {"sleeping": 0.5}})], "min_recall: unknown class(es) sleeping"),
    ("thresholds not a number", lambda t: ["run", "--thresholds", _thresholds(t, {"max_latency_ms": "fast"})],
     "max_latency_ms: must be a number, got 'fast'"),
    ("hardware map top level a list", lambda t: ["run", "--target", "board", "--hardware-map",
                                                 _file(t, "hw.json", "[]")],
     'top level must be an object with a "boards"'),
    ("hardware map missing", lambda t: ["run", "--target", "board", "--hardware-map", str(t / "hw.json")],
     "hw.json: hardware map not found"),
    ("hardware map without the board", lambda t: ["run", "--target", "board", "--board", "collar", "--hardware-map",
                                                  _file(t, "hw.json", json.dumps({"boards": {"e": {
                                                      "board": "eartag", "probe": "P"}}}))],
     "hardware map has 0 entries for board 'collar'"),
    ("port without board target", lambda t: ["run", "--port", "/dev/ttyACM0"],
     "option --port: only for --target board"),
    ("no-flash with image", lambda t: ["run", "--target", "board", "--board", "collar", "--variant", "w8a16",
                                       "--port", "/dev/null", "--no-flash", "--image", "README.md"],
     "cannot be combined with --image"),
    ("image missing", lambda t: ["run", "--board", "collar", "--variant", "w8a16", "--image", str(t / "fw.elf")],
     "fw.elf: firmware image not found"),
    ("image not an ELF", lambda t: ["run", "--board", "collar", "--variant", "w8a16", "--image",
                                    _file(t, "fw.elf", "hello")], "fw.elf: not an ELF file"),
    ("image for two boards", lambda t: ["run", "--variant", "w8a16", "--image", "README.md"],
     "option --image: an image is built for one board"),
    ("models folder missing", lambda t: ["run", "--models", str(t / "models")], "reference file missing for variant"),
    ("bad link fault spec", lambda t: ["run", "--link-faults", "flip:lots"], "rate 'lots' is not a number"),
    ("link unit without faults", lambda t: ["run", "--link-unit", "byte"],
     "--link-unit: only with --link-faults or --poison-window"),
    ("link proxy without faults", lambda t: ["run", "--link-proxy"],
     "--link-proxy: only with --link-faults or --poison-window"),
    ("link proxy on a board", lambda t: ["run", "--target", "board", "--port", "/dev/null", "--link-proxy",
                                         "--link-faults", "flip:0.01"], "--link-proxy: the proxy sits on an emulator"),
    ("part bytes odd", lambda t: ["run", "--part-bytes", "47"], "47 is odd: a part holds whole int16 values"),
    ("part bytes in stream mode", lambda t: ["run", "--mode", "stream", "--part-bytes", "48"],
     "--part-bytes: not used by --mode stream"),
    ("abort policy negative", lambda t: ["run", "--abort-after", "-1"], "-1 must be at least 0"),
    ("bench link unknown kind", lambda t: ["bench", "link", "--kinds", "zap"], "'zap': kinds are drop, flip"),
    ("bench link rate above 1", lambda t: ["bench", "link", "--rates", "2"], "rate '2' outside (0, 1]"),
    ("bench link stall of 0 s", lambda t: ["bench", "link", "--stall-s", "0"], "--stall-s: 0.0 outside (0, 60]"),
    ("resume with a header-less journal", lambda t: ["run", "--board", "collar", "--variant", "w8a16", "--resume",
                                                     "--report", _journal(t)],
     "the first line is not the journal's header"),
    ("resume with a journal of another board", lambda t: ["run", "--board", "collar", "--variant", "w8a16",
                                                          "--resume", "--report", _journal(t, board="eartag")],
     "the journal's header says board 'eartag', this case is 'collar'"),
    ("resume with spliced lines", lambda t: ["run", "--board", "collar", "--variant", "w8a16", "--resume",
                                             "--report", _journal(t, splice=True)],
     ":2: the running hash does not match"),
    ("float labels", lambda t: ["run", "--fixtures", str(_fixture_copy(
        t, edit_npz=lambda a: a.update(y=a["y"] + 0.5)))], "y must hold integer class labels, got dtype float64"),
    ("string labels", lambda t: ["run", "--fixtures", str(_fixture_copy(
        t, edit_npz=lambda a: a.update(y=a["y"].astype(str))))], "y must hold integer class labels"),
    ("zero windows", lambda t: ["run", "--fixtures", str(_fixture_copy(
        t, _set(["n_windows"], 0), edit_npz=lambda a: a.update({k: v[:0] for k, v in a.items()})))],
     "holds no windows"),
    ("thresholds only for a misspelt board", lambda t: ["run", "--board", "collar", "--variant", "w8a16",
                                                        "--thresholds", _file(t, "t.json", json.dumps(
                                                            {"thresholds": {"colar": {"w8a16": {}}}}))],
     "no entry for collar/w8a16"),
    ("report under a plain file", lambda t: ["run", "--report", str(Path(_file(t, "plain", "x")) / "rep")],
     "plain is a file, not a folder"),
    ("report path not UTF-8", lambda t: ["run", "--report", str(t / "r\udcff")], "the path is not valid UTF-8"),
    ("poison window out of range", lambda t: ["run", "--poison-window", "99999"],
     "--poison-window: 99999 is not one of the 406 windows"),
    ("poison window negative", lambda t: ["run", "--poison-window", "-1"], "--poison-window: -1 is not one of"),
    ("drop frame negative", lambda t: ["run", "--mode", "stream", "--drop-frame", "-1"],
     "--drop-frame: -1: frame numbers start at 0"),
    ("drop frame in window mode", lambda t: ["run", "--drop-frame", "3"], "--drop-frame: only with --mode stream"),
    ("stream hop not a multiple of the frame", lambda t: ["run", "--mode", "stream", "--hop", "7"],
     "the samples per frame must divide the hop and the window"),
    ("stream hop needing more slots than the device has", lambda t: ["run", "--mode", "stream", "--hop", "10"],
     "--hop 10: windows of 50 samples would be in progress 5 at a time; the device holds 4"),
    ("stream hop longer than the window", lambda t: ["run", "--mode", "stream", "--hop", "55"],
     "--hop 55: must be 1..50"),
    ("limit in stream mode", lambda t: ["run", "--mode", "stream", "--limit", "5"],
     "--limit: not used by --mode stream"),
    ("image a directory", lambda t: ["run", "--board", "collar", "--variant", "w8a16", "--image", str(t)],
     "a folder, not a firmware image"),
    ("kd lever without --paired", lambda t: ["bench", "kd", "--context", "200"], "--context: only with --paired"),
    ("kd context shorter than a window", lambda t: ["bench", "kd", "--paired", "--context", "20"],
     "--context: 20 samples is shorter than a window (50)"),
    ("kd feature matching without --paired", lambda t: ["bench", "kd", "--feature-match", "1"],
     "--feature-match: only with --paired"),
    ("kd jobs zero", lambda t: ["bench", "kd", "--paired", "--jobs", "0"], "--jobs: 0 must be at least 1"),
    ("kd jobs without --paired", lambda t: ["bench", "kd", "--jobs", "2"], "--jobs: only with --paired"),
    ("history without a reports folder", lambda t: ["history", "--reports", str(t / "none")], "no reports folder"),
    ("history of no runs", lambda t: ["history", "--reports", str(t), "--last", "0"], "--last: 0 must be at least 1"),
    ("stream limit in window mode", lambda t: ["run", "--stream-limit", "2"],
     "--stream-limit: only with --mode stream"),
    ("json in stream mode", lambda t: ["run", "--mode", "stream", "--json"], "--json: not used by --mode stream"),
    ("kd descriptor without --paired", lambda t: ["bench", "kd", "--descriptor", _descriptor(t)],
     "--descriptor: only with --paired"),
    ("kd student larger than the firmware takes", lambda t: ["bench", "kd", "--paired", "--hidden", "65"],
     "--hidden: 65 outside 1..64"),
    ("kd paired with two student sizes", lambda t: ["bench", "kd", "--paired", "--hidden", "8", "--hidden", "32"],
     "--hidden: --paired runs one student size"),
    ("train student larger than the firmware takes", lambda t: ["train", "--hidden", "65", "--out", str(t / "m")],
     "--hidden: 65 outside 1..64"),
    ("kd merge of a missing file", lambda t: ["bench", "kd", "--merge", str(t / "nope.json")],
     "nope.json: no such file (option --merge)"),
    ("kd merge of a non-result", lambda t: ["bench", "kd", "--merge", str(_write(t / "x.json", "{}"))],
     "option --merge: a part is not a paired bench result (missing 'arms')"),
]


def _journal(t: Path, board: str | None = None, splice: bool = False) -> str:
    """A journal at the collar/w8a16 path: header-less (default), with another board's header, or
    with the collar's header followed by lines of another journal."""
    from test_run_journal import HEADER, _lines

    from harness.device.run import RunHeader

    j = t / "rep" / "journals" / "qemu_collar_w8a16.jsonl"
    j.parent.mkdir(parents=True)
    if board is not None:
        j.write_text("".join(_lines(RunHeader(**{**HEADER.__dict__, "board": board}), 2)))
    elif splice:
        j.write_text(_lines(HEADER, 0)[0] + "".join(_lines(RunHeader(**{**HEADER.__dict__, "board": "eartag"}), 3)[1:]))
    else:
        j.write_text('{"kind": "result", "result": {"index": 3}}\n')
    return str(t / "rep")


@pytest.fixture
def no_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to start an emulator or flash a board fails the test."""
    from harness.device.targets import BoardTarget, LabgridTarget, QemuTarget, RenodeTarget

    def refuse(self: object) -> str:
        raise AssertionError("a target was started for bad input")

    for cls in (QemuTarget, RenodeTarget, BoardTarget, LabgridTarget):
        monkeypatch.setattr(cls, "start", refuse)


def _hil(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [pytest.param(a, m, id=i) for i, a, m in BAD])
def test_bad_input_is_refused_with_what_and_where_before_anything_starts(
        argv: Callable[[Path], list[str]], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        no_emulator: None) -> None:
    code, err = _hil(argv(tmp_path), capsys)
    assert code == 2, err
    assert message in err, err
    assert "Traceback" not in err


def test_the_bad_input_table_has_at_least_25_rows() -> None:
    assert len(BAD) >= 25


@needs_qemu
def test_a_failed_window_is_reported_by_name_and_the_other_boards_still_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], budgets_only: Path) -> None:
    report = tmp_path / "rep"
    code, err = _hil(["run", "--board", "collar", "--board", "eartag", "--variant", "w8a16", "--limit", "12",
                      "--poison-window", "7", "--quiet", "--thresholds", str(budgets_only), "--report", str(report)],
                     capsys)
    assert code == 1, err
    runs = json.loads((report / "report.json").read_text())["runs"]
    assert [r["board"] for r in runs] == ["collar", "eartag"]
    for r in runs:
        assert r["n_verified"] == 11 and [f["index"] for f in r["failures"]] == [7]
        assert "parts still missing after 8 rounds" in r["failures"][0]["reason"]
        assert re.search(r"device missing (\d+) of \1 parts", r["failures"][0]["reason"])  # every part, every round
        failed = [c for c in r["checks"] if not c[1]]
        assert [c[0] for c in failed] == ["every window verified", "retry rate"], failed
        assert "window 7:" in failed[0][2]
    assert "11/12 windows verified" in err
    page = _html_structure((report / "index.html").read_text())
    assert "provenance" in page["ids"] and {"collar-w8a16", "eartag-w8a16"} <= page["ids"]
    assert "windows failed (no valid reply): 1" in page["captions"] and "per class" in page["captions"]
    assert "per animal" in page["captions"] and "link" in page["captions"]
    assert page["img_alts"].count("confusion matrix") == 2

    again = tmp_path / "again"
    code, out = _hil(["run", "--board", "collar", "--variant", "w8a16", "--limit", "12", "--quiet", "--thresholds",
                      str(budgets_only), "--report", str(again), "--baseline", str(report)], capsys)
    assert code == 0, out
    page = _html_structure((again / "index.html").read_text())
    assert "against the baseline" in page["captions"]


def _html_structure(text: str) -> dict[str, list[str] | set[str]]:
    """ids, table captions and image alt texts of a report page, with html.parser."""
    from html.parser import HTMLParser

    found: dict[str, list[str] | set[str]] = {"ids": set(), "captions": [], "img_alts": []}

    class P(HTMLParser):
        in_caption = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if a.get("id"):
                found["ids"].add(a["id"])  # type: ignore[union-attr]
            if tag == "img":
                found["img_alts"].append(a.get("alt") or "")  # type: ignore[union-attr]
            self.in_caption = tag == "caption"

        def handle_data(self, data: str) -> None:
            if self.in_caption:
                found["captions"].append(data)  # type: ignore[union-attr]
                self.in_caption = False

    P().feed(text)
    found["captions"] = " | ".join(found["captions"])  # type: ignore[arg-type, assignment]
    return found


@needs_qemu
def test_a_fault_record_at_the_first_hello_fails_acceptance_with_its_registers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], budgets_only: Path) -> None:
    from harness.device.targets.base import build_firmware

    elf = build_firmware("collar-qemu", "fault_w8a16")
    code, _ = _hil(["run", "--board", "collar", "--variant", "w8a16", "--limit", "5", "--image", str(elf),
                    "--quiet", "--thresholds", str(budgets_only), "--report", str(tmp_path)], capsys)
    out = capsys.readouterr()
    assert code == 1
    run = json.loads((tmp_path / "report.json").read_text())["runs"][0]
    check = next(c for c in run["checks"] if c[0] == "no fault at boot")
    assert check[1] is False and "CFSR=0x0001" in check[2] and "HFSR=0x40000000" in check[2] and "PC=0x" in check[2]
    del out


@needs_qemu
def test_the_collar_image_given_for_the_ear_tag_is_refused_naming_both(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from harness.device.targets.base import build_firmware

    elf = build_firmware("collar-qemu", "w8a16")
    t0 = time.monotonic()
    code, err = _hil(["run", "--board", "eartag", "--variant", "w8a16", "--image", str(elf), "--report",
                      str(tmp_path)], capsys)
    assert code == 2 and time.monotonic() - t0 < 5
    assert "built for board 'collar-qemu', but this target runs 'eartag-qemu'" in err


def test_the_readme_thresholds_table_lists_every_key_with_its_meaning() -> None:
    from conftest import REPO

    from harness.config.thresholds import KEYS

    readme = (REPO / "README.md").read_text()
    rows = [ln for ln in readme.splitlines() if ln.startswith("| `") and ln.split("`")[1] in KEYS]
    assert [ln.split("`")[1] for ln in rows] == list(KEYS)
    for key, (meaning, _, _) in KEYS.items():
        assert f"| `{key}` | {meaning} |" in readme, key


def test_every_option_of_every_command_has_help() -> None:
    import argparse

    from harness.cli import _build_parser

    missing: list[str] = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    walk(sp, f"{path} {name}")
            elif not a.help:
                missing.append(f"{path} {'/'.join(a.option_strings) or a.dest}")

    walk(_build_parser(), "hil")
    assert not missing, missing


def test_progress_in_a_log_is_a_line_every_few_seconds_not_a_redrawn_bar(monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from harness import cli

    assert list(cli._progress_lines(range(5), 5, "eartag/w8a16")) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().err == ""  # faster than PROGRESS_EVERY_S: no line at all
    monkeypatch.setattr(cli, "PROGRESS_EVERY_S", 0.0)
    assert list(cli._progress_lines(iter("abc"), 3, "collar/float32")) == ["a", "b", "c"]
    err = capsys.readouterr().err
    assert err == "collar/float32: 1/3 windows\ncollar/float32: 2/3 windows\n" and "\r" not in err


def test_protocol_cgen_takes_its_output_as_an_argument_and_help_writes_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "protocol.cgen", "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "usage: python -m protocol.cgen" in r.stdout and not list(tmp_path.iterdir())
    r = subprocess.run([sys.executable, "-m", "protocol.cgen", str(tmp_path / "p.h")], capture_output=True, text=True)
    assert r.returncode == 0 and "#define PROTO_DEFS_H" in (tmp_path / "p.h").read_text()
    r = subprocess.run([sys.executable, "-m", "protocol.cgen"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "required: out" in r.stderr


def test_hil_doctor_says_what_each_target_has_and_fails_when_qemu_cannot_run(tmp_path: Path) -> None:
    import json
    import os
    import shutil
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "harness.cli", "doctor", "--json"], capture_output=True, text=True,
                       timeout=120)
    d = json.loads(r.stdout)
    assert d["schema"] == "hil-doctor/1"
    names = {c["name"]: c for c in d["checks"]}
    have_qemu = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None
    assert names["qemu-system-arm"]["ok"] == (shutil.which("qemu-system-arm") is not None)
    assert d["ready"]["qemu"] == have_qemu and r.returncode == (0 if have_qemu else 1)
    assert names["packaged model and fixtures"]["ok"] and "406 windows" in names["packaged model and fixtures"]["found"]
    bare = subprocess.run([sys.executable, "-m", "harness.cli", "doctor"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": str(tmp_path), "HIL_RENODE": ""})
    assert bare.returncode == 1, bare.stdout
    assert "-- qemu-system-arm" in bare.stdout and "apt-get install qemu-system-arm" in bare.stdout
    assert "[needed by: qemu]" in bare.stdout and "targets: qemu not ready" in bare.stdout


@needs_qemu
def test_hil_run_json_is_the_summary_alone_on_stdout_and_hil_history_lists_the_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    from harness.report.summary import RUN_JSON_FIELDS, RUN_JSON_SCHEMA

    docs = []
    for k in range(2):
        r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--board", "eartag", "--variant", "w8a16",
                            "--limit", "60", "--quiet", "--json", "--report", str(tmp_path / "reports" / f"r{k}")],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        doc = json.loads(r.stdout)  # nothing but the document on stdout
        assert "verified" in r.stderr and set(doc) == set(RUN_JSON_FIELDS) and doc["schema"] == RUN_JSON_SCHEMA
        assert doc == json.loads((tmp_path / "reports" / f"r{k}" / "summary.json").read_text())
        docs.append(doc)
    case = docs[0]["cases"][0]
    assert case["passed"] and case["measured"]["windows_verified"] == case["measured"]["windows"] == 60
    assert set(case["measured"]) >= {"accuracy", "mcc", "latency_p50_ms", "energy_uj", "recall_other"}
    (tmp_path / "reports" / "junk").mkdir()
    (tmp_path / "reports" / "junk" / "summary.json").write_text("{not json")
    h = subprocess.run([sys.executable, "-m", "harness.cli", "history", "--reports", str(tmp_path / "reports")],
                       capture_output=True, text=True, timeout=60)
    assert h.returncode == 0, h.stderr
    rows = [line for line in h.stdout.splitlines() if "eartag" in line]
    assert len(rows) == 2 and all("w8a16" in x and "PASS" in x and "60/60" in x for x in rows)
    one = subprocess.run([sys.executable, "-m", "harness.cli", "history", "--reports", str(tmp_path / "reports"),
                          "--last", "1", "--json"], capture_output=True, text=True, timeout=60)
    assert [d["date_utc"] for d in json.loads(one.stdout)] == [docs[1]["date_utc"]]


def test_the_readme_table_of_the_run_summary_is_the_declared_one() -> None:
    from conftest import REPO

    from harness.report.summary import RUN_JSON_FIELDS

    readme = (REPO / "README.md").read_text()
    block = readme.split("`hil run --json`", 1)[1].split("\n\n", 2)[1]
    rows = {line.split("|")[1].strip().strip("`"): line.split("|")[2].strip()
            for line in block.splitlines() if line.startswith("| `")}
    assert rows == RUN_JSON_FIELDS


@pytest.mark.parametrize(("line", "want"), [
    ("hil ru", {"run"}),
    ("hil run --bo", {"--board", "--boards"}),
    ("hil run --board ", {"collar", "eartag"}),
    ("hil run --variant w", {"w8a16", "w16a16", "w8a8"}),
    ("hil completion ", {"-h", "--help", "bash", "zsh", "fish", "tcsh"}),
])
def test_the_shell_completes_commands_options_and_choices_from_the_parser(line: str, want: set[str],
                                                                         tmp_path: Path) -> None:
    """As bash asks it (argcomplete's protocol: COMP_LINE and COMP_POINT in, candidates out)."""
    import subprocess
    import sys

    out = tmp_path / "candidates"
    env = {"_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE_IFS": "\n",
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "harness.cli"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert {c.strip() for c in out.read_text().split("\n") if c.strip()} == want


def test_hil_completion_prints_the_shell_code_that_registers_hil(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    code = capsys.readouterr().out
    assert "complete " in code and " hil" in code and "_python_argcomplete" in code


def test_bench_others_refuses_an_unknown_lever_before_any_training(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "others", "--lever", "other-w9"]) == 2
    err = capsys.readouterr().err
    assert "--lever: other-w9: not one of default, other-w2" in err
