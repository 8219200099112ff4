"""Two gunicorn app servers at once against one PostgreSQL and one Redis (bench/scale_out.py,
small): bookings raced through both never overbook, and the rate limits are shared; and
issue 17's integrity races through both (bench/scale_out_races.py), checked in the database."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
import time_machine

from bench import scale_out

pytestmark = pytest.mark.slow


def test_two_app_servers_share_the_database_and_the_rate_limits():
    report = scale_out.run(capacity=10, requests=60, threads=12, workers=2, app_threads=2)
    assert report["passed"], json.dumps({"checks": report["checks"], "booking": report["booking"],
                                         "rate_limit": report["rate_limit"]}, indent=1)
    assert report["booking"]["seats_in_db"] == 10


def test_issue_17_races_through_two_app_servers():
    """The campaign's one booking per company, and check-in racing a cancellation, over
    HTTP through both servers for 20 rounds; then the database is checked
    (bench/scale_out_races.py)."""
    from bench import scale_out_races

    # The app servers run on the host's clock (they do not read TEST_CLOCK): so does the
    # set-up here, or "today's" bookings would be on the suite's day, not on theirs.
    hatch = time_machine.escape_hatch
    host_now = datetime.fromtimestamp(hatch.time.time() if hatch.is_travelling() else time.time(),
                                      UTC)
    with time_machine.travel(host_now, tick=True):
        report = scale_out_races.run(rounds=20, workers=2, app_threads=2)
    summary = json.dumps({k: report[k] for k in ("answers_by_race", "per_server", "problems")},
                         indent=1)
    assert report["violations"] == 0, summary
    assert report["answered_5xx_or_not_at_all"] == 0, summary
    assert report["passed"], summary
    by_race = report["answers_by_race"]
    assert by_race["campaign"] == {"201 ok": 20, "403 campaign_bookings_per_company": 140}
    assert by_race["book"] == {"201 ok": 40}
    # Every check-in and cancel was decided: 80 of each, one winner per booking.
    assert sum(by_race["check_in"].values()) == sum(by_race["cancel"].values()) == 80
    assert by_race["check_in"].get("302 ok", 0) + by_race["cancel"].get("200 ok", 0) == 80
