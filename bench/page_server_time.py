"""A/B of the space page's and the calendar feed's server time in process: GET
/spaces/<slug> and GET /calendar/<secret>.ics through Flask's test client, one request at a
time, against two commits in alternating rounds on one PostgreSQL database (issue 22).

    .venv/bin/python -m bench.page_server_time --a HEAD~3 --b WORKTREE --db bench_ab_0123456789
    .venv/bin/python -m bench.page_server_time --a main --b HEAD --db NAME --pages 200 --rounds 6

Why in process and one at a time: as bench/booking_server_time.py (whose shape this follows)
— on a shared 2-core machine concurrent HTTP figures measure the queue more than the code.
The database (`--db`) is one bench/generate.py filled (e.g. kept by bench/ab.py --keep-db);
the parent adds once, through bench/scenario.py, a company with `--feed-bookings` bookings
and its feed secret, read by both sides. Each side is a git worktree of its commit
(WORKTREE: this checkout as it is) run in a child process per round; rounds alternate
A B B A …, and the load average and the CPU check (bench/search_server_time.cpu_check_ms)
are taken before each. What is timed, per side and round:

- space: the pages of `--slugs` public spaces of the generated data, once unmeasured (the
  first view of each in this process: `space-first`) and then `--pages` requests over them;
- feed-fresh: the feed after one of its bookings changed (a note written through the ORM
  and committed before the request, not timed): nothing of the feed can come from a cache;
- feed-cached: the same feed asked again with nothing changed (no If-None-Match);
- feed-304: asked again with the ETag of the previous answer (If-None-Match).

Printed: per round each measure's p50, its load and CPU check; per measure and side p50/p95
(ms) over all rounds, SQL statements per request (median, exact: counted on the engine),
the min–max of the side's rounds' CPU checks and loads, B/A ratios of p50 and p95, and
beside each side the load averages and CPU checks of its rounds. JSON (settings, rounds,
rows, B/A) goes into bench/results/; from Python: `run("HEAD", "WORKTREE", db=NAME)`
returns the same report.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WORKTREE = "WORKTREE"
MEASURES = ("space-first", "space", "feed-fresh", "feed-cached", "feed-304")


def _child(root: str, database_url: str, setup: dict, pages: int, feeds: int) -> None:
    """One round of one side: print JSON {measure: {times_ms: [...], statements: [...]}}."""
    sys.path[0] = root  # the side's checkout, not this file's folder
    import logging

    import sqlalchemy as sa

    from bench import scenario
    from booking.extensions import db
    from booking.models import Booking

    logging.getLogger("booking.access").setLevel(logging.WARNING)
    app = scenario.app_for(database_url)
    client = app.test_client()
    counter = [0]
    out: dict[str, dict[str, list]] = {m: {"times_ms": [], "statements": []} for m in MEASURES}

    def count(*_args, **_kwargs):
        counter[0] += 1

    def timed(measure: str, path: str, headers: dict | None = None, expect: int = 200):
        counter[0] = 0
        started = time.perf_counter()
        answer = client.get(path, headers=headers or {})
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status_code != expect:
            raise SystemExit(f"{path}: {answer.status_code} {answer.get_data(as_text=True)[:500]}")
        out[measure]["times_ms"].append(elapsed)
        out[measure]["statements"].append(counter[0])
        return answer

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    slugs = setup["slugs"]
    client.get("/healthz").close()
    for slug in slugs:  # the first view of each page in this process
        timed("space-first", f"/spaces/{slug}").close()
    for i in range(pages):
        timed("space", f"/spaces/{slugs[i % len(slugs)]}").close()
    feed = setup["feed_path"]
    ids = setup["feed_booking_ids"]
    client.get(feed).close()  # the process's first feed (imports, templates) is not timed
    for i in range(feeds):
        with app.app_context():  # a change of the feed, committed as any edit is
            booking = db.session.get(Booking, ids[i % len(ids)])
            booking.note = f"bench {time.time_ns()}"
            db.session.commit()
        timed("feed-fresh", feed).close()
        answer = timed("feed-cached", feed)
        etag = answer.headers.get("ETag")
        answer.close()
        if etag:
            timed("feed-304", feed, {"If-None-Match": etag}, expect=304).close()
    print(json.dumps(out))


def _setup(url: str, slugs: int, feed_bookings: int) -> dict:
    """The spaces to view and the feed to read (made here, once, with this checkout)."""
    import random

    import sqlalchemy as sa

    from bench import scenario
    from booking.extensions import db
    from booking.models import Booking, Organisation, Space

    app = scenario.app_for(url)
    made = scenario.prepare(app, units=10, capacity=20, days=10, hot_capacity=1,
                            feed_bookings=feed_bookings)
    with app.app_context():
        public = db.session.scalars(sa.select(Space.slug).where(Space.is_public)
                                    .order_by(Space.id)).all()
        secret = made.feed_path.removeprefix("/calendar/").removesuffix(".ics")
        company = db.session.scalar(sa.select(Organisation.id)
                                    .where(Organisation.calendar_secret == secret))
        ids = db.session.scalars(sa.select(Booking.id).where(Booking.company_id == company)
                                 .order_by(Booking.id)).all()
        db.session.remove()  # its connection back before the pool goes (else it stays open)
        for engine in db.engines.values():
            engine.dispose()
    return {"slugs": random.Random(22).sample(list(public), min(slugs, len(public))),
            "feed_path": made.feed_path, "feed_booking_ids": list(ids)}


def run(a: str, b: str = WORKTREE, *, db: str, admin_url: str = ADMIN_URL, slugs: int = 40,
        pages: int = 120, feeds: int = 15, feed_bookings: int = 1000, rounds: int = 4,
        out_dir: Path | None = RESULTS_DIR, quiet: bool = False) -> dict:
    """The whole A/B on the existing database `db`: the report, printed (unless quiet) and
    written as JSON into out_dir (unless None; its path under "written_to")."""
    # Only here, in the parent: a child runs this file with its side's checkout first on
    # its path, where these may not exist. One way to run the rounds: booking_server_time's.
    from bench.booking_server_time import alternate_rounds, new_report, printer
    from bench.search_server_time import show_and_write
    from bench.stack import percentile

    say = printer(quiet)

    url = admin_url.rsplit("/", 1)[0] + "/" + db
    report = new_report("page_server_time", a, b, {
        "database": db, "slugs": slugs, "pages": pages, "feeds": feeds,
        "feed_bookings": feed_bookings, "rounds": rounds})
    results = {side: {m: {"times_ms": [], "statements": []} for m in MEASURES} for side in "AB"}
    with tempfile.TemporaryDirectory(prefix="page-setup-") as tmp:
        setup_path = Path(tmp) / "setup.json"
        setup_path.write_text(json.dumps(_setup(url, slugs, feed_bookings)))

        def child(root: str) -> list[str]:
            return [sys.executable, str(Path(__file__).resolve()), "--a", "-", "--db", "-",
                    "--pages", str(pages), "--feeds", str(feeds),
                    "--child", root, url, str(setup_path)]

        for record, data in alternate_rounds(report, rounds, "page-ab-", child):
            side = record["side"]
            for measure in MEASURES:
                for key in ("times_ms", "statements"):
                    results[side][measure][key] += data[measure][key]
            record["p50_ms"] = {m: round(statistics.median(data[m]["times_ms"]), 2)
                                for m in MEASURES if data[m]["times_ms"]}
            say(f"  round {record['round']}/{rounds} {side}: " + ", ".join(
                f"{m} {p50:.2f} ms" for m, p50 in record["p50_ms"].items())
                + f"  (load {record['load_1m']}, cpu {record['cpu_check_ms']} ms)")
    conditions = {side: {key: [r[key] for r in report["rounds"] if r["side"] == side]
                         for key in ("load_1m", "cpu_check_ms")} for side in "AB"}
    report["rows"] = []
    report["b_over_a"] = {}
    for measure in MEASURES:
        by_side = {}
        for side in "AB":
            times = results[side][measure]["times_ms"]
            if times:
                by_side[side] = {
                    "measure": measure, "side": side,
                    "p50_ms": round(statistics.median(times), 2),
                    "p95_ms": percentile(times, 0.95),
                    "statements": statistics.median(results[side][measure]["statements"]),
                    "n": len(times), **conditions[side]}
                report["rows"].append(by_side[side])
        if len(by_side) == 2:
            report["b_over_a"][measure] = {
                key: round(by_side["B"][f"{key}_ms"] / by_side["A"][f"{key}_ms"], 3)
                for key in ("p50", "p95")}
    return show_and_write(report, "page_server_time", table, say, out_dir)


def table(report: dict) -> str:
    """Per measure and side: p50/p95 over all rounds, statements per request (median), n,
    and the min–max of the side's rounds' CPU checks and load averages; B/A of p50, p95."""
    from bench.booking_server_time import span

    s = report["settings"]
    lines = [f"A = {s['a']}, B = {s['b']}; {s['rounds']} rounds; database {s['database']}"]
    for side in "AB":
        mine = [r for r in report["rounds"] if r["side"] == side]
        lines.append(f"side {side}: load 1m {[r['load_1m'] for r in mine]}, "
                     f"cpu check ms {[r['cpu_check_ms'] for r in mine]}")
    lines.append(f"{'measure':<12} {'side':<4} {'p50 ms':>8} {'p95 ms':>8} {'statements':>10} "
                 f"{'n':>5}  {'cpu_check ms':<13} {'load 1m'}")
    for measure in MEASURES:
        for r in (r for r in report["rows"] if r["measure"] == measure):
            lines.append(f"{measure:<12} {r['side']:<4} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} "
                         f"{r['statements']:>10} {r['n']:>5}  {span(r['cpu_check_ms']):<13} "
                         f"{span(r['load_1m'])}")
        if ratio := report["b_over_a"].get(measure):
            lines.append(f"{measure:<12} {'B/A':<4} {ratio['p50']:8.2f} {ratio['p95']:8.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="a commit or WORKTREE")
    parser.add_argument("--b", default=WORKTREE, help="a commit or WORKTREE (default)")
    parser.add_argument("--db", required=True, help="an existing benchmark database's name")
    parser.add_argument("--slugs", type=int, default=40, help="space pages viewed")
    parser.add_argument("--pages", type=int, default=120, help="space pages timed per round")
    parser.add_argument("--feeds", type=int, default=15, help="feeds of each kind per round")
    parser.add_argument("--feed-bookings", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--child", nargs=3, metavar=("ROOT", "URL", "SETUP"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], json.loads(Path(args.child[2]).read_text()),
               args.pages, args.feeds)
        return None
    return run(args.a, args.b, db=args.db, slugs=args.slugs, pages=args.pages, feeds=args.feeds,
               feed_bookings=args.feed_bookings, rounds=args.rounds)


if __name__ == "__main__":
    main()
