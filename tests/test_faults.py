"""The fault checks of bench/faults/, small: each against a PostgreSQL server of its own
(initdb in a temporary folder, own port), gunicorn, and a real SMTP server where mail is
involved. The full runs are `python -m bench.faults.<name>`."""

from __future__ import annotations

import json

import pytest

from bench.faults import pg_restart, smtp_outage, worker_kill

pytestmark = pytest.mark.slow


def _explain(report: dict) -> str:
    return json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=1, default=str)


# Issue 9: a booking answered 201 by the app came out of gunicorn as a 500 when the
# database stopped between the answer and the session's ROLLBACK at teardown (fixed in
# booking/web.py, _end_session; reproduced deterministically in tests/test_database_outage.py).
def test_postgresql_restart_during_bookings():
    report = pg_restart.run(requests=150, threads=6, outage=3.0, workers=2, app_threads=2)
    assert report["passed"], _explain(report)
    assert report["answered_201"] == report["rows_in_db"] == 150


def test_smtp_outage_during_bookings():
    report = smtp_outage.run(requests=60, threads=4, outage=3.0, workers=2, app_threads=2)
    assert report["passed"], _explain(report)


def test_outbox_worker_killed_mid_send():
    report = worker_kill.run(bookings=20, kills=2, delay=0.2, lease=2.0)
    assert report["passed"], _explain(report)
