"""CI smoke of the live tracking benchmark: `bench/tracking.py --check` (200 watchers, a few
seconds per server, loose thresholds) passes on the settings the suite runs with (SpatiaLite and
the in-memory layer by default, or DATABASE_URL/REDIS_URL, which the bench then uses too)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_tracking_benchmark_check_passes():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "tracking.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )

    report = result.stdout[-5000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    assert "[MISSED]" not in result.stdout, report
    for server in ("daphne", "uvicorn", "raw"):
        assert f"\n{server} " in result.stdout, report
