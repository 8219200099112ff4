"""Server time of searches at 10 k, 100 k and 1 M bookings (issue 3's benchmark).

Creates one PostgreSQL database per size, each filled by bench/generate.py with the same
spaces (10,000 by default) and that many bookings, and runs a mix of searches through the
application (GET /api/v1/spaces in the Flask test client: routing, validation, search,
JSON; no network), timing each one and counting its SQL statements. The sizes take turns,
a slice of the mix each, so that the machine's drifting speed (up to 1.7× within minutes)
weighs on every size alike rather than on whichever ran while it was slow. Prints a table
and writes JSON to bench/results/. The databases are dropped at the end.

    .venv/bin/python -m bench.search_server_time                    # 10k, 100k, 1M bookings
    .venv/bin/python -m bench.search_server_time --sizes 10000 --searches 100

Targets (issue 3): p95 under 50 ms at 1 M bookings; growth from 10 k to 1 M under 1.5×.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa

from bench import generate
from bench.stack import write_results
from booking import clock

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def cpu_check_ms() -> float:
    """The time of a fixed pure-Python loop (best of 3): this virtual machine's speed
    drifts by up to 1.7× within minutes, and every figure moves with it."""
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 1)


class _Timer:
    """Times searches of one application (ms) and counts their SQL statements."""

    def __init__(self, app) -> None:
        from booking.extensions import db

        self.client = app.test_client()
        with app.app_context():
            self.engine = db.engine
        self.times: list[float] = []
        self.queries: list[int] = []
        self.statuses: dict[int, int] = {}
        self.totals: list[int] = []
        self._count = 0

    def _counted(self, *_args) -> None:
        self._count += 1

    def warm(self, mix: list[dict[str, str]]) -> None:
        for params in mix:
            self.client.get("/api/v1/spaces?" + urlencode(params)).close()

    def run(self, mix: list[dict[str, str]]) -> None:
        sa.event.listen(self.engine, "before_cursor_execute", self._counted)
        try:
            for params in mix:
                self._count = 0
                t0 = time.perf_counter()
                response = self.client.get("/api/v1/spaces?" + urlencode(params))
                elapsed = (time.perf_counter() - t0) * 1000
                self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    self.times.append(elapsed)
                    self.queries.append(self._count)
                    self.totals.append(response.json["total"])
                response.close()
        finally:
            sa.event.remove(self.engine, "before_cursor_execute", self._counted)

    def summary(self) -> dict:
        times, queries, totals = self.times, self.queries, self.totals
        return {
            "searches": len(times),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "median_ms": round(statistics.median(times), 2) if times else None,
            "p95_ms": round(_percentile(times, 0.95), 2) if times else None,
            "max_ms": round(max(times), 2) if times else None,
            "queries_min": min(queries) if queries else None,
            "queries_max": max(queries) if queries else None,
            "queries_mean": round(statistics.mean(queries), 2) if queries else None,
            "results_total_median": statistics.median(totals) if totals else None,
        }


def run(*, admin_url: str = generate.ADMIN_URL, spaces: int = 10_000,
        sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000), searches: int = 300,
        warmup: int = 20, out_dir: Path | None = RESULTS_DIR, seed: int = 1,
        quiet: bool = False, turns: int = 6) -> dict:
    """The whole benchmark; returns (and writes) the report."""
    from booking import create_app

    def say(*args) -> None:
        if not quiet:
            print(*args, flush=True)

    # Per-request access logs would dominate the output.
    logging.getLogger("booking.access").setLevel(logging.WARNING)
    report: dict = {
        "benchmark": "search_server_time",
        "started_at": clock.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "spaces": spaces, "searches_per_size": searches, "turns": turns, "rows": [],
    }
    urls: list[str] = []
    apps = []
    try:
        for size in sizes:
            urls.append(url := generate.create_database(admin_url))
            t0 = time.perf_counter()
            stats = generate.generate_spaces(url, spaces, seed=seed)  # the same spaces
            report["data"] = stats.__dict__
            added = generate.add_bookings(url, size, seed=seed + size)
            say(f"{stats.spaces} spaces, {stats.units} units, {added} bookings "
                f"({time.perf_counter() - t0:.1f}s)")
            apps.append(create_app({
                "SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://"),
                "RATELIMIT_ENABLED": False, "SECRET_KEY": "bench", "SERVER_NAME": "localhost"}))
        mix = generate.search_mix(searches, seed=seed + 6)
        timers = [_Timer(app) for app in apps]
        for timer in timers:
            timer.warm(mix[:warmup])
        checks: list[float] = []
        step = math.ceil(len(mix) / turns)
        for start in range(0, len(mix), step):
            checks.append(cpu_check_ms())
            for timer in timers:
                timer.run(mix[start:start + step])
        checks.append(cpu_check_ms())
        report["cpu_check_ms"] = checks
        for size, timer in zip(sizes, timers, strict=True):
            report["rows"].append({"bookings": size, **timer.summary()})
        report["load_average_1m"] = round(os.getloadavg()[0], 2)  # other work on the machine
        for app in apps:
            with app.app_context():
                from booking.extensions import db

                for engine in db.engines.values():
                    engine.dispose()
    finally:
        for url in urls:
            generate.drop_database(admin_url, url)
    first, last = report["rows"][0], report["rows"][-1]
    if first["p95_ms"]:
        report["growth_p95"] = round(last["p95_ms"] / first["p95_ms"], 2)
        report["growth_median"] = round(last["median_ms"] / first["median_ms"], 2)
    say(table(report))
    if out_dir is not None:
        path = write_results("search_server_time", report, out_dir)
        report["written_to"] = str(path)
        say(f"wrote {path}")
    return report


def table(report: dict) -> str:
    lines = [f"{'bookings':>10} {'searches':>8} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} "
             f"{'queries':>8} {'results':>8}"]
    for r in report["rows"]:
        lines.append(f"{r['bookings']:>10,} {r['searches']:>8} {r['median_ms']:>10} {r['p95_ms']:>8} "
                     f"{r['max_ms']:>8} {r['queries_min']}–{r['queries_max']:<5} "
                     f"{r['results_total_median']:>8}")
    if "cpu_check_ms" in report:
        lines.append(f"sizes measured in {report['turns']} turns; cpu check ms before each "
                     f"turn and at the end: {report['cpu_check_ms']}")
    if "growth_p95" in report:
        lines.append(f"growth {report['rows'][0]['bookings']:,} → {report['rows'][-1]['bookings']:,}: "
                     f"p95 ×{report['growth_p95']}, median ×{report['growth_median']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=os.environ.get("TEST_POSTGRES_URL", generate.ADMIN_URL))
    parser.add_argument("--spaces", type=int, default=10_000)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    run(admin_url=args.admin_url, spaces=args.spaces,
        sizes=tuple(int(s) for s in args.sizes.split(",")), searches=args.searches,
        warmup=args.warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
