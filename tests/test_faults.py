"""The fault checks of bench/faults/, small: each against a PostgreSQL server of its own
(initdb in a temporary folder, own port), gunicorn, and a real SMTP server where mail is
involved. The full runs are `python -m bench.faults.<name>`."""

from __future__ import annotations

import json

import pytest

from bench.faults import pg_restart, redis_away, smtp_outage, worker_kill

pytestmark = pytest.mark.slow


def _explain(report: dict) -> str:
    return json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=1, default=str)


# Issue 9: a booking answered 201 by the app came out of gunicorn as a 500 when the
# database stopped between the answer and the session's ROLLBACK at teardown (fixed in
# booking/web.py, _end_session; reproduced deterministically in tests/test_database_outage.py).
def test_postgresql_restart_during_bookings():
    report = pg_restart.run(requests=150, threads=6, outage=3.0, workers=2, app_threads=2)
    assert report["passed"], _explain(report)
    # Concentrated: 4 unit-days of 33 seats asked for 150; the rest refused as full.
    assert report["answered_201"] == report["rows_in_db"] == report["capacity_total"] == 132
    assert report["answered_201"] + report["refused_full"] == 150
    assert report["oversold"] == [] and set(report["seats_held"].values()) == {33}
    assert report["unit_loads"]["equal"] and report["unit_loads"]["stored_rows"] > 0


def test_smtp_outage_during_bookings():
    report = smtp_outage.run(requests=60, threads=4, outage=3.0, workers=2, app_threads=2)
    assert report["passed"], _explain(report)
    outage = report["outage"]
    assert 1 <= outage["delivered_before"] < 60  # stopped while mail was still flowing
    assert outage["outbox_during"]["failed_sends"] > 0
    assert report["outbox_final"]["sent"] == report["mail"]["delivered_distinct"] == 60
    assert report["outbox_final"]["parked"] == report["outbox_final"]["waiting"] == 0
    assert report["mail"]["duplicates"] == report["mail"]["lost"] == 0


def test_outbox_worker_killed_mid_send():
    report = worker_kill.run(bookings=20, kills=2, delay=0.2, lease=2.0)
    assert report["passed"], _explain(report)
    assert report["settings"]["lease_s"] == 2.0 and report["settings"]["production_lease_s"] == 300
    assert report["kills_mid_send"] == len(report["killed_while_sending"]) == 2
    assert all(n == 1 for n in report["duplicated"].values())
    assert set(report["duplicated"]) <= set(report["killed_while_sending"])
    assert report["mail"]["lost"] == 0 and report["mail"]["delivered_distinct"] == 20


# Issue 17, finding 14: with Redis stopped or frozen, token requests answered 500 and
# bookings waited on redis-py's 5 s timeout. The drill's Redis is its own (own port).
def test_redis_stopped_then_frozen_during_logins_and_bookings():
    report = redis_away.run(guesses=15, bookings=12, workers=2, app_threads=2)
    assert report["passed"], _explain(report)
    assert report["answers_5xx_or_dropped"] == {}
    assert report["answered_201"] == report["rows_in_db"] == report["bookings_total"] == 48
    for name in redis_away.PHASES:
        assert report["phases"][name]["guesses"].get("429", 0) > 0, name
    assert report["phases"]["stopped"]["guesses"].get("401", 0) <= 5 * 2
