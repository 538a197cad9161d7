"""Shared paths and skips for the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from harness.config.descriptor import load_descriptor

# no per-example deadline: on a loaded 2-core machine one example can take 250 ms and the test
# would fail on time, which is not what these property tests check
settings.register_profile("hil", deadline=None)
settings.load_profile("hil")

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
SHARED_DATA = REPO.parent / "shared" / "data" / "db-cow-walking"
CATTLE = load_descriptor()
"""the packaged cattle model descriptor"""

needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"shared recordings not found at {SHARED_DATA}"
)

import shutil  # noqa: E402

needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="qemu-system-arm or arm-none-eabi-gcc not installed (scripts/bootstrap.sh installs both)",
)


@pytest.fixture(scope="session")
def budgets_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A thresholds file with the packaged budgets but no accuracy floors: for runs of a few
    windows (``--limit``), whose class mix cannot meet a floor meant for the whole fixture set."""
    import json

    from harness.config.thresholds import ACCEPTANCE_FILE

    raw = json.loads(ACCEPTANCE_FILE.read_text())
    for variants in raw["thresholds"].values():
        for entry in variants.values():
            for key in ("min_windows", "min_accuracy", "min_mcc", "min_recall"):
                entry.pop(key, None)
    out = tmp_path_factory.mktemp("thresholds") / "budgets_only.json"
    out.write_text(json.dumps(raw))
    return out
