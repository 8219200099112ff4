"""Bookings per second of the booking service on PostgreSQL: distinct units and one hot unit.

Measures `reservations.book()` itself — the lock on the unit, the availability check, the
insert, the audit row and the outbox mail (confirmation + reminder, with its iCalendar
part) in one transaction — from several worker processes at once, each with its own
connection. No HTTP: bench/run_all.py measures the same through gunicorn.

- `distinct`: every booking takes one seat of a random unit (of --units) on a random day:
  bookings of different units do not wait for each other.
- `hot`: every booking takes one seat of the same unit on the same day: all of them queue
  for that unit's row lock, one after another (the core-day rush).
- `floor`: not a booking: a transaction that locks a unit row, updates it and commits —
  the least any booking does. The machine is shared and noisy: read the bookings per
  second against this floor (`x floor` in the table), not as absolute figures; `cpu ms`
  is the workers' own CPU time per booking, which the machine's load inflates much less;
  `sql` the statements sent per booking (the floor's: 2).

Creates its own database on the machine's PostgreSQL (BENCH_POSTGRES_URL or
TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres), drops it at the
end, prints a table and writes JSON into bench/results/.

    .venv/bin/python -m bench.booking_throughput                     # 4 workers, 10 s each
    .venv/bin/python -m bench.booking_throughput --workers 8 --seconds 20 --units 500
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from bench.stack import percentile
from booking import clock

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _db_url(name: str) -> str:
    return f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def _app(url: str):
    from bench.stack import NO_COMPANY_LIMITS
    from booking import create_app

    return create_app({
        "SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "RATELIMIT_ENABLED": False,
        "PUBLIC_URL": "https://booking.example.jp",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 2, "max_overflow": 0},
        **NO_COMPANY_LIMITS,
    })


def _first_day() -> date:
    return clock.today() + timedelta(days=7)


def setup(url: str, units: int) -> dict:
    """Schema and data: an operator's space open every day, `units` desk pools and a hot
    one, a company with a user."""
    from booking.extensions import db
    from booking.models import (
        Membership,
        OpeningHours,
        Organisation,
        OrgKind,
        PricePer,
        Role,
        Space,
        SpaceKind,
        Unit,
        UnitKind,
    )
    from booking.services import accounts

    app = _app(url)
    with app.app_context():
        db.create_all()
        s = db.session
        operator = Organisation(kind=OrgKind.OPERATOR, name="ベンチ運営", prefecture_code=13,
                                approved_at=clock.now())
        company = Organisation(kind=OrgKind.COMPANY, name="ベンチ商事", prefecture_code=13,
                               approved_at=clock.now())
        s.add_all([operator, company])
        s.flush()
        space = Space(organisation_id=operator.id, slug="bench", kind=SpaceKind.COWORKING,
                      name="ベンチ施設", prefecture_code=13, city="千代田区",
                      address="千代田区丸の内1-1", lat=35.68, lon=139.76,
                      closed_on_holidays=False)
        s.add(space)
        s.flush()
        s.add_all(OpeningHours(space_id=space.id, weekday=d, opens_min=0, closes_min=1440)
                  for d in range(7))
        pool = [Unit(space_id=space.id, kind=UnitKind.DESK, name=f"デスク{i}",
                     capacity=100_000, price_amount=1000, price_per=PricePer.DAY)
                for i in range(units + 1)]
        s.add_all(pool)
        user = accounts.create_user(s, email="bench@example.jp", password="bench-password-1",
                                    name="ベンチ", verified=True)
        s.flush()
        s.add(Membership(user_id=user.id, organisation_id=company.id, role=Role.OWNER))
        s.commit()
        ids = {"user": user.id, "hot": pool[0].id, "units": [u.id for u in pool[1:]]}
        db.session.remove()  # its connection back before the pool goes (else it stays open)
        db.engine.dispose()
    return ids


def _worker(url: str, ids: dict, mode: str, seconds: float, barrier, seed: int,
            out: mp.Queue) -> None:
    import sqlalchemy as sa

    from booking.extensions import db
    from booking.models import Unit, User
    from booking.services import reservations
    from booking.services.errors import DomainError

    rng = random.Random(seed)
    app = _app(url)
    first = _first_day()
    counts = {"booked": 0, "not_enough_seats": 0, "busy": 0, "other": 0}
    latencies: list[float] = []
    with app.app_context():
        units = {u.id: u for u in db.session.query(Unit).all()}
        user = db.session.get(User, ids["user"])
        reservations.book(db.session, units[ids["hot"]], user,  # warm up (VTIMEZONE cache)
                          [reservations.day_period(units[ids["hot"]], first + timedelta(200))], 1)
        db.session.commit()  # this loop is the request's edge: book() flushes, the edge commits
        statements = [0]  # SQL statements sent during the run (refusals included)
        sa.event.listen(db.engine, "before_cursor_execute",
                        lambda *_a: statements.__setitem__(0, statements[0] + 1))
        barrier.wait(timeout=300)  # every worker ready: start together
        deadline = time.time() + seconds
        cpu0 = time.process_time()
        while time.time() < deadline:
            if mode == "floor":
                # The machine's floor: one row lock and one update per transaction, nothing
                # else (what any booking must at least do), on random units.
                t0 = time.perf_counter()
                unit_id = rng.choice(ids["units"])
                db.session.execute(sa.select(Unit.id).where(Unit.id == unit_id).with_for_update())
                db.session.execute(sa.update(Unit).where(Unit.id == unit_id)
                                   .values(lock_version=Unit.lock_version + 1))
                db.session.commit()
                counts["booked"] += 1
                latencies.append((time.perf_counter() - t0) * 1000)
                continue
            if mode == "hot":
                unit, day = units[ids["hot"]], first
            else:
                unit = units[rng.choice(ids["units"])]
                day = first + timedelta(days=rng.randrange(60))
            t0 = time.perf_counter()
            try:
                reservations.book(db.session, unit, user, [reservations.day_period(unit, day)], 1)
                db.session.commit()
                counts["booked"] += 1
                latencies.append((time.perf_counter() - t0) * 1000)
            except DomainError as error:
                counts[error.code if error.code in counts else "other"] += 1
            except Exception:  # counted, the run goes on
                counts["other"] += 1
                db.session.rollback()
        cpu = time.process_time() - cpu0
        db.session.remove()
        db.engine.dispose()
    out.put({"counts": counts, "latencies": latencies, "cpu": cpu,
             "statements": statements[0]})


def run_mode(url: str, ids: dict, mode: str, workers: int, seconds: float) -> dict:
    ctx = mp.get_context("spawn")  # a fresh interpreter per worker: no shared connections
    out = ctx.Queue()
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_worker, args=(url, ids, mode, seconds, barrier, i, out))
             for i in range(workers)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 400) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    counts = {k: sum(r["counts"][k] for r in results) for k in results[0]["counts"]}
    latencies = [x for r in results for x in r["latencies"]]
    return {
        "mode": mode, "workers": workers, "seconds": seconds,
        "bookings": counts["booked"],
        "bookings_per_second": round(counts["booked"] / seconds, 1),
        # This process's CPU per booking (the app's own cost, whatever else runs here).
        "cpu_ms_per_booking": round(1000 * sum(r["cpu"] for r in results)
                                    / max(counts["booked"], 1), 1),
        "statements_per_booking": round(sum(r["statements"] for r in results)
                                        / max(counts["booked"], 1), 1),
        "refused": {k: v for k, v in counts.items() if k != "booked"},
        "latency_ms": {"p50": percentile(latencies, 0.5, 1), "p95": percentile(latencies, 0.95, 1),
                       "max": round(max(latencies), 1) if latencies else None,
                       "mean": round(statistics.fmean(latencies), 1) if latencies else None},
    }


def verify(url: str, ids: dict, runs: list[dict]) -> dict:
    """After the runs: the hot unit's day holds exactly the bookings answered as made."""
    first = datetime.combine(_first_day(), datetime.min.time(), UTC)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT count(*), coalesce(sum(seats), 0) FROM bookings WHERE unit_id = %s "
            "AND status = 'confirmed' AND starts_at < %s",  # not the warm-up day
            (ids["hot"], first + timedelta(days=100))).fetchone()
        outbox = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    hot = sum(r["bookings"] for r in runs if r["mode"] == "hot")
    return {"hot_unit_bookings": rows[0], "hot_unit_seats": rows[1],
            "hot_bookings_answered": hot, "ok": rows[0] == rows[1] == hot,
            "outbox_rows": outbox}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--modes", default="floor,distinct,hot")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    name = f"booking_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _db_url(name).replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        ids = setup(url, args.units)
        runs = [run_mode(url, ids, mode, args.workers, args.seconds)
                for mode in args.modes.split(",") if mode]
        check = verify(url, ids, runs)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))
    result = {
        "benchmark": "booking_throughput",
        "at": clock.now().isoformat(timespec="seconds"),
        "command": "python -m bench.booking_throughput " + " ".join(argv or []),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "units": args.units, "runs": runs, "check": check,
    }
    floor = next((r["bookings_per_second"] for r in runs if r["mode"] == "floor"), None)
    for run in runs:
        run["x_floor"] = round(run["bookings_per_second"] / floor, 3) if floor else None
    print(f"{'mode':10} {'workers':>7} {'bookings':>9} {'per s':>8} {'x floor':>8} "
          f"{'cpu ms':>7} {'sql':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  refused")
    for run in runs:
        lat = run["latency_ms"]
        print(f"{run['mode']:10} {run['workers']:>7} {run['bookings']:>9} "
              f"{run['bookings_per_second']:>8} {run['x_floor']!s:>8} "
              f"{run['cpu_ms_per_booking']:>7} {run['statements_per_booking']:>5} "
              f"{lat['p50']!s:>8} "
              f"{lat['p95']!s:>8} {lat['max']!s:>8}  {run['refused']}")
    print(f"check: {check}")
    output = args.output or RESULTS_DIR / (
        "booking_throughput-" + clock.now().strftime("%Y%m%dT%H%M%SZ") + ".json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"written: {output}")
    return result


if __name__ == "__main__":
    main()
