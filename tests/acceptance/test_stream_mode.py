"""Stream mode acceptance: whole bouts of the fixture cows sent as raw samples a few per frame; the
device applies each cow's orientation calibration, windows the samples with the hop and advances
the GRU per sample. Every window must match its reference: bit-exact for the quantized variants,
same class and logits within 1e-3 for float32."""

from __future__ import annotations

from harness.data.fixtures import FixtureSet
from harness.verdict.stream import StreamRun


def test_every_stream_window_matches_its_reference(hil_stream_run: StreamRun) -> None:
    r = hil_stream_run
    assert not r.mismatches, f"{len(r.mismatches)} windows differ; first: {r.mismatches[0]}"
    assert r.windows_verified == r.windows_expected > 0


def test_no_window_is_missing_and_none_was_lost(hil_stream_run: StreamRun) -> None:
    assert not hil_stream_run.missing, hil_stream_run.missing[:3]
    assert hil_stream_run.windows_lost == 0


def test_the_device_reports_the_calibration_it_applies(hil_stream_run: StreamRun) -> None:
    ids = hil_stream_run.calibration_ids
    assert ids and all(v != 0 for v in ids.values()) and len(set(ids.values())) == len(ids)


def test_the_device_keeps_up_with_the_recordings_sample_rate(hil_stream_run: StreamRun,
                                                              hil_recordings: FixtureSet) -> None:
    """Each sample must be done before the next arrives (duty cycle below 1 at the recording's rate)."""
    rate = float(hil_recordings.meta["sample_rate_hz"])  # type: ignore[arg-type]
    assert 0 < hil_stream_run.duty_cycle(rate) < 1.0, f"duty cycle {hil_stream_run.duty_cycle(rate):.2f} at {rate} Hz"
