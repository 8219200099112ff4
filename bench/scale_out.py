"""Scale-out proof: two app servers at once, one PostgreSQL, one Redis.

    .venv/bin/python -m bench.scale_out [--capacity 50 --requests 400 --threads 24]

Starts two gunicorn servers (the production booking/gunicorn_conf.py) on two loopback ports against
one database of its own on the machine's PostgreSQL and the machine's Redis (key prefix of
its own), then:

1. races bookings of one unit's last seats through both servers at once: exactly the
   capacity must be booked (answers 201 and rows in the table), every other request a 409,
   no 5xx; before the race each server sells one seat in turn, so both must have sold;
2. tries to get an API token for one e-mail address, alternating between the servers: the
   per-address limit (5 per minute) must hold across both, i.e. the limit lives in Redis,
   not in each process (with per-process memory, 2 servers x 2 workers would let ~4x in).

Prints a table and writes JSON into bench/results/. tests/test_scale_out.py runs it small.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

from bench import scenario as scenario_mod
from bench.load import book_all, summary
from bench.stack import (
    AppServer,
    RedisNamespace,
    app_environment,
    http,
    machine,
    print_table,
    shared_database,
    write_results,
)

TOKEN_LIMIT_PER_EMAIL = 5  # POST /api/v1/tokens: "5 per minute" per e-mail address


def run(*, capacity: int = 50, requests: int = 400, threads: int = 24, workers: int = 2,
        app_threads: int = 4, token_attempts: int = 16) -> dict:
    report: dict = {"machine": machine(), "settings": {
        "capacity": capacity, "requests": requests, "threads": threads, "workers": workers,
        "app_threads": app_threads}}
    with tempfile.TemporaryDirectory(prefix="scale-out-") as tmp, \
            shared_database("scaleout") as database_url, RedisNamespace() as redis_ns:
        app = scenario_mod.app_for(database_url)
        scenario_mod.create_schema(app)
        sc = scenario_mod.prepare(app, units=1, capacity=10, days=1, hot_capacity=capacity,
                                  feed_bookings=0)
        env = app_environment(database_url, REDIS_URL=redis_ns.url,
                              RATELIMIT_KEY_PREFIX=redis_ns.prefix, RATELIMIT_ENABLED="true",
                              MAIL_DIR=str(Path(tmp) / "mail"), BOOKING_INSTANCE_DIR=tmp,
                              LOG_REQUESTS="false")
        servers = [AppServer(env, workers=workers, threads=app_threads, name=name,
                             log_path=Path(tmp) / f"{name}.log") for name in ("a", "b")]
        try:
            for server in servers:
                server.start()
            urls = [s.url for s in servers]
            body = {"unit_id": sc.hot_unit_id, "date": sc.hot_date, "seats": 1}
            # One seat through each server in turn first: whether a server wins a seat in
            # the race is timing (one server once sold all ten while the other's workers
            # were still warming up), but each must be able to sell from the shared stock.
            outcomes = [o for url in urls for o in book_all([url], sc.token, [body], threads=1)]
            outcomes += book_all(urls, sc.token, [body] * (requests - len(urls)),
                                 threads=threads)
            per_server = {url: Counter(str(o.status) for o in outcomes if o.server == url)
                          for url in urls}
            limits = _token_attempts(urls, sc.booker_email, token_attempts)
            redis_keys = len(redis_ns.keys())
        finally:
            for server in servers:
                server.stop()
        held = scenario_mod.booked_seats(app, sc.hot_unit_id, sc.hot_date)
        references = {o.reference for o in outcomes if o.reference}
        _dispose(app)

    booking = summary(outcomes)
    allowed = sum(1 for status in limits if status != 429)
    report.update({
        "booking": {**booking, "capacity": capacity, "seats_in_db": held["seats"],
                    "bookings_in_db": held["bookings"], "distinct_references": len(references),
                    "per_server": {u: dict(c) for u, c in per_server.items()}},
        "rate_limit": {"attempts": len(limits), "statuses": limits, "allowed": allowed,
                       "limit": TOKEN_LIMIT_PER_EMAIL, "redis_keys_during_run": redis_keys},
    })
    checks = {
        "exactly_capacity_booked": booking["created"] == capacity == held["seats"]
        == len(references),
        "others_refused_409": booking["final"].get("409", 0) == requests - capacity,
        "no_5xx": not any(s.startswith("5") or s == "0" for s in booking["attempts"]),
        "both_servers_sold": all(c.get("201", 0) > 0 for c in per_server.values()),
        "rate_limit_shared": allowed == TOKEN_LIMIT_PER_EMAIL and redis_keys > 0,
    }
    report["checks"] = checks
    report["passed"] = all(checks.values())
    return report


def _token_attempts(urls: list[str], email: str, attempts: int) -> list[int]:
    """Wrong passwords for one address, alternating servers: statuses in order."""
    statuses = []
    for i in range(attempts):
        status, _h, _b = http("POST", urls[i % len(urls)] + "/api/v1/tokens",
                              {"email": email, "password": "wrong-password-0"})
        statuses.append(status)
    return statuses


def _dispose(app) -> None:
    from booking.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def show(report: dict) -> None:
    b, r = report["booking"], report["rate_limit"]
    rows = [{"what": "booking race", "sent": b["requests"], "answers": b["final"],
             "result": f"{b['created']} created, {b['seats_in_db']} seats in db, capacity {b['capacity']}"}]
    for url, counts in b["per_server"].items():
        rows.append({"what": f"  via {url}", "sent": sum(counts.values()), "answers": counts})
    rows.append({"what": "token rate limit", "sent": r["attempts"],
                 "answers": dict(Counter(str(s) for s in r["statuses"])),
                 "result": f"{r['allowed']} allowed, limit {r['limit']} per address"})
    print_table("Scale-out: two app servers, one PostgreSQL, one Redis", rows,
                [("what", "check"), ("sent", "requests"), ("answers", "answers"), ("result", "result")])
    for name, ok in report["checks"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Two app servers, one database, one Redis.")
    parser.add_argument("--capacity", type=int, default=50)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--threads", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--app-threads", type=int, default=4)
    args = parser.parse_args(argv)
    report = run(capacity=args.capacity, requests=args.requests, threads=args.threads,
                 workers=args.workers, app_threads=args.app_threads)
    show(report)
    print(f"\nJSON: {write_results('scale-out', report)}")
    if not report["passed"]:
        raise SystemExit(1)
    return report


if __name__ == "__main__":
    main()
