"""The HTTP benchmarks of the real stack, each against the floor measured in the same run.

    .venv/bin/python -m bench.run_all                 # the full run (see --help for sizes)
    .venv/bin/python -m bench.run_all --smoke         # tiny data, a second per benchmark (CI)

What runs: a database of its own on the machine's PostgreSQL (dropped at the end), filled by
the data generator (bench/generate.py) when present plus the benchmark scenario
(bench/scenario.py); the machine's Redis under a key prefix of its own (deleted at the end)
for the rate limits; gunicorn with the production booking/gunicorn_conf.py on a loopback port;
wrk (Debian's package) as the load generator in its own process.

The floor is GET /healthz of the same app on the same server (no database), measured before
and after the benchmarks; each throughput and latency is also given as a ratio to it
(throughput / floor throughput, latency / floor latency), because this machine is shared
and noisy. Benchmarks:

- search:    GET /api/v1/spaces, the search issue's mix of queries
- space:     GET /spaces/<slug>, the public space page
- book-many: POST /api/v1/bookings, one seat on a random unit and day of many
- book-hot:  POST /api/v1/bookings, one seat of the one hot unit on the core day, from all
             connections at once; afterwards the table must hold exactly its capacity
- ics:       GET /calendar/<secret>.ics, a company's feed with 1,000 bookings

Each prints a table and writes JSON into bench/results/ (not committed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from bench import scenario as scenario_mod
from bench.stack import (
    AppServer,
    RedisNamespace,
    app_environment,
    http,
    machine,
    print_table,
    ratio,
    run_wrk,
    shared_database,
    write_requests,
    write_results,
    wrk_available,
)

BENCHMARKS = ("search", "space", "book-many", "book-hot", "ics")
# Places people type (stations, towns, romaji, prefectures): the fallback search mix when
# the search issue's own mix (bench/generate.py) is not there.
FALLBACK_PLACES = ("東京駅", "静岡駅", "駒ヶ根", "Yoshikawa", "大阪", "札幌", "福岡", "仙台", "名古屋",
                   "那覇", "金沢", "広島")


def search_mix(sc: scenario_mod.Scenario, count: int, rnd: random.Random) -> list[str]:
    """Query strings of GET /api/v1/spaces: the search issue's mix (bench/generate.py) when
    it is there, else a mix of places, coordinates and prefectures on the scenario's days."""
    try:
        from bench import generate

        return [urlencode(params) for params in generate.search_mix(count, seed=7)]
    except ImportError:
        pass
    out = []
    for _ in range(count):
        params: dict[str, str] = {"date": rnd.choice(sc.dates)}
        shape = rnd.random()
        if shape < 0.6:
            params["near"] = rnd.choice(FALLBACK_PLACES)
        elif shape < 0.8:
            params.update(lat=f"{rnd.uniform(31, 43):.4f}", lon=f"{rnd.uniform(130, 144):.4f}",
                          radius_km="50")
        else:
            params["prefecture"] = str(rnd.randint(1, 47))
        if rnd.random() < 0.3:
            params["seats"] = str(rnd.randint(2, 5))
        out.append(urlencode(params))
    return out


def request_lists(sc: scenario_mod.Scenario, folder: Path, rnd: random.Random) -> dict[str, Path]:
    lists = {
        "floor": [("GET", "/healthz", "")],
        "search": [("GET", "/api/v1/spaces?" + q, "") for q in search_mix(sc, 2000, rnd)],
        "space": [("GET", f"/spaces/{s}", "") for s in (sc.space_slugs or [sc.space_slug])],
        "book-many": [("POST", "/api/v1/bookings", json.dumps(
            {"unit_id": rnd.choice(sc.unit_ids), "date": rnd.choice(sc.dates), "seats": 1}))
            for _ in range(5000)],
        "book-hot": [("POST", "/api/v1/bookings", json.dumps(
            {"unit_id": sc.hot_unit_id, "date": sc.hot_date, "seats": 1}))],
        "ics": [("GET", sc.feed_path, "")],
    }
    rnd.shuffle(lists["space"])
    return {name: write_requests(folder / f"{name}.txt", items) for name, items in lists.items()}


def measure(server: AppServer, name: str, requests: Path, args, token: str = "") -> dict:
    figures = run_wrk(server.url, requests, duration=args.duration, connections=args.connections,
                      threads=args.wrk_threads, token=token, timeout=args.timeout)
    figures["benchmark"] = name
    return figures


def load_data(database_url: str, args) -> dict:
    """The generator's data set (spaces all over Japan, bookings over the season), when
    bench/generate.py is there; the schema must exist."""
    try:
        from bench import generate
    except ImportError:
        return {"generator": None}
    started = time.monotonic()
    stats = generate.generate_spaces(database_url, spaces=args.spaces, seed=1)
    added = generate.add_bookings(database_url, args.bookings, seed=1)
    return {"generator": "bench/generate.py", "spaces": stats.spaces, "units": stats.units,
            "bookings": added, "seconds": round(time.monotonic() - started, 1)}


def run(args) -> dict:
    if not wrk_available():
        sys.exit("wrk is not installed: apt-get install --no-upgrade wrk")
    rnd = random.Random(2019)
    report: dict = {"machine": machine(), "settings": vars(args).copy(), "benchmarks": {}}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, shared_database() as database_url, \
            RedisNamespace() as redis_ns:
        folder = Path(tmp)
        app = scenario_mod.app_for(database_url)
        scenario_mod.create_schema(app)
        report["data"] = load_data(database_url, args)
        sc = scenario_mod.prepare(app, units=args.units, capacity=args.capacity,
                                  hot_capacity=args.hot_capacity or 300,
                                  feed_bookings=args.feed_bookings)
        lists = request_lists(sc, folder, rnd)
        env = app_environment(database_url, REDIS_URL=redis_ns.url,
                              RATELIMIT_KEY_PREFIX=redis_ns.prefix,
                              RATELIMIT_ENABLED="true" if args.rate_limits else "false",
                              MAIL_DIR=str(folder / "mail"), BOOKING_INSTANCE_DIR=str(folder),
                              LOG_REQUESTS="true")
        server = AppServer(env, workers=args.workers, threads=args.threads,
                           log_path=folder / "gunicorn.log", name="bench")
        with server:
            report["server"] = {"workers": server.env.get("WEB_CONCURRENCY", "cores"),
                                "threads": server.env.get("GUNICORN_THREADS", "4")}
            workers = int(server.env.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
            report["warm"] = warm(server, lists, sc.token, per_kind=min(4 * workers, 40))
            settle(server)
            floors = [measure(server, "floor", lists["floor"], args)]
            for name in args.only:
                settle(server)  # nothing left over from the previous benchmark
                if name == "book-hot" and args.hot_capacity is None:
                    # Seats for a third of the run at the rate bookings were just made: the
                    # rush sells out early, then the rest are refused (409) under contention.
                    rate = report["benchmarks"].get("book-many", {}).get("rps") or 30
                    set_capacity(app, sc, max(5, min(300, int(rate * args.duration / 3))))
                figures = measure(server, name, lists[name], args, token=sc.token)
                if name == "book-hot":
                    figures["check"] = hot_check(app, sc, figures)
                report["benchmarks"][name] = figures
            settle(server)
            floors.append(measure(server, "floor", lists["floor"], args))
        report["floor"] = combine_floors(floors)
        report["server_time"] = server_times(server.log_path)
        answered = sum(f["statuses"].get("201", 0)
                       for f in [report["warm"], *report["benchmarks"].values()])
        report["bookings_check"] = {"answered_201": answered,
                                    "rows_in_db": scenario_mod.booker_rows(app, sc.booker_email)}
        # The generator does not check capacity; the benchmark's own units must hold.
        report["over_capacity"] = scenario_mod.over_capacity(app, [*sc.unit_ids, sc.hot_unit_id])
        report["redis_keys_left"] = 0
        from booking.extensions import db
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
    report["redis_keys_left"] = len(redis_ns.keys())
    add_ratios(report)
    return report


def settle(server: AppServer, timeout: float = 180, quiet: float = 1.0) -> None:
    """Wait until the server has finished what it was still doing: no request line added
    to its access log for `quiet` seconds. (wrk stops reading at the end of its run, but
    the requests it had sent are still worked on; a /healthz probe would be answered by an
    idle thread meanwhile, so it cannot tell.)"""
    deadline = time.monotonic() + timeout
    size, still = -1, 0.0
    while time.monotonic() < deadline and still < quiet:
        time.sleep(0.25)
        now = server.log_path.stat().st_size
        still = still + 0.25 if now == size else 0.0
        size = now


def warm(server: AppServer, lists: dict[str, Path], token: str, per_kind: int) -> dict:
    """Every kind of request, `per_kind` at once, each waited for however long it takes:
    imports, the gazetteer, templates and first queries happen in every worker before
    anything is timed."""
    from concurrent.futures import ThreadPoolExecutor

    answers: dict[str, int] = {}
    for name in ("search", "space", "ics", "book-many"):
        lines = lists[name].read_text(encoding="utf-8").splitlines()
        lines = (lines * per_kind)[:per_kind]

        def one(line: str) -> int:
            method, target, body = line.split("\t", 2)
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
            return http(method, server.url + target, json.loads(body) if body else None, headers,
                        timeout=300)[0]

        with ThreadPoolExecutor(max_workers=per_kind) as pool:
            for status in pool.map(one, lines):
                answers[str(status)] = answers.get(str(status), 0) + 1
    return {"statuses": answers}


def server_times(log_path: Path) -> dict:
    """Time spent inside the app per route (the access log's duration_ms): what a request
    costs without the queueing in front of the workers."""
    by_route: dict[str, list[float]] = {}
    with log_path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            if '"booking.access"' not in line:
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                by_route.setdefault(f"{entry['method']} {entry['route']}", []).append(entry["duration_ms"])
    out = {}
    for route, values in sorted(by_route.items()):
        values.sort()
        out[route] = {"requests": len(values), "p50_ms": round(values[len(values) // 2], 2),
                      "p95_ms": round(values[min(len(values) - 1, int(len(values) * 0.95))], 2)}
    return out


def set_capacity(app, sc: scenario_mod.Scenario, capacity: int) -> None:
    from booking.extensions import db
    from booking.models import Unit

    with app.app_context():
        db.session.get(Unit, sc.hot_unit_id).capacity = capacity
        db.session.commit()
    sc.hot_capacity = capacity


def hot_check(app, sc: scenario_mod.Scenario, figures: dict) -> dict:
    held = scenario_mod.booked_seats(app, sc.hot_unit_id, sc.hot_date)
    created = figures["statuses"].get("201", 0)
    seconds = scenario_mod.sell_out_seconds(app, sc.hot_unit_id, sc.hot_date)
    return {"capacity": sc.hot_capacity, "seats_in_db": held["seats"], "bookings_in_db": held["bookings"],
            "answered_201": created, "exactly_capacity": held["seats"] == sc.hot_capacity == created,
            "sold_out_in_s": seconds,
            "bookings_per_s_while_seats_left": round(created / seconds, 1) if seconds else None}


def combine_floors(floors: list[dict]) -> dict:
    keys = ("p50", "p95", "p99", "mean")
    return {
        "rps": round(sum(f["rps"] for f in floors) / len(floors), 2),
        "latency_ms": {k: round(sum(f["latency_ms"][k] for f in floors) / len(floors), 3) for k in keys},
        "runs": floors,
    }


def add_ratios(report: dict) -> None:
    floor = report["floor"]
    for figures in report["benchmarks"].values():
        figures["ratio"] = {
            "rps": ratio(figures["rps"], floor["rps"]),
            "p50": ratio(figures["latency_ms"]["p50"], floor["latency_ms"]["p50"]),
            "p95": ratio(figures["latency_ms"]["p95"], floor["latency_ms"]["p95"]),
        }


def show(report: dict) -> None:
    floor = report["floor"]
    rows = [{"name": "floor (/healthz)", "rps": floor["rps"], "p50": floor["latency_ms"]["p50"],
             "p95": floor["latency_ms"]["p95"], "statuses": {"200": "…"}}]
    for name, f in report["benchmarks"].items():
        rows.append({"name": name, "rps": f["rps"], "p50": f["latency_ms"]["p50"],
                     "p95": f["latency_ms"]["p95"], "x_rps": f["ratio"]["rps"],
                     "x_p50": f["ratio"]["p50"], "x_p95": f["ratio"]["p95"],
                     "statuses": f["statuses"]})
    print_table("HTTP benchmarks (throughput req/s, latency ms; x_ = ratio to the floor)", rows, [
        ("name", "benchmark"), ("rps", "req/s"), ("x_rps", "x floor"), ("p50", "p50 ms"),
        ("x_p50", "x floor"), ("p95", "p95 ms"), ("x_p95", "x floor"), ("statuses", "statuses")])
    print_table("Time inside the app per route, all runs (access log duration_ms)",
                [{"route": k, **v} for k, v in report["server_time"].items()],
                [("route", "route"), ("requests", "requests"), ("p50_ms", "p50 ms"), ("p95_ms", "p95 ms")])
    if "book-hot" in report["benchmarks"]:
        check = report["benchmarks"]["book-hot"]["check"]
        print(f"\nhot unit: capacity {check['capacity']}, answered 201: {check['answered_201']}, "
              f"seats in the database: {check['seats_in_db']} -> "
              f"{'exactly the capacity' if check['exactly_capacity'] else 'NOT the capacity'}; "
              f"sold out in {check['sold_out_in_s']} s "
              f"({check['bookings_per_s_while_seats_left']} bookings/s while seats were left)")
    bookings = report["bookings_check"]
    print(f"bookings answered 201: {bookings['answered_201']}, in the database: {bookings['rows_in_db']} "
          "(the difference: requests in flight when wrk stopped, answered after it stopped reading)")
    data = report.get("data", {})
    print(f"data: {data}; server: {report.get('server')}; wrk: {report['settings']['connections']} "
          f"connections, {report['settings']['duration']} s per benchmark")
    print(f"over capacity anywhere: {len(report['over_capacity'])}; "
          f"Redis keys left: {report['redis_keys_left']}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, 2 s per benchmark (CI)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    parser.add_argument("--duration", type=float, default=15, help="seconds per benchmark")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60,
                        help="wrk: seconds before a request counts as timed out")
    parser.add_argument("--workers", type=int, default=None,
                        help="WEB_CONCURRENCY (default: booking/gunicorn_conf.py)")
    parser.add_argument("--threads", type=int, default=None,
                        help="GUNICORN_THREADS (default: booking/gunicorn_conf.py)")
    parser.add_argument("--spaces", type=int, default=10_000, help="spaces of the generated data set")
    parser.add_argument("--bookings", type=int, default=1_000_000,
                        help="bookings of the generated data set")
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--capacity", type=int, default=20)
    parser.add_argument("--hot-capacity", type=int, default=None,
                        help="seats of the hot unit (default: a third of the run at the "
                             "book-many rate, 5 to 300)")
    parser.add_argument("--feed-bookings", type=int, default=1000)
    parser.add_argument("--rate-limits", action="store_true",
                        help="keep the rate limits on (they would answer 429 to one benchmark client)")
    args = parser.parse_args(argv)
    args.only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(args.only) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    if args.smoke:
        args.duration, args.connections = 2, 4
        args.spaces, args.bookings, args.units, args.capacity = 50, 1000, 10, 50
        args.hot_capacity, args.feed_bookings = 2, 20
        args.workers = args.workers or 2
        args.threads = args.threads or 2
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    report = run(args)
    show(report)
    path = write_results("smoke" if args.smoke else "http", report)
    print(f"\nJSON: {path}")
    return report


if __name__ == "__main__":
    main()
