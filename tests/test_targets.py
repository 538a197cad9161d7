"""QEMU command line and board targets: everything that can run without a board, and the skips (the
Renode target: tests/test_renode_target.py and tests/test_renode_live.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import needs_qemu

from harness.device.targets import BoardTarget, HardwareMap, TargetUnavailable
from harness.device.targets.qemu import qemu_command


def test_qemu_command_has_deterministic_time_and_a_binary_safe_socket() -> None:
    cmd = " ".join(qemu_command("eartag", Path("fw.elf"), 1234))
    assert "-M mps2-an386" in cmd and "-icount shift=7,align=off" in cmd
    assert "-serial tcp:127.0.0.1:1234,server=on,wait=on,nodelay=on" in cmd


def test_hardware_map_binds_boards_and_refuses_ambiguity(tmp_path: Path) -> None:
    p = tmp_path / "hw.json"
    p.write_text(json.dumps({"boards": {"tag1": {"board": "eartag", "probe": "P1", "usb_serial": "S1"},
                                        "col1": {"board": "collar", "probe": "P2", "port": "/dev/ttyACM3"}}}))
    hw = HardwareMap.load(p)
    assert hw.for_board("collar").port == "/dev/ttyACM3" and hw.for_board("eartag").probe == "P1"
    p.write_text(json.dumps({"boards": {"a": {"board": "eartag", "probe": "P1"}, "b": {"board": "collar",
                                                                                        "probe": "P1"}}}))
    with pytest.raises(ValueError, match="same probe id"):
        HardwareMap.load(p)
    p.write_text("{not json")
    with pytest.raises(ValueError, match=r"hw\.json:1: not valid JSON"):
        HardwareMap.load(p)
    p.write_text(json.dumps({"boards": {"a": {"board": "toaster"}}}))
    with pytest.raises(ValueError, match=r"boards\.a\.board: must be one of"):
        HardwareMap.load(p)


def test_hardware_map_names_labgrid_places_and_refuses_a_place_with_a_probe(tmp_path: Path) -> None:
    from harness.device.targets import LabgridTarget, make_target

    p = tmp_path / "hw.json"
    p.write_text(json.dumps({"boards": {"tag1": {"board": "eartag", "place": "desk-3", "coordinator": "farm:20408"},
                                        "col1": {"board": "collar", "probe": "P2", "port": "/dev/ttyACM3"}}}))
    hw = HardwareMap.load(p)
    assert (hw.for_board("eartag").place, hw.for_board("eartag").coordinator) == ("desk-3", "farm:20408")
    t = make_target("labgrid", "eartag", "w8a16", hardware_map=p, no_flash=True)
    assert isinstance(t, LabgridTarget) and (t.place, t.coordinator, t.flash) == ("desk-3", "farm:20408", False)
    with pytest.raises(ValueError, match=r"boards\.col1 names no labgrid place"):
        make_target("labgrid", "collar", "w8a16", hardware_map=p)
    with pytest.raises(ValueError, match=r"boards\.tag1 names a labgrid place \(desk-3\): use --target labgrid"):
        make_target("board", "eartag", "w8a16", hardware_map=p)
    with pytest.raises(TargetUnavailable, match="no labgrid place configured"):
        make_target("labgrid", "eartag", "w8a16")
    for entry, says in (({"board": "eartag", "place": "d", "probe": "P"}, r"a labgrid place and probe"),
                        ({"board": "eartag", "coordinator": "farm:1", "port": "/dev/x"},
                         r"coordinator: only with a place"),
                        ({"board": "eartag", "place": ""}, r"boards\.a\.place: must be a non-empty string")):
        p.write_text(json.dumps({"boards": {"a": entry}}))
        with pytest.raises(ValueError, match=says):
            HardwareMap.load(p)
    p.write_text(json.dumps({"boards": {"a": {"board": "eartag", "place": "d"},
                                        "b": {"board": "collar", "place": "d"}}}))
    with pytest.raises(ValueError, match="same labgrid place is bound to two boards"):
        HardwareMap.load(p)


def test_a_configured_board_that_is_absent_is_an_error_not_a_skip() -> None:
    from harness.device.targets.board import BoardEntry, BoardNotFound

    t = BoardTarget("eartag", "w8a16")
    with pytest.raises(BoardNotFound, match="no port and no usb_serial"):
        t.find_port()
    with pytest.raises(BoardNotFound, match="no probe id"):
        t._session()
    t = BoardTarget("eartag", "w8a16", entry=BoardEntry("x", "eartag", "P", None, "NO-SUCH-SERIAL"))
    with pytest.raises(BoardNotFound, match="NO-SUCH-SERIAL"):
        t.find_port()
    with pytest.raises(BoardNotFound, match="/dev/ttyNOPE does not exist"):
        BoardTarget("eartag", "w8a16", port="/dev/ttyNOPE", probe="000683DEADBEEF").start()
    assert not issubclass(BoardNotFound, TargetUnavailable)


class _FakeSession:
    """pyocd's session at its API boundary: records what reaches it."""

    calls: ClassVar[list[tuple[str, object]]] = []

    def __init__(self) -> None:
        self.target = self

    def __enter__(self) -> _FakeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        _FakeSession.calls.append(("close", None))

    def reset(self) -> None:
        _FakeSession.calls.append(("reset", None))


def _mock_pyocd(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    import pyocd.core.helpers
    import pyocd.flash.file_programmer

    calls: ClassVar[list[tuple[str, object]]] = []
    _FakeSession.calls = calls

    def session_with_chosen_probe(**kw: object) -> _FakeSession:
        calls.append(("session", kw))
        return _FakeSession()

    class Programmer:
        def __init__(self, session: object) -> None:
            calls.append(("programmer", type(session).__name__))

        def program(self, path: str, file_format: str) -> None:
            calls.append(("program", (path, file_format)))

    monkeypatch.setattr(pyocd.core.helpers.ConnectHelper, "session_with_chosen_probe",
                        staticmethod(session_with_chosen_probe))
    monkeypatch.setattr(pyocd.flash.file_programmer, "FileProgrammer", Programmer)
    return calls


@needs_qemu
def test_the_board_target_flashes_exactly_the_given_elf_through_the_given_probe(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from harness.device.targets import make_target
    from harness.device.targets.base import build_firmware

    calls = _mock_pyocd(monkeypatch)
    elf = tmp_path / "field firmware.elf"
    elf.write_bytes(build_firmware("eartag", "w8a16").read_bytes())
    t = make_target("board", "eartag", "w8a16", image=elf, port="loop://", probe="000683DEADBEEF")
    assert t.start() == "loop://"
    session = next(v for k, v in calls if k == "session")
    assert session["unique_id"] == "000683DEADBEEF" and session["target_override"] == "nrf52840"  # type: ignore[index]
    assert ("program", (str(elf), "elf")) in calls and ("reset", None) in calls


def test_no_flash_never_calls_pyocd_and_needs_no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.device.targets import make_target

    calls = _mock_pyocd(monkeypatch)
    t = make_target("board", "collar", "w8a16", port="loop://", no_flash=True)
    assert t.start() == "loop://" and calls == []
    with pytest.raises(ValueError, match="cannot be combined with --image"):
        make_target("board", "collar", "w8a16", port="loop://", no_flash=True, image=Path("x.elf"))


@needs_qemu
def test_the_board_target_refuses_the_other_boards_image_before_flashing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.device.targets import make_target
    from harness.device.targets.base import ImageError, build_firmware

    calls = _mock_pyocd(monkeypatch)
    t = make_target("board", "eartag", "w8a16", image=build_firmware("collar", "w8a16"), port="loop://", probe="P")
    with pytest.raises(ImageError, match="built for board 'collar', but this target runs 'eartag'"):
        t.start()
    assert calls == []
