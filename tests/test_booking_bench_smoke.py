"""bench/booking_throughput.py in miniature (two workers, a second per mode), so that it
cannot rot. Speed is not asserted: the figures come from the full run (see bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_booking_throughput_smoke(tmp_path):
    output = tmp_path / "booking_throughput.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.booking_throughput", "--workers", "2", "--seconds", "1",
         "--units", "5", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "bookings" in done.stdout and "per s" in done.stdout  # the table
    report = json.loads(output.read_text())
    assert [run["mode"] for run in report["runs"]] == ["floor", "distinct", "hot"]
    for run in report["runs"]:
        assert run["bookings"] > 0, run
        assert run["refused"]["other"] == 0, run
    assert report["check"]["ok"], report["check"]
