"""Two gunicorn app servers at once against one PostgreSQL and one Redis (bench/scale_out.py,
small): bookings raced through both never overbook, and the rate limits are shared."""

from __future__ import annotations

import json

import pytest

from bench import scale_out

pytestmark = pytest.mark.slow


def test_two_app_servers_share_the_database_and_the_rate_limits():
    report = scale_out.run(capacity=10, requests=60, threads=12, workers=2, app_threads=2)
    assert report["passed"], json.dumps({"checks": report["checks"], "booking": report["booking"],
                                         "rate_limit": report["rate_limit"]}, indent=1)
    assert report["booking"]["seats_in_db"] == 10
