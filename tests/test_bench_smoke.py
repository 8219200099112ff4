"""The HTTP benchmarks in smoke mode (tiny data, a second each), so that they cannot rot.
Speed is not asserted here: the figures come from `python -m bench.run_all` (bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run_all import BENCHMARKS

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_run_all_smoke():
    done = subprocess.run([sys.executable, "-m", "bench.run_all", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    path = Path(done.stdout.strip().splitlines()[-1].removeprefix("JSON: "))
    report = json.loads(path.read_text())
    assert report["floor"]["rps"] > 0
    # The warm-up sends every kind of request and waits for each answer: all must work.
    warm = report["warm"]["statuses"]
    assert warm.get("200") and warm.get("201"), warm
    assert not any(code.startswith("5") or code == "404" for code in warm), warm
    for name in BENCHMARKS:
        # On a busy machine a 3-second run of a slow request may see no answer at all, so
        # only what was answered is checked here.
        figures = report["benchmarks"][name]
        assert set(figures) >= {"rps", "latency_ms", "statuses", "ratio"}, name
        assert not any(code.startswith("5") for code in figures["statuses"]), (name, figures)
        assert figures["socket_errors"]["connect"] == 0, (name, figures)
    assert report["server_time"]["POST /api/v1/bookings"]["requests"] > 0
    hot = report["benchmarks"]["book-hot"]["check"]
    assert hot["exactly_capacity"], hot
    assert report["over_capacity"] == []
    assert report["redis_keys_left"] == 0
    # wrk stops reading at the end of a run: requests still in flight then may be booked
    # unanswered, at most one per connection and run that books (warm-up and two benchmarks).
    check = report["bookings_check"]
    assert 0 <= check["rows_in_db"] - check["answered_201"] <= 3 * report["settings"]["connections"]
