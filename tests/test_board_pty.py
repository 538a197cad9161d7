"""The board target on a real tty: QEMU's ``-serial pty`` gives a pseudo-terminal that pyserial
opens as it opens a USB-serial port (termios: the raw mode and line settings pyserial sets at
open; a port opened again by the next run), and `hil run --target board --no-flash --port
/dev/pts/N` verifies every window through it, before and after the board is reset."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from conftest import needs_qemu
from qemu_boards import qemu_board

from harness.cli import main


@needs_qemu
def test_the_board_target_verifies_every_window_over_a_pty_before_and_after_a_reset(tmp_path: Path) -> None:
    with qemu_board("eartag", "w8a16", serial="pty") as qb:
        assert qb.pty is not None and stat.S_ISCHR(os.stat(qb.pty).st_mode)  # a character device, as a USB port
        fd = os.open(qb.pty, os.O_RDWR | os.O_NOCTTY)
        try:
            assert os.isatty(fd)  # termios applies: pyserial sets raw mode and the baud rate on it
        finally:
            os.close(fd)
        summaries, boots = [], []
        for k in range(2):
            if k == 1:
                qb.reset()  # reset button: the firmware boots again; the next run opens the tty again
            rep = tmp_path / f"run{k}"
            rc = main(["run", "--target", "board", "--no-flash", "--port", qb.pty, "--board", "eartag",
                       "--variant", "w8a16", "--quiet", "--report", str(rep)])
            assert rc == 0
            summaries.append(json.loads((rep / "summary.json").read_text()))
            boots.append(json.loads((rep / "report.json").read_text())["runs"][0]["info"]["boot_counter"])
        for s in summaries:
            (case,) = s["cases"]
            m = case["measured"]
            assert case["target"] == "board" and case["passed"]
            assert m["windows_verified"] == m["windows"] == 406 and m["windows_mismatched"] == 0
            assert m["windows_failed"] == 0
        assert boots[1] == boots[0] + 1, boots  # the second run talked to the rebooted firmware
