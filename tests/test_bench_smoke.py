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
        # On a busy machine a 2-second run of a slow request may see no answer at all, so
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


def test_ab_smoke():
    """bench.ab: HEAD against the work tree, 2 rounds of 1 s each on tiny data: it runs,
    both servers answer, the ratios are printed, the hot units end at their capacity and
    the temporary git worktree is gone afterwards."""
    done = subprocess.run([sys.executable, "-m", "bench.ab", "--a", "HEAD", "--b", "WORKTREE",
                           "--smoke", "book-hot"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "x A [spread]" in done.stdout and "seats/s x A" in done.stdout, done.stdout[-3000:]
    path = Path(done.stdout.strip().splitlines()[-1].removeprefix("JSON: "))
    report = json.loads(path.read_text())
    assert [s["label"] for s in report["sides"]] == ["A", "B"]
    assert len(report["rounds"]) == 2 * 2  # rounds x sides
    for record in report["rounds"]:
        assert record["cpu_check_ms"] > 0 and len(record["load_average"]) == 3
        assert not any(code.startswith("5") for code in record["statuses"]), record
    hot = report["summary"]["book-hot"]
    assert hot["A"]["rps"] > 0 and hot["B"]["rps"] > 0
    assert hot["B"]["ratio"]["rps"]["pairs"] == 2 and hot["B"]["ratio"]["seats_per_s"]["pairs"] == 2
    assert hot["B"]["server_p50"] is not None  # the access log's duration_ms was read
    for side in ("A", "B"):
        # each round a fresh hot unit of 3 seats: exactly 3 answered 201 and held each time
        assert hot[side]["all_exactly_capacity"], hot
        assert hot[side]["statuses"]["201"] == 2 * 3, hot
    assert report["over_capacity"] == [] and report["redis_keys_left"] == 0
    trees = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "bench-ab-" not in trees, trees


def test_ab_reads_each_layout_of_gunicorn_settings(tmp_path):
    """--own-settings: a side runs its commit's defaults, read from booking/gunicorn_conf.py
    or, in commits before the move, from the root's gunicorn.conf.py."""
    from bench.ab import settings_defaults

    (tmp_path / "gunicorn.conf.py").write_text(
        "workers = 5\nthreads = 4\nworker_class = 'gthread'\nmax_requests = 10000\n")
    assert settings_defaults(tmp_path) == {
        "WEB_CONCURRENCY": "5", "GUNICORN_THREADS": "4", "GUNICORN_WORKER_CLASS": "gthread",
        "GUNICORN_MAX_REQUESTS": "10000"}
    from booking import gunicorn_conf

    assert settings_defaults()["GUNICORN_THREADS"] == str(gunicorn_conf.threads)
