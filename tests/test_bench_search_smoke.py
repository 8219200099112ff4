"""The search benchmark at a tiny size (seconds), so that it cannot rot."""

from __future__ import annotations

import json

from bench import generate, search_edits, search_server_time
from tests.conftest import POSTGRES_ADMIN_URL


def test_search_benchmark_runs_at_tiny_size(tmp_path):
    report = search_server_time.run(admin_url=POSTGRES_ADMIN_URL, spaces=80, sizes=(300, 600),
                                    searches=12, warmup=2, out_dir=tmp_path, quiet=True)
    assert [r["bookings"] for r in report["rows"]] == [300, 600]
    for row in report["rows"]:
        assert row["searches"] > 0 and row["p95_ms"] > 0
        assert row["queries_max"] <= 20  # a constant number of queries per search
    written = json.loads(next(tmp_path.glob("search_server_time-*.json")).read_text())
    assert written["rows"] == report["rows"]
    assert "bookings" in search_server_time.table(report)


def test_generator_api_for_other_benchmarks():
    mix = generate.search_mix(50, seed=3)
    assert len(mix) == 50 and all("date" in p for p in mix)
    assert generate.search_mix(50, seed=3) == mix  # reproducible
    assert all(u.startswith("/api/v1/spaces?") for u in generate.search_urls(5))
    url = generate.create_database(POSTGRES_ADMIN_URL)
    try:
        stats = generate.generate_spaces(url, 30, seed=2, campaigns=2)
        assert stats.spaces == 30 and stats.units >= 30
        assert generate.add_bookings(url, 500, seed=1) == 500
        assert generate.count_bookings(url) == 500
    finally:
        generate.drop_database(POSTGRES_ADMIN_URL, url)


def test_search_under_edits_benchmark_runs_at_tiny_size(tmp_path):
    report = search_edits.run(admin_url=POSTGRES_ADMIN_URL, spaces=60, bookings=300,
                              searches=16, turns=2, warmup=2, per_minute=600,
                              out_dir=tmp_path, quiet=True)
    assert [r["mode"] for r in report["rows"]] == ["quiet", "edits"]
    assert report["edits_committed"] > 0  # the first edit is made as a turn begins
    for row in report["rows"]:
        assert row["searches"] > 0 and row["p95_ms"] > 0
        assert row["full_reloads_in_searches"] == 0  # edits refresh their spaces only
    assert report["full_reloads_after_warmup"] == 0
    assert json.loads(next(tmp_path.glob("search_edits-*.json")).read_text())["rows"] == \
        report["rows"]
    assert "full reloads" in search_edits.table(report)


def test_search_ab_mode_runs_at_tiny_size(tmp_path):
    """Two sides of one commit (an A/A run) on a tiny database: both answer the same."""
    report = search_server_time.run_ab("HEAD", "HEAD", admin_url=POSTGRES_ADMIN_URL, spaces=60,
                                       bookings=300, searches=12, warmup=2, turns=2,
                                       out_dir=tmp_path, quiet=True)
    assert [r["side"] for r in report["rows"]] == ["A", "B"]
    for row in report["rows"]:
        assert row["searches"] > 0 and row["p95_ms"] > 0 and len(row["turns"]) == 2
    assert report["same_answers"] and report["b_over_a"]["p50"] is not None
    assert len(report["cpu_check_ms"]) == len(report["load_average_1m"]) == 3
    assert "B/A p50" in search_server_time.ab_table(report)
    assert json.loads(next(tmp_path.glob("search_server_time_ab-*.json")).read_text())["rows"] \
        == report["rows"]
