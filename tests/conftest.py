"""Shared paths and skips for the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
SHARED_DATA = REPO.parent / "shared" / "data" / "db-cow-walking"

needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"shared recordings not found at {SHARED_DATA}"
)
