"""The in-process A/B benchmarks (bench/booking_server_time.py, bench/page_server_time.py)
at a tiny size, A/A (HEAD against this work tree) on a tiny generated database, so that they
cannot rot. Speed is not asserted: only that both sides ran and everything was recorded."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import booking_server_time, generate, page_server_time
from tests.conftest import POSTGRES_ADMIN_URL

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_db() -> Iterator[str]:
    url = generate.create_database(POSTGRES_ADMIN_URL)
    try:
        generate.generate_spaces(url, 40)
        generate.add_bookings(url, 300)
        yield url.rsplit("/", 1)[1]
    finally:
        generate.drop_database(POSTGRES_ADMIN_URL, url)


def worktrees() -> set[str]:
    listed = subprocess.run(["git", "-C", str(ROOT), "worktree", "list", "--porcelain"],
                            check=True, capture_output=True, text=True).stdout
    return {line.removeprefix("worktree ") for line in listed.splitlines()
            if line.startswith("worktree ")}


def check_common(report: dict, tmp_path: Path, name: str, rounds: int, before: set[str],
                 prefix: str) -> None:
    # The worktree of HEAD is gone again. (Only this run's: others may add and remove
    # worktrees of their own in this repository meanwhile, tests in parallel too.)
    head = report["sides"][0]["checkout"]
    assert f"/{prefix}" in head and not Path(head).exists()
    assert report["sides"][1]["checkout"] == str(ROOT)
    after = worktrees()
    assert head not in after
    assert not [w for w in after - before if f"/{prefix}" in w]
    assert [s["side"] for s in report["sides"]] == ["A", "B"]
    assert report["settings"]["a"] == "HEAD" and report["settings"]["b"] == "WORKTREE"
    # Every round of every side ran, with its load and CPU check beside it.
    assert sorted((r["round"], r["side"]) for r in report["rounds"]) == \
        [(n, side) for n in range(1, rounds + 1) for side in "AB"]
    for r in report["rounds"]:
        assert r["load_1m"] >= 0 and r["cpu_check_ms"] > 0
    written = json.loads(Path(report["written_to"]).read_text())
    assert Path(report["written_to"]).parent == tmp_path
    assert Path(report["written_to"]).name.startswith(f"{name}-")
    assert written["rows"] == report["rows"]
    assert written["rounds"] == report["rounds"]
    assert written["b_over_a"] == report["b_over_a"]


def test_booking_server_time_runs_at_tiny_size(tiny_db, tmp_path):
    before = worktrees()
    report = booking_server_time.run("HEAD", "WORKTREE", db=tiny_db,
                                     admin_url=POSTGRES_ADMIN_URL, bookings=3, warm=1,
                                     rounds=2, out_dir=tmp_path, quiet=True)
    check_common(report, tmp_path, "booking_server_time", 2, before, "booking-ab-")
    assert [r["side"] for r in report["rows"]] == ["A", "B"]
    for row in report["rows"]:
        assert row["n"] == 2 * 3 and row["p50_ms"] > 0 and row["p95_ms"] >= row["p50_ms"]
        assert row["statements"] > 0
        assert len(row["cpu_check_ms"]) == len(row["load_1m"]) == 2
    assert set(report["b_over_a"]) == {"p50", "p95"}
    assert "cpu_check ms" in booking_server_time.table(report)


def test_page_server_time_runs_at_tiny_size(tiny_db, tmp_path):
    before = worktrees()
    report = page_server_time.run("HEAD", "WORKTREE", db=tiny_db, admin_url=POSTGRES_ADMIN_URL,
                                  slugs=3, pages=3, feeds=2, feed_bookings=20, rounds=1,
                                  out_dir=tmp_path, quiet=True)
    check_common(report, tmp_path, "page_server_time", 1, before, "page-ab-")
    measured = {(r["measure"], r["side"]) for r in report["rows"]}
    for measure in ("space-first", "space", "feed-fresh", "feed-cached"):
        assert {(measure, "A"), (measure, "B")} <= measured
        assert set(report["b_over_a"][measure]) == {"p50", "p95"}
    for row in report["rows"]:
        assert row["n"] > 0 and row["p50_ms"] > 0
        assert row["statements"] > 0 or row["measure"] in ("feed-cached", "feed-304")
        assert len(row["cpu_check_ms"]) == len(row["load_1m"]) == 1
    assert "cpu_check ms" in page_server_time.table(report)
