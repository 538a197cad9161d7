"""The porting guide's example device (device_fw/examples/minimal, docs/porting.md): built from the
protocol library alone, under ASan and UBSan, and driven by the harness's own client."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import numpy as np
import pytest
from conftest import REPO

from harness.device.client import DeviceClient, DeviceError, open_transport
from harness.device.targets.qemu import free_port

FW = REPO / "device_fw"


@pytest.fixture
def example_device() -> Iterator[str]:
    """The example built and listening; yields its pyserial URL."""
    r = subprocess.run(["make", "-s", "-C", str(FW), "example"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    port = free_port()
    proc = subprocess.Popen([str(FW / "build" / "host" / "minimal_device"), str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("listening")
        yield f"socket://127.0.0.1:{port}"
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        assert "ERROR: AddressSanitizer" not in err and "runtime error" not in err, err


def test_the_example_device_answers_hello_ping_and_refuses_what_it_does_not_serve(example_device: str) -> None:
    c = DeviceClient(open_transport(example_device), "example", latency_budget_s=1.0, adaptive=False)
    try:
        info = c.hello()
        assert (info.board, info.build_id, info.window_len, info.n_classes) == ("example-host", "porting-guide", 50, 4)
        assert c.ping(b"\x00\x01 porting \xff" * 20) == b"\x00\x01 porting \xff" * 20
        with pytest.raises(DeviceError, match="UNKNOWN_TYPE"):
            c.infer(1, np.zeros((50, 3), np.int16))  # in Parts (adaptive off); the refused Run makes it go whole
        assert c.part_bytes == 0 and c.stats.parts_sent > 0
        assert c.stats.logs == ["example device up"] and c.stats.retries == 0
    finally:
        c.close()
