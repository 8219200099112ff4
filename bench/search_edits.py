"""Search server time under a stream of operator edits (issue 22).

One PostgreSQL database filled by bench/generate.py (`--spaces`, `--bookings`). The search
mix (generate.search_mix) runs through the application in process (GET /api/v1/spaces in
the Flask test client, as bench/search_server_time.py does), each slice of it twice: once
quiet and once while an editor process — another application process on the same
database, as an operator's request would be — commits `--edits-per-minute` edits (default
60) to random spaces all over the country: a unit's price or seats, a day's opening hours,
a closure added or lifted, a space renamed, through the ORM and its hooks like the
console. Which of the two runs first alternates slice by slice, and the CPU check
(search_server_time.cpu_check_ms) is taken before each, so that the machine's drift
weighs on both alike.

Per search it records the server time and what the search did to follow the change log
(catalogue.counts: a refresh of some spaces, or a full reload). Prints a table and writes
JSON to bench/results/; the database is dropped at the end.

    .venv/bin/python -m bench.search_edits                        # 10k spaces, 100k bookings
    .venv/bin/python -m bench.search_edits --bookings 1000000

Target (issue 22): with 60 edits a minute, search p95 within 1.3x of the same run without
edits, and no search waiting for a full reload (full_reloads_in_searches = 0).
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import os
import platform
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from bench import generate
from bench.search_server_time import RESULTS_DIR, cpu_check_ms, show_and_write
from bench.stack import percentile
from booking import clock


def _app(url: str):
    from booking import create_app

    return create_app({
        "SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://"),
        "RATELIMIT_ENABLED": False, "SECRET_KEY": "bench", "SERVER_NAME": "localhost"})


def _edit(session, rng: random.Random, space_ids: list[int]) -> str:
    """One operator's edit of a random space, committed through the Session."""
    import sqlalchemy as sa

    from booking.models import Closure, OpeningHours, Space, Unit

    space = session.get(Space, rng.choice(space_ids))
    units = session.scalars(sa.select(Unit).where(Unit.space_id == space.id)).all()
    what = rng.choice(("price", "seats", "hours", "closure", "name"))
    if what == "price" and units:
        unit = rng.choice(units)
        unit.price_amount = max(0, unit.price_amount + rng.choice((-100, 100)))
    elif what == "seats" and units:
        unit = rng.choice(units)
        unit.capacity = max(1, unit.capacity + rng.choice((-1, 1)))
    elif what == "hours":
        hours = session.scalars(sa.select(OpeningHours)
                                .where(OpeningHours.space_id == space.id)).all()
        if hours:
            h = rng.choice(hours)
            h.closes_min = min(1440, max(h.opens_min + 60, h.closes_min + rng.choice((-30, 30))))
    elif what == "closure" and units:
        unit = rng.choice(units)
        existing = session.scalars(sa.select(Closure).where(Closure.unit_id == unit.id)).first()
        if existing is not None:
            session.delete(existing)
        else:
            day = generate.NOW.date() + timedelta(days=rng.randrange(30, 300))
            session.add(Closure(unit_id=unit.id, start_date=day, end_date=day,
                                reason="bench"))
    else:
        what = "name"
        space.name = f"{space.name.split(' #')[0]} #{rng.randrange(1000)}"
    session.commit()
    return what


def _editor(url: str, per_minute: float, editing, stop, done, ready, seed: int) -> None:
    """The editor process: while `editing` is set, one edit every 60/per_minute seconds
    (on a schedule, not after the previous one); counts them in `done`."""
    import sqlalchemy as sa

    from booking.extensions import db
    from booking.models import Space

    logging.getLogger("booking.access").setLevel(logging.WARNING)
    rng = random.Random(seed)
    app = _app(url)
    with app.app_context():
        space_ids = list(db.session.scalars(sa.select(Space.id).where(Space.is_public)))
        db.session.rollback()
        ready.set()
        interval = 60.0 / per_minute
        due = time.monotonic()
        while not stop.is_set():
            if not editing.wait(0.1):
                due = time.monotonic()
                continue
            now = time.monotonic()
            if now < due:
                time.sleep(min(due - now, 0.1))
                continue
            try:
                _edit(db.session, rng, space_ids)
                with done.get_lock():
                    done.value += 1
            except Exception:  # a bench must keep going; count nothing
                db.session.rollback()
            due += interval
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


class _Searches:
    """Times searches of one application (ms) and what each did to follow the log."""

    def __init__(self, app) -> None:
        self.client = app.test_client()
        self.rows: dict[str, dict[str, list]] = {}

    def run(self, label: str, mix: list[dict[str, str]]) -> None:
        from booking.services import catalogue

        row = self.rows.setdefault(label, {"times": [], "refreshing": [], "full": 0,
                                           "statuses": {}})
        for params in mix:
            before = dict(catalogue.counts)
            t0 = time.perf_counter()
            response = self.client.get("/api/v1/spaces?" + urlencode(params))
            elapsed = (time.perf_counter() - t0) * 1000
            status = str(response.status_code)
            row["statuses"][status] = row["statuses"].get(status, 0) + 1
            response.close()
            if catalogue.counts["full"] != before["full"]:
                row["full"] += 1
            if response.status_code != 200:
                continue
            row["times"].append(elapsed)
            if catalogue.counts["refreshes"] != before["refreshes"]:
                row["refreshing"].append(elapsed)

    def summary(self, label: str) -> dict:
        row = self.rows[label]
        times, refreshing = row["times"], row["refreshing"]
        return {
            "searches": len(times), "statuses": row["statuses"],
            "p50_ms": round(statistics.median(times), 2) if times else None,
            "p95_ms": percentile(times, 0.95),
            "max_ms": round(max(times), 2) if times else None,
            "searches_that_refreshed": len(refreshing),
            "refreshing_p50_ms": round(statistics.median(refreshing), 2) if refreshing else None,
            "refreshing_max_ms": round(max(refreshing), 2) if refreshing else None,
            "full_reloads_in_searches": row["full"],
        }


def run(*, admin_url: str = generate.ADMIN_URL, spaces: int = 10_000, bookings: int = 100_000,
        searches: int = 1200, per_minute: float = 60.0, turns: int = 8, warmup: int = 30,
        seed: int = 1, out_dir: Path | None = RESULTS_DIR, quiet: bool = False) -> dict:
    """The whole benchmark; returns (and writes) the report."""
    from booking.extensions import db
    from booking.services import catalogue

    def say(*args) -> None:
        if not quiet:
            print(*args, flush=True)

    logging.getLogger("booking.access").setLevel(logging.WARNING)
    report: dict = {
        "benchmark": "search_edits", "started_at": clock.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "spaces": spaces, "bookings": bookings, "searches_per_mode": searches,
        "edits_per_minute": per_minute, "turns": turns,
    }
    url = generate.create_database(admin_url)
    ctx = multiprocessing.get_context("spawn")
    editing, stop, ready, done = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Value("i", 0)
    editor = None
    try:
        t0 = time.perf_counter()
        stats = generate.generate_spaces(url, spaces, seed=seed)
        added = generate.add_bookings(url, bookings, seed=seed + bookings)
        report["data"] = {**stats.__dict__, "bookings": added}
        say(f"{stats.spaces} spaces, {stats.units} units, {added} bookings "
            f"({time.perf_counter() - t0:.1f}s)")
        app = _app(url)
        searcher = _Searches(app)
        mix = generate.search_mix(searches, seed=seed + 6)
        for params in mix[:warmup]:  # the first search reads the whole catalogue
            searcher.client.get("/api/v1/spaces?" + urlencode(params)).close()
        editor = ctx.Process(target=_editor, args=(url, per_minute, editing, stop, done,
                                                   ready, seed + 7), daemon=True)
        editor.start()
        if not ready.wait(120):
            raise RuntimeError("the editor process did not start")
        full_before = catalogue.counts["full"]
        refreshes_before = catalogue.counts["refreshes"]
        refresh_s_before = catalogue.counts["refresh_seconds"]
        checks: list[dict] = []
        step = math.ceil(len(mix) / turns)
        edit_seconds = 0.0
        for turn, start in enumerate(range(0, len(mix), step)):
            part = mix[start:start + step]
            for mode in (("quiet", "edits") if turn % 2 == 0 else ("edits", "quiet")):
                checks.append({"turn": turn, "mode": mode, "cpu_check_ms": cpu_check_ms()})
                if mode == "edits":
                    t_edit = time.perf_counter()
                    editing.set()
                    time.sleep(1.0)  # the stream is flowing before the searches start
                searcher.run(mode, part)
                if mode == "edits":
                    edit_seconds += time.perf_counter() - t_edit
                    editing.clear()
        checks.append({"mode": "end", "cpu_check_ms": cpu_check_ms()})
        stop.set()
        editor.join(30)
        report["cpu_checks"] = checks
        report["edits_committed"] = done.value
        report["edit_seconds"] = round(edit_seconds, 1)
        report["edits_per_minute_measured"] = (round(done.value / edit_seconds * 60, 1)
                                               if edit_seconds else None)
        report["rows"] = [{"mode": m, **searcher.summary(m)} for m in ("quiet", "edits")]
        report["full_reloads_after_warmup"] = catalogue.counts["full"] - full_before
        report["catalogue_counts"] = dict(catalogue.counts)
        refreshes = catalogue.counts["refreshes"] - refreshes_before
        report["refresh_ms_mean"] = (round((catalogue.counts["refresh_seconds"] - refresh_s_before)
                                           / refreshes * 1000, 2) if refreshes else None)
        quiet_p95, edits_p95 = report["rows"][0]["p95_ms"], report["rows"][1]["p95_ms"]
        report["p95_ratio"] = round(edits_p95 / quiet_p95, 3) if quiet_p95 else None
        report["p50_ratio"] = (round(report["rows"][1]["p50_ms"] / report["rows"][0]["p50_ms"], 3)
                               if report["rows"][0]["p50_ms"] else None)
        report["load_average_1m"] = round(os.getloadavg()[0], 2)
        with app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
    finally:
        stop.set()
        if editor is not None and editor.is_alive():
            editor.terminate()
            editor.join(10)
        generate.drop_database(admin_url, url)
    return show_and_write(report, "search_edits", table, say, out_dir)


def table(report: dict) -> str:
    lines = [f"{report['spaces']:,} spaces, {report['bookings']:,} bookings; "
             f"{report['edits_committed']} edits committed in {report['edit_seconds']} s of "
             f"edit turns ({report['edits_per_minute_measured']}/min)",
             f"{'mode':>6} {'searches':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
             f"{'refreshed':>9} {'refr. p50':>9} {'full reloads':>12}"]
    for r in report["rows"]:
        lines.append(f"{r['mode']:>6} {r['searches']:>8} {r['p50_ms']:>8} {r['p95_ms']:>8} "
                     f"{r['max_ms']:>8} {r['searches_that_refreshed']:>9} "
                     f"{r['refreshing_p50_ms'] or '-':>9} {r['full_reloads_in_searches']:>12}")
    lines.append(f"edits/quiet: p50 ×{report['p50_ratio']}, p95 ×{report['p95_ratio']}; "
                 f"full reloads after warm-up: {report['full_reloads_after_warmup']}; "
                 f"a refresh takes {report['refresh_ms_mean']} ms on average; "
                 f"load average {report['load_average_1m']}")
    lines.append("cpu check ms (before each run): " + ", ".join(
        f"{c['mode'][0]}{c['cpu_check_ms']}" for c in report["cpu_checks"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=os.environ.get("TEST_POSTGRES_URL", generate.ADMIN_URL))
    parser.add_argument("--spaces", type=int, default=10_000)
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--searches", type=int, default=1200, help="per mode")
    parser.add_argument("--edits-per-minute", type=float, default=60.0)
    parser.add_argument("--turns", type=int, default=8)
    args = parser.parse_args(argv)
    run(admin_url=args.admin_url, spaces=args.spaces, bookings=args.bookings,
        searches=args.searches, per_minute=args.edits_per_minute, turns=args.turns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
