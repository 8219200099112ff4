"""Fault: the rate limits' Redis stopped, then frozen, during logins and bookings.

    .venv/bin/python -m bench.faults.redis_away [--guesses 30 --bookings 40 --workers 2]

Against a PostgreSQL server of its own and a redis-server of its own (a free loopback
port, its files in a temporary folder: the machine's Redis at 6379 is never touched),
with gunicorn (the production booking/gunicorn_conf.py, REDIS_URL pointing at that Redis)
serving the app. In each phase, wrong-password token requests for one account
(POST /api/v1/tokens, one after another) run while API bookings are made from several
threads:

- up: Redis running;
- stopped: Redis terminated (connections refused);
- frozen: Redis started again, the app servers given RATELIMIT_REDIS_RETRY_SECONDS to go
  back to it, then SIGSTOP (connections accepted, never answered); SIGCONT after;
- back: Redis answering again.

(bench/redis_away.py measures the same states in one process, with timings; this drill
checks the outcome on the real stack.)

Passes when: no answer was a 5xx (or a dropped connection) in any phase; every booking
was answered 201 and is in the database (rows = 201 = bookings); guessing stayed limited
in every phase: 429s appeared, and the wrong passwords that were checked (401) stayed
within the per-account limit (5 a minute) times the app processes that count on their own
while Redis is away (booking/throttles.py: the limits fall back per process).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench import scenario as scenario_mod
from bench.faults.common import background, print_fault_report, query
from bench.faults.pg_restart import _log_findings
from bench.load import book_all, summary
from bench.redis_away import _start_redis
from bench.stack import (
    AppServer,
    OwnPostgres,
    app_environment,
    free_port,
    http,
    machine,
    write_results,
)

GUESSES_PER_ACCOUNT = 5  # booking.throttles.GUESSES_PER_ACCOUNT, "5 per minute"
PHASES = ("up", "stopped", "frozen", "back")


def run(*, guesses: int = 30, bookings: int = 40, threads: int = 4, workers: int = 2,
        app_threads: int = 4, retry_seconds: float = 2.0, log: Path | None = None) -> dict:
    report: dict = {"check": "redis_away", "machine": machine(), "settings": {
        "guesses_per_phase": guesses, "bookings_per_phase": bookings, "threads": threads,
        "workers": workers, "redis_retry_s": retry_seconds,
        "redis_timeout_ms": 50, "guesses_per_account_per_minute": GUESSES_PER_ACCOUNT}}
    with tempfile.TemporaryDirectory(prefix="fault-redis-") as tmp, OwnPostgres() as pg:
        redis_port = free_port()
        redis_dir = Path(tmp) / "redis"
        redis_dir.mkdir()
        redis = _start_redis(redis_port, str(redis_dir))
        frozen = False
        try:
            database_url = pg.create_database("booking")
            app = scenario_mod.app_for(database_url)
            scenario_mod.create_schema(app)
            sc = scenario_mod.prepare(app, units=2, capacity=10_000, days=2, hot_capacity=1,
                                      feed_bookings=0)
            _dispose(app)
            env = app_environment(database_url, RATELIMIT_ENABLED="true",
                                  REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
                                  RATELIMIT_REDIS_TIMEOUT_MS="50",
                                  RATELIMIT_REDIS_RETRY_SECONDS=str(retry_seconds),
                                  MAIL_DIR=str(Path(tmp) / "mail"), BOOKING_INSTANCE_DIR=tmp,
                                  LOG_REQUESTS="false")
            log_path = log or Path(tmp) / "gunicorn.log"
            phases: dict[str, dict] = {}
            all_outcomes = []
            with AppServer(env, workers=workers, threads=app_threads, name="redis-fault",
                           log_path=log_path) as server:

                def phase(name: str) -> None:
                    bodies = [{"unit_id": sc.unit_ids[i % 2], "date": sc.dates[(i // 2) % 2],
                               "seats": 1} for i in range(bookings)]
                    with background(lambda: book_all([server.url], sc.token, bodies,
                                                      threads=threads)) as load:
                        answers, took = _guess(server.url, sc.booker_email, guesses)
                    all_outcomes.extend(load["result"])
                    phases[name] = {"guesses": dict(sorted(answers.items())),
                                    "guess_p50_ms": round(statistics.median(took), 1),
                                    "guess_max_ms": round(max(took), 1),
                                    "bookings": summary(load["result"])}

                phase("up")
                redis.terminate()
                redis.wait(timeout=10)
                phase("stopped")
                redis = _start_redis(redis_port, str(redis_dir))
                time.sleep(retry_seconds + 0.5)  # the app processes ask Redis again
                for _ in range(workers * 4):  # reach every process: counting in Redis again
                    http("GET", server.url + "/healthz")
                    _guess(server.url, "warm-up@bench.example.jp", 1)
                os.kill(redis.pid, signal.SIGSTOP)
                frozen = True
                phase("frozen")
                os.kill(redis.pid, signal.SIGCONT)
                frozen = False
                time.sleep(retry_seconds + 0.5)
                phase("back")
            errors, warnings = _log_findings(log_path)
            rows = {r[0] for r in query(database_url, "SELECT reference FROM bookings WHERE "
                                        "user_id = (SELECT id FROM users WHERE email = %s)",
                                        sc.booker_email)}
        finally:
            if frozen:
                os.kill(redis.pid, signal.SIGCONT)
            redis.terminate()
            try:
                redis.wait(timeout=10)
            except subprocess.TimeoutExpired:
                redis.kill()

    created = {o.reference for o in all_outcomes if o.status == 201 and o.reference}
    bad = Counter(str(a.status) for o in all_outcomes for a in o.attempts
                  if a.status == 0 or a.status >= 500)
    for name, p in phases.items():
        for status, n in p["guesses"].items():
            if status == "0" or int(status) >= 500:
                bad[f"guess {name} {status}"] += n
    allowed_when_away = GUESSES_PER_ACCOUNT * workers
    report.update({
        "phases": phases, "bookings_total": len(all_outcomes), "answered_201": len(created),
        "rows_in_db": len(rows), "answers_5xx_or_dropped": dict(bad),
        "guesses_checked_bound": {"redis_up": GUESSES_PER_ACCOUNT, "redis_away": allowed_when_away},
        "log_warnings": warnings, "log_errors": errors[:5],
    })
    checks = {
        "no_5xx_no_dropped_connection": not bad,
        "every_booking_201": all(o.status == 201 for o in all_outcomes)
        and len(all_outcomes) == bookings * len(PHASES),
        "every_201_stored": len(created) == len(rows) == len(all_outcomes) and created == rows,
        "guesses_refused_429_in_every_phase": all(p["guesses"].get("429", 0) > 0
                                                   for p in phases.values()),
        "guesses_checked_within_limit": phases["up"]["guesses"].get("401", 0) <= GUESSES_PER_ACCOUNT
        and all(phases[n]["guesses"].get("401", 0) <= allowed_when_away
                for n in ("stopped", "frozen", "back")),
    }
    report["checks"] = checks
    report["passed"] = all(checks.values())
    return report


def _guess(url: str, email: str, n: int) -> tuple[Counter, list[float]]:
    """n wrong-password token requests for one account; their answers and times (ms)."""
    answers: Counter = Counter()
    took: list[float] = []
    for _ in range(n):
        began = time.perf_counter()
        try:
            status = http("POST", url + "/api/v1/tokens",
                          {"email": email, "password": "wrong-guess"}, timeout=30)[0]
        except OSError:
            status = 0
        took.append((time.perf_counter() - began) * 1000)
        answers[str(status)] += 1
    return answers, took


def _dispose(app) -> None:
    from booking.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def show(report: dict) -> None:
    rows = []
    for name, p in report["phases"].items():
        rows.append({"what": f"{name}: wrong-password tokens", "value": p["guesses"],
                     "detail": f"p50 {p['guess_p50_ms']} ms, max {p['guess_max_ms']} ms"})
        rows.append({"what": f"{name}: bookings", "value": p["bookings"]["final"]})
    rows += [
        {"what": "bookings answered 201 / rows", "value": f"{report['answered_201']} / "
                                                          f"{report['rows_in_db']}",
         "detail": f"of {report['bookings_total']}"},
        {"what": "5xx or dropped", "value": report["answers_5xx_or_dropped"] or 0},
        {"what": "401s allowed (up / away)", "value": report["guesses_checked_bound"]},
    ]
    print_fault_report("Fault: Redis stopped, then frozen, during logins and bookings", rows, report)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Redis stopped, then frozen.")
    parser.add_argument("--guesses", type=int, default=30, help="wrong passwords per phase")
    parser.add_argument("--bookings", type=int, default=40, help="bookings per phase")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--log", type=Path, help="keep gunicorn's log in this file")
    args = parser.parse_args(argv)
    report = run(guesses=args.guesses, bookings=args.bookings, workers=args.workers, log=args.log)
    show(report)
    print(f"\nJSON: {write_results('fault-redis-away', report)}")
    if not report["passed"]:
        raise SystemExit(1)
    return report


if __name__ == "__main__":
    main()
