"""An example of a team's own device-level tests, written against the ``hil_device`` fixture (a
connected DeviceClient, model checked) of the plugin. It runs for every --hil-board/--hil-variant
case on whatever --hil-target is, like the acceptance suite."""

from __future__ import annotations

import numpy as np
import pytest

from harness.data.fixtures import FixtureSet
from harness.device.client import DeviceClient, DeviceError


def test_ping_echoes_its_payload(hil_device: DeviceClient) -> None:
    payload = bytes(range(1, 200))
    assert hil_device.ping(payload) == payload


def test_a_window_of_the_wrong_length_is_refused(hil_device: DeviceClient) -> None:
    assert hil_device.info is not None
    with pytest.raises(DeviceError, match="PAYLOAD"):
        hil_device.infer(1, np.zeros((hil_device.info.window_len - 1, 3), np.int16))


def test_the_same_window_twice_gives_the_same_class_and_scores(hil_device: DeviceClient,
                                                                 hil_recordings: FixtureSet) -> None:
    x = hil_recordings.calibrated_x()[5]
    a, b = hil_device.infer(10, x), hil_device.infer(11, x)
    assert (a.cls, a.scores) == (b.cls, b.scores)


def test_no_link_errors_were_counted_by_the_device(hil_device: DeviceClient) -> None:
    c = hil_device.counters()
    assert c.crc_errors == c.cobs_errors == c.rx_overruns == 0
