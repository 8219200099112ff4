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

A/B (issue 22): the same searches of two commits (or a commit and this work tree,
`WORKTREE`) on one database, in alternating turns (A B, B A, …) with the CPU check and
the load average before each; each side runs in a process of its own
(bench/search_worker.py, its checkout first on PYTHONPATH). Per side p50/p95 and SQL
statements per search; B/A ratios of the turns' p50 and p95; whether both sides gave
the same answers (each answer's JSON compared).

    .venv/bin/python -m bench.search_server_time --ab 69a23e9 WORKTREE          # 100 k bookings
    .venv/bin/python -m bench.search_server_time --ab HEAD HEAD --db bench_x    # A/A, a kept database
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa

from bench import generate
from bench.stack import percentile, write_results
from booking import clock

RESULTS_DIR = Path(__file__).resolve().parent / "results"


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
            "p95_ms": percentile(times, 0.95),
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
    return show_and_write(report, "search_server_time", table, say, out_dir)



def show_and_write(report: dict, name: str, table: Callable[[dict], str],
                   say: Callable[..., None], out_dir: Path | None) -> dict:
    """The end of a run: its table said, its JSON written (when out_dir), the report back
    with the file's path in it."""
    say(table(report))
    if out_dir is not None:
        path = write_results(name, report, out_dir)
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


# --- A/B: two commits in alternating turns -------------------------------------------------

WORKER = Path(__file__).resolve().parent / "search_worker.py"


class _Side:
    """A checkout's search worker (bench/search_worker.py in a process of its own)."""

    def __init__(self, label: str, tree: Path, url: str) -> None:
        self.label, self.tree = label, tree
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), url], cwd=tree, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.times: list[float] = []
        self.queries: list[int] = []
        self.answers: list[list] = []
        self.statuses: dict[str, int] = {}
        self.turns: list[dict] = []

    def ask(self, command: dict) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the search worker of side {self.label} ended")
        return json.loads(line)

    def run(self, mix: list[dict[str, str]]) -> None:
        answer = self.ask({"run": mix})
        self.times += answer["times"]
        self.queries += answer["queries"]
        self.answers += answer["totals"]
        for status, n in answer["statuses"].items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        times = answer["times"]
        self.turns.append({"p50_ms": round(statistics.median(times), 2) if times else None,
                           "p95_ms": percentile(times, 0.95)})

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def summary(self) -> dict:
        times, queries = self.times, self.queries
        return {
            "searches": len(times), "statuses": self.statuses,
            "median_ms": round(statistics.median(times), 2) if times else None,
            "p95_ms": percentile(times, 0.95),
            "max_ms": round(max(times), 2) if times else None,
            "queries_min": min(queries) if queries else None,
            "queries_max": max(queries) if queries else None,
            "queries_mean": round(statistics.mean(queries), 2) if queries else None,
            "turns": self.turns,
        }


def _ratio(b: list[dict], a: list[dict], key: str) -> dict | None:
    pairs = [y[key] / x[key] for x, y in zip(a, b, strict=True) if x[key] and y[key]]
    if not pairs:
        return None
    return {"median": round(statistics.median(pairs), 2), "min": round(min(pairs), 2),
            "max": round(max(pairs), 2)}


def run_ab(a: str, b: str, *, admin_url: str = generate.ADMIN_URL, db: str | None = None,
           spaces: int = 10_000, bookings: int = 100_000, searches: int = 300,
           warmup: int = 20, turns: int = 6, seed: int = 1, keep_db: bool = False,
           out_dir: Path | None = RESULTS_DIR, quiet: bool = False) -> dict:
    """Search server time of two checkouts on one database, in alternating turns."""
    from bench import ab

    def say(*args) -> None:
        if not quiet:
            print(*args, flush=True)

    sides_git = [ab.Side("A", a, ab.resolve(a)), ab.Side("B", b, ab.resolve(b))]
    report: dict = {
        "benchmark": "search_server_time_ab",
        "started_at": clock.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "sides": [{"label": s.label, "rev": s.rev, "commit": s.commit} for s in sides_git],
        "searches": searches, "turns": turns,
    }
    base = admin_url.rsplit("/", 1)[0]
    url = f"{base}/{db}" if db else generate.create_database(admin_url)
    workers: list[_Side] = []
    try:
        if not db:
            t0 = time.perf_counter()
            stats = generate.generate_spaces(url, spaces, seed=seed)
            added = generate.add_bookings(url, bookings, seed=seed + bookings)
            report["data"] = {**stats.__dict__, "bookings": added}
            say(f"{stats.spaces} spaces, {stats.units} units, {added} bookings "
                f"({time.perf_counter() - t0:.1f}s)")
        else:
            report["data"] = {"database": db, "reused": True}
        with tempfile.TemporaryDirectory(prefix="search-ab-") as tmp, \
                ab.worktrees(sides_git, Path(tmp)):
            database = ab.database_schema(url)
            schemas = [ab.model_schema(s.tree) for s in sides_git]
            # A table only the older side has (catalogue_version before the change log)
            # is added from its own models, as bench.ab does.
            for side, tables in zip(sides_git, schemas, strict=True):
                if missing := [t for t in tables if t not in database]:
                    ab.create_tables(side.tree, url, missing)
                    say(f"side {side.label}: tables {missing} added from its own models")
            if refusals := ab.check_schemas(sides_git, schemas, ab.database_schema(url)):
                sys.exit(f"schemas do not fit the database: {refusals}")
            workers = [_Side(s.label, s.tree, url) for s in sides_git]
            mix = generate.search_mix(searches, seed=seed + 6)
            warm = generate.search_mix(warmup, seed=seed + 60)
            for worker in workers:
                worker.ask({"warm": warm})
            checks: list[float] = []
            loads: list[float] = []
            step = math.ceil(len(mix) / turns)
            for n, start in enumerate(range(0, len(mix), step)):
                checks.append(cpu_check_ms())
                loads.append(round(os.getloadavg()[0], 2))
                for worker in (workers if n % 2 == 0 else workers[::-1]):
                    worker.run(mix[start:start + step])
                say(f"turn {n + 1}: cpu check {checks[-1]} ms, load {loads[-1]}; " + ", ".join(
                    f"{w.label} p50 {w.turns[-1]['p50_ms']} p95 {w.turns[-1]['p95_ms']}"
                    for w in workers))
            checks.append(cpu_check_ms())
            loads.append(round(os.getloadavg()[0], 2))
    finally:
        for worker in workers:
            worker.stop()
        if not db:
            if keep_db:
                say(f"database kept: {url.rsplit('/', 1)[1]}")
            else:
                generate.drop_database(admin_url, url)
    first, second = workers
    report.update({
        "cpu_check_ms": checks, "load_average_1m": loads,
        "rows": [{"side": w.label, **w.summary()} for w in workers],
        "b_over_a": {"p50": _ratio(second.turns, first.turns, "p50_ms"),
                     "p95": _ratio(second.turns, first.turns, "p95_ms")},
        "same_answers": first.answers == second.answers,
        "answers_differing": sum(x != y for x, y in zip(first.answers, second.answers,
                                                         strict=False)),
    })
    return show_and_write(report, "search_server_time_ab", ab_table, say, out_dir)


def ab_table(report: dict) -> str:
    lines = [f"{'side':<4} {'commit':<16} {'searches':>8} {'p50 ms':>8} {'p95 ms':>8} "
             f"{'max ms':>8} {'statements min–max (mean)':>26}"]
    for r, side in zip(report["rows"], report["sides"], strict=True):
        lines.append(f"{r['side']:<4} {side['commit']:<16} {r['searches']:>8} {r['median_ms']:>8} "
                     f"{r['p95_ms']:>8} {r['max_ms']:>8} "
                     f"{r['queries_min']}–{r['queries_max']} ({r['queries_mean']})".rjust(26))
    for key in ("p50", "p95"):
        if (ratio := report["b_over_a"][key]) is not None:
            lines.append(f"B/A {key} over {report['turns']} turns: ×{ratio['median']} "
                         f"[{ratio['min']}–{ratio['max']}]")
    lines.append(f"cpu check ms before each turn and at the end: {report['cpu_check_ms']}")
    lines.append(f"load average (1 min) likewise: {report['load_average_1m']}")
    lines.append("same answers: " + ("yes" if report["same_answers"] else
                                     f"NO ({report['answers_differing']} differ)"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=os.environ.get("TEST_POSTGRES_URL", generate.ADMIN_URL))
    parser.add_argument("--spaces", type=int, default=10_000)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--ab", nargs=2, metavar=("A", "B"),
                        help="A/B: two commits (or WORKTREE) on one database, alternating turns")
    parser.add_argument("--bookings", type=int, default=100_000, help="A/B: bookings generated")
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--db", help="A/B: an existing database to reuse (never dropped)")
    parser.add_argument("--keep-db", action="store_true", help="A/B: keep the generated database")
    args = parser.parse_args(argv)
    if args.ab:
        run_ab(*args.ab, admin_url=args.admin_url, db=args.db, spaces=args.spaces,
               bookings=args.bookings, searches=args.searches, warmup=args.warmup,
               turns=args.turns, keep_db=args.keep_db)
        return 0
    run(admin_url=args.admin_url, spaces=args.spaces,
        sizes=tuple(int(s) for s in args.sizes.split(",")), searches=args.searches,
        warmup=args.warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
