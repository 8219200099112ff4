"""Fault: PostgreSQL restarted during a booking load.

    .venv/bin/python -m bench.faults.pg_restart [--requests 600 --outage 4 --mode fast --log FILE]

Against a PostgreSQL server of its own (initdb in a temporary folder, its own port: the
machine's server is never touched), with gunicorn (the production booking/gunicorn_conf.py)
serving the app. Clients book seats through the API from several threads; when a quarter
of them have been answered, the database is stopped (`pg_ctl stop -m fast`, or
`immediate`: a crash), kept down for --outage seconds, and started again. The clients act
as API clients should: a 503 (or a refused connection) is retried with the same
Idempotency-Key.

The load is concentrated so that a lost lock would oversell: --unit-days unit-days (2
units × days), each asked for more seats than it has (capacity: nine tenths of the
requests, shared out), so every unit-day must sell out exactly and the rest be refused
as full (409 not_enough_seats), across the restart.

Passes when: requests during the outage were answered 503 application/problem+json (and
/readyz 503 too), never 500, never a dropped connection; the app recovered by itself
(bookings answered 201 after the restart, same gunicorn process, /readyz 200); every
booking answered 201 is in the database, and the database holds no booking that was not
answered 201; every request ends answered 201 or refused as full (201 + full =
requests, rows = 201); every unit-day holds exactly its capacity, none more; the stored
`unit_loads` equal a recount from the bookings after the fault; gunicorn's log holds no
error line (nothing escaped the app's handlers).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import threading
import time
from pathlib import Path

from bench import scenario as scenario_mod
from bench.faults.common import (
    background,
    loads_against_recount,
    print_fault_report,
    query,
    seats_held,
    seats_over_capacity,
    wait_until,
)
from bench.load import book_all, summary
from bench.stack import (
    AppServer,
    OwnPostgres,
    app_environment,
    http,
    machine,
    write_results,
)


def run(*, requests: int = 600, threads: int = 8, outage: float = 4.0, mode: str = "fast",
        workers: int = 2, app_threads: int = 4, unit_days: int = 4,
        log: Path | None = None) -> dict:
    """`log`: where gunicorn's log (the app's JSON lines, tracebacks) is kept; a temporary
    file otherwise. `unit_days`: even, at least 2 (2 units × unit_days / 2 days)."""
    units, days = 2, max(unit_days // 2, 1)
    unit_days = units * days
    # Each unit-day is asked for requests / unit_days seats (1 each) and has a tenth fewer.
    capacity = max(1, (requests * 9 // 10) // unit_days)
    if math.ceil(requests / unit_days) <= capacity or requests // unit_days <= capacity:
        raise ValueError("too few requests to oversell: raise --requests or lower --unit-days")
    report: dict = {"check": "pg_restart", "machine": machine(), "settings": {
        "requests": requests, "threads": threads, "outage_s": outage, "mode": mode,
        "unit_days": unit_days, "capacity_per_unit_day": capacity}}
    with tempfile.TemporaryDirectory(prefix="fault-pg-") as tmp, OwnPostgres() as pg:
        database_url = pg.create_database("booking")
        app = scenario_mod.app_for(database_url)
        scenario_mod.create_schema(app)
        sc = scenario_mod.prepare(app, units=units, capacity=capacity, days=days,
                                  hot_capacity=1, feed_bookings=0)
        _dispose(app)
        env = app_environment(database_url, RATELIMIT_ENABLED="false",
                              MAIL_DIR=str(Path(tmp) / "mail"), BOOKING_INSTANCE_DIR=tmp,
                              LOG_REQUESTS="false")
        bodies = [{"unit_id": sc.unit_ids[i % len(sc.unit_ids)],
                   "date": sc.dates[(i // len(sc.unit_ids)) % len(sc.dates)], "seats": 1}
                  for i in range(requests)]
        answered = 0
        lock = threading.Lock()
        window: dict[str, float] = {}

        def counted(attempt) -> None:
            nonlocal answered
            if attempt.status == 409:  # why: the body is dropped after the request
                try:
                    attempt.code = json.loads(attempt.raw).get("code")
                except (AttributeError, ValueError):
                    attempt.code = None
            with lock:
                answered += 1

        log_path = log or Path(tmp) / "gunicorn.log"
        with AppServer(env, workers=workers, threads=app_threads, name="pg-fault",
                       log_path=log_path) as server:
            master_pid = server.process.pid
            with background(lambda: book_all([server.url], sc.token, bodies, threads=threads,
                                             retry_seconds=outage + 60, on_answer=counted)) as load:
                wait_until(lambda: answered >= requests // 4, timeout=120)
                window["down"] = time.monotonic()
                pg.stop(mode)
                time.sleep(outage / 2)
                ready_during = http("GET", server.url + "/readyz")
                time.sleep(outage / 2)
                pg.start()
                window["up"] = time.monotonic()
            outcomes = load["result"]
            ready_after = http("GET", server.url + "/readyz")
            same_process = server.process is not None and server.process.pid == master_pid \
                and server.process.poll() is None
        errors, warnings = _log_findings(log_path)
        rows = {r[0] for r in query(database_url, "SELECT reference FROM bookings WHERE user_id = "
                                                  "(SELECT id FROM users WHERE email = %s)",
                                    sc.booker_email)}
        held = seats_held(database_url, sc.unit_ids)
        oversold = seats_over_capacity(database_url)
        loads = loads_against_recount(database_url)

    created = {o.reference for o in outcomes if o.status == 201 and o.reference}
    refused_full = sum(1 for o in outcomes if o.status == 409
                       and getattr(o.attempts[-1], "code", None) == "not_enough_seats")
    attempts = [a for o in outcomes for a in o.attempts]
    during = [a for a in attempts if window["down"] <= a.at <= window["up"]]
    after = [a for a in attempts if a.at > window["up"] and a.status == 201]
    statuses_503 = [a for a in attempts if a.status == 503]
    report.update({
        "load": summary(outcomes),
        "outage": {"seconds": round(window["up"] - window["down"], 2),
                   "answers_during": _count(during),
                   "readyz_during": ready_during[0], "readyz_after": ready_after[0]},
        "answered_201": len(created), "refused_full": refused_full, "rows_in_db": len(rows),
        "capacity_total": capacity * unit_days, "seats_held": held, "oversold": oversold[:20],
        "unit_loads": loads,
        "missing_from_db": sorted(created - rows)[:20],
        "in_db_not_answered_201": sorted(rows - created)[:20],
        "log_warnings": warnings, "log_errors": errors[:5],
    })
    checks = {
        "outage_answered_503": any(a.status == 503 for a in during),
        "every_503_is_problem_json": all(a.content_type.startswith("application/problem+json")
                                         for a in statuses_503),
        "no_500_no_dropped_connection": not any(a.status == 0 or (a.status >= 500 and a.status != 503)
                                                for a in attempts),
        "readyz_503_during_200_after": ready_during[0] == 503 and ready_after[0] == 200,
        "recovered_without_restart": bool(after) and same_process,
        "every_201_in_db": not (created - rows),
        "nothing_in_db_unanswered": not (rows - created),
        "every_request_201_or_full": len(created) + refused_full == requests
        and sum(1 for o in outcomes if o.status == 201) == len(created),
        "rows_equal_201": len(rows) == len(created),
        "some_refused_full": refused_full > 0,
        "none_oversold": not oversold,
        "every_unit_day_sold_out": len(held) == unit_days
        and all(n == capacity for n in held.values()),
        "unit_loads_equal_recount": loads["equal"],
        "no_error_logged": not errors,
    }
    report["checks"] = checks
    report["passed"] = all(checks.values())
    return report


def _count(attempts) -> dict:
    out: dict[str, int] = {}
    for a in attempts:
        out[str(a.status)] = out.get(str(a.status), 0) + 1
    return dict(sorted(out.items()))


def _log_findings(path: Path) -> tuple[list[str], dict[str, int]]:
    """gunicorn's log: the error lines (message and the exception's last line: a traceback
    there is what escaped the app's error handlers), and the warnings counted by message."""
    errors: list[str] = []
    warnings: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if "Traceback" in line or "Error" in line:
                errors.append(line)
            continue
        if entry.get("level") in ("error", "critical"):
            exc = entry.get("exc", "").strip().splitlines()
            errors.append(f"{entry.get('msg')}: {exc[-1] if exc else ''}")
        elif entry.get("level") == "warning":
            warnings[entry.get("msg", "")] = warnings.get(entry.get("msg", ""), 0) + 1
    return errors, warnings


def _dispose(app) -> None:
    from booking.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def show(report: dict) -> None:
    load, outage = report["load"], report["outage"]
    rows = [
        {"what": "booking requests", "value": load["requests"], "detail": f"final {load['final']}"},
        {"what": "all attempts", "value": sum(load["attempts"].values()), "detail": load["attempts"]},
        {"what": "database down (s)", "value": outage["seconds"],
         "detail": f"answers meanwhile {outage['answers_during']}"},
        {"what": "/readyz down / after", "value": f"{outage['readyz_during']} / {outage['readyz_after']}"},
        {"what": "answered 201", "value": report["answered_201"],
         "detail": f"capacity {report['capacity_total']} on {report['settings']['unit_days']} "
                   f"unit-days"},
        {"what": "refused as full (409)", "value": report["refused_full"]},
        {"what": "seats held per unit-day", "value": max(report["seats_held"].values(), default=0),
         "detail": f"capacity {report['settings']['capacity_per_unit_day']}, "
                   f"oversold {len(report['oversold'])}"},
        {"what": "unit_loads rows / recount", "value": report["unit_loads"]["stored_rows"],
         "detail": f"recount {report['unit_loads']['recount_rows']}, "
                   f"equal {report['unit_loads']['equal']}"},
        {"what": "rows in the database", "value": report["rows_in_db"]},
    ]
    print_fault_report("Fault: PostgreSQL restarted during a booking load", rows, report)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="PostgreSQL restarted during a booking load.")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--outage", type=float, default=4.0, help="seconds the database is down")
    parser.add_argument("--mode", choices=("fast", "immediate"), default="fast",
                        help="pg_ctl stop mode (immediate: like a crash)")
    parser.add_argument("--unit-days", type=int, default=4,
                        help="unit-days the requests share (2 units; more seats asked than held)")
    parser.add_argument("--log", type=Path, help="keep gunicorn's log (app JSON lines) in this file")
    args = parser.parse_args(argv)
    report = run(requests=args.requests, threads=args.threads, outage=args.outage, mode=args.mode,
                 unit_days=args.unit_days, log=args.log)
    show(report)
    print(f"\nJSON: {write_results('fault-pg-restart', report)}")
    if not report["passed"]:
        raise SystemExit(1)
    return report


if __name__ == "__main__":
    main()
