"""A/B: one HTTP benchmark against two commits, in alternating rounds on one database.

    .venv/bin/python -m bench.ab --a main --b WORKTREE search book-many
    .venv/bin/python -m bench.ab --a HEAD~3 --b HEAD book-hot --hot-capacity 100 --rounds 8
    .venv/bin/python -m bench.ab --a main --b WORKTREE search --keep-db   # prints the database's name
    .venv/bin/python -m bench.ab --a main --b WORKTREE search --db bench_ab_0123456789

This machine's speed drifts within minutes, so figures from two runs at different times
compare moments, not code. Here both sides run in the same minutes:

- Each commit is checked out into a git worktree of its own (`git worktree add --detach`,
  in a temporary folder, removed at the end); `WORKTREE` is the checkout this runs from,
  uncommitted changes included. Both use the same venv (.venv), their own folder first on
  the import path.
- One database on the machine's PostgreSQL, made once by bench/generate.py (`--spaces`,
  `--bookings`) with the schema of this checkout, or an existing one (`--db`; `--keep-db`
  keeps the one made). Each side's models are compared with the database's tables first:
  a side that needs a table or column the database lacks, or that would not fill a NOT
  NULL column it does not know, is refused with the differences; extra tables or nullable
  columns the older side does not know are reported and allowed.
- Each side gets its own benchmark scenario (bench/scenario.py: a Tokyo desk space with
  `--units` units, a booking company and its API token) and books only its own units, so
  both sides book into the same kind of state and neither fills the other's days; both
  read the same data (searches, space pages, the first side's 1,000-booking feed).
- book-hot: each side and round rushes a fresh hot unit of `--hot-capacity` seats (made
  before the servers start, so no catalogue change happens during the rounds); each must
  end with exactly its capacity in the table and exactly that many 201 answers.
- Both servers run the same gunicorn settings (`--workers`, `--threads`, default: this
  checkout's booking/gunicorn_conf.py defaults, passed explicitly to both) on ports of
  their own; or, with `--own-settings`, each its own commit's defaults (the code as it
  ships, worker model included: an older commit's settings file may default to another).
  Rounds of `--duration` seconds alternate A B B A A B … (the order flips every
  round, so neither side always goes first after the other); before each round the load
  average and `cpu_check_ms` (the fixed Python loop of bench/search_server_time.py) are
  recorded.

Printed per benchmark and side: median req/s, wrk's p50/p95 latency, the server's own time
(p50/p95 of the access log's `duration_ms`), and B/A ratios with their spread over the
round pairs (median [min–max]). JSON goes into bench/results/ab-*.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from bench import scenario as scenario_mod
from bench.run_all import BENCHMARKS, request_lists, settle, warm
from bench.stack import (
    ADMIN_URL,
    ROOT,
    AppServer,
    RedisNamespace,
    app_environment,
    gunicorn_arguments,
    machine,
    percentile,
    print_table,
    run_wrk,
    write_requests,
    write_results,
    wrk_available,
)

WORKTREE = "WORKTREE"
CHOICES = ("floor", *BENCHMARKS)


@dataclass
class Side:
    """One server under test: a checkout and the gunicorn settings it runs with."""

    label: str
    rev: str  # as given
    commit: str  # resolved (WORKTREE: HEAD plus the uncommitted changes)
    tree: Path = ROOT
    env: dict[str, str] = field(default_factory=dict)
    server: AppServer | None = None
    scenario: scenario_mod.Scenario | None = None
    hot_units: list[int] = field(default_factory=list)
    lists: dict[str, Path] = field(default_factory=dict)
    schema_note: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- git


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()


def resolve(rev: str) -> str:
    if rev == WORKTREE:
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        return git("rev-parse", "--short", "HEAD") + ("+changes" if dirty else "")
    return git("rev-parse", "--short", "--verify", f"{rev}^{{commit}}")


@contextlib.contextmanager
def worktrees(sides: list[Side], folder: Path) -> Iterator[None]:
    """A detached git worktree per side that names a commit; removed afterwards."""
    made: dict[str, Path] = {}
    try:
        for side in sides:
            if side.rev == WORKTREE:
                side.tree = ROOT
                continue
            if side.commit not in made:  # sides of one commit share its worktree
                path = folder / f"tree-{len(made) + 1}-{side.commit}"
                git("worktree", "add", "--detach", str(path), side.commit)
                made[side.commit] = path
            side.tree = made[side.commit]
        yield
    finally:
        for path in made.values():
            with contextlib.suppress(subprocess.CalledProcessError):
                git("worktree", "remove", "--force", str(path))
        with contextlib.suppress(subprocess.CalledProcessError):
            git("worktree", "prune")


# --------------------------------------------------------------------------- schema

_MODEL_SCHEMA = """
import json
from booking.models import Base
print(json.dumps({t.name: sorted(c.name for c in t.columns) for t in Base.metadata.sorted_tables}))
"""


def model_schema(tree: Path) -> dict[str, list[str]]:
    """Tables and columns of a checkout's models (run in that checkout)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", _MODEL_SCHEMA], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"cannot read the models of {tree}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def database_schema(url: str) -> dict[str, dict[str, bool]]:
    """{table: {column: required}}: required = NOT NULL without a default or identity."""
    out: dict[str, dict[str, bool]] = {}
    with psycopg.connect(url) as conn:
        for table, column, nullable, default, identity in conn.execute(
                "SELECT table_name, column_name, is_nullable, column_default, is_identity "
                "FROM information_schema.columns WHERE table_schema = 'public'"):
            required = nullable == "NO" and default is None and identity != "YES"
            out.setdefault(table, {})[column] = required
    return out


def schema_check(side_tables: dict[str, list[str]], database: dict[str, dict[str, bool]]
                 ) -> tuple[list[str], list[str]]:
    """(refusals, notes) of running a side's code on the database."""
    refusals: list[str] = []
    notes: list[str] = []
    for table, columns in side_tables.items():
        if table not in database:
            refusals.append(f"table {table} is not in the database")
            continue
        for column in columns:
            if column not in database[table]:
                refusals.append(f"column {table}.{column} is not in the database")
        for column, required in database[table].items():
            if column not in columns:
                (refusals if required else notes).append(
                    f"column {table}.{column} ({'NOT NULL, no default' if required else 'nullable'})"
                    " unknown to this side")
    for table in database:
        if table not in side_tables and table != "alembic_version":
            notes.append(f"table {table} unknown to this side")
    return refusals, notes


def check_schemas(sides: list[Side], schemas: list[dict], database: dict) -> dict[str, list[str]]:
    refusals = {}
    for side, tables in zip(sides, schemas, strict=True):
        problems, side.schema_note = schema_check(tables, database)
        if problems:
            refusals[side.label] = problems
    return refusals


_CREATE_TABLES = """
import sys
import sqlalchemy as sa
from booking.models import Base
engine = sa.create_engine(sys.argv[1])
Base.metadata.create_all(engine, tables=[Base.metadata.tables[t] for t in sys.argv[2:]])
engine.dispose()
"""


def create_tables(tree: Path, url: str, tables: list[str]) -> None:
    """Create the given tables of a checkout's models in the database (run in that checkout)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", _CREATE_TABLES,
                           url.replace("postgresql://", "postgresql+psycopg://", 1), *tables],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"cannot add the tables {tables} of {tree}: {done.stderr[-2000:]}")


# --------------------------------------------------------------------------- database


@contextlib.contextmanager
def bench_database(args) -> Iterator[tuple[str, dict]]:
    """The shared database: an existing one (--db), or a new one generated here."""
    base = ADMIN_URL.rsplit("/", 1)[0]
    if args.db:
        url = f"{base}/{args.db}"
        with psycopg.connect(url) as conn:
            spaces, bookings = conn.execute(
                "SELECT (SELECT count(*) FROM spaces), (SELECT count(*) FROM bookings)").fetchone() or (0, 0)
        yield url, {"database": args.db, "reused": True, "spaces": spaces, "bookings": bookings}
        return
    name = f"bench_ab_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{base}/{name}"
    try:
        from bench import generate

        started = time.monotonic()
        app = scenario_mod.app_for(url)
        scenario_mod.create_schema(app)
        dispose(app)
        stats = generate.generate_spaces(url, spaces=args.spaces, seed=1)
        added = generate.add_bookings(url, args.bookings, seed=1) if args.bookings else 0
        yield url, {"database": name, "reused": False, "spaces": stats.spaces, "units": stats.units,
                    "bookings": added, "generated_in_s": round(time.monotonic() - started, 1)}
    finally:
        if args.keep_db:
            print(f"\ndatabase kept: {name} (reuse with --db {name}; "
                  f"drop with: psql -h 127.0.0.1 -U postgres -c 'DROP DATABASE {name}')")
        else:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def dispose(app) -> None:
    from booking.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def make_hot_units(app, sc: scenario_mod.Scenario, count: int, capacity: int) -> list[int]:
    """Fresh hot units in the side's own space, one per round."""
    import sqlalchemy as sa

    from booking.extensions import db
    from booking.models import PricePer, Space, Unit, UnitKind

    with app.app_context():
        space_id = db.session.scalar(sa.select(Space.id).where(Space.slug == sc.space_slug))
        units = [Unit(space_id=space_id, name=f"コアデイ・ホール{i + 2}", kind=UnitKind.DESK,
                      capacity=capacity, price_amount=0, price_per=PricePer.DAY) for i in range(count)]
        db.session.add_all(units)
        db.session.commit()
        return [u.id for u in units]


# --------------------------------------------------------------------------- rounds


def cpu_check() -> float:
    from bench.search_server_time import cpu_check_ms

    return cpu_check_ms()


def access_times(path: Path, start: int) -> tuple[list[float], int]:
    """duration_ms of the access-log lines written since byte `start`; the new end."""
    values: list[float] = []
    with path.open("rb") as log:
        log.seek(start)
        data = log.read()
    for line in data.decode("utf-8", "replace").splitlines():
        if '"booking.access"' not in line:
            continue
        with contextlib.suppress(ValueError, KeyError, TypeError):
            values.append(float(json.loads(line)["duration_ms"]))
    return values, start + len(data)


def hot_round(app, side: Side, unit_id: int, figures: dict, capacity: int) -> dict:
    sc = side.scenario
    assert sc is not None
    held = scenario_mod.booked_seats(app, unit_id, sc.hot_date)
    created = figures["statuses"].get("201", 0)
    seconds = scenario_mod.sell_out_seconds(app, unit_id, sc.hot_date)
    return {"unit_id": unit_id, "capacity": capacity, "seats_in_db": held["seats"],
            "answered_201": created, "exactly_capacity": held["seats"] == capacity == created,
            "sold_out_in_s": seconds,
            "seats_per_s": round(created / seconds, 1) if seconds else None}


def start_server(side: Side, base_env: dict[str, str], folder: Path, warm_per_kind: int) -> None:
    own = folder / side.label.replace(" ", "_")
    own.mkdir(exist_ok=True)
    env = {**base_env, "MAIL_DIR": str(own / "mail"), "BOOKING_INSTANCE_DIR": str(own), **side.env}
    if side.server is None:
        side.server = AppServer(env, log_path=own / "gunicorn.log", name=side.label.replace(" ", "-"),
                                tree=side.tree)
    side.server.start(timeout=120)
    assert side.scenario is not None
    answers = warm(side.server, side.lists, side.scenario.token, per_kind=warm_per_kind)["statuses"]
    bad = {code: n for code, n in answers.items() if code.startswith("5") or code == "0"}
    if bad:
        side.server.stop()
        raise RuntimeError(f"side {side.label} answers 5xx when warming up ({answers}):\n"
                           f"{side.server.log_tail()}")
    settle(side.server, quiet=0.5)


def measure(app, side: Side, name: str, r: int, args, folder: Path) -> dict:
    """One benchmark on one side for one round, with the load average and the CPU check
    taken just before it and the server's own times of exactly its requests."""
    server, sc = side.server, side.scenario
    assert server is not None and sc is not None
    load = [round(x, 2) for x in os.getloadavg()]
    cpu = cpu_check()
    requests = side.lists[name]
    if name == "book-hot":
        unit_id = side.hot_units[r]
        body = json.dumps({"unit_id": unit_id, "date": sc.hot_date, "seats": 1})
        requests = write_requests(folder / f"hot-{side.label}-{r}.txt".replace(" ", "_"),
                                  [("POST", "/api/v1/bookings", body)])
    _, start = access_times(server.log_path, server.log_path.stat().st_size)
    figures = run_wrk(server.url, requests, duration=args.duration, connections=args.connections,
                      threads=args.wrk_threads, token=sc.token, timeout=args.timeout)
    # The requests still in flight end too (so the next measurement starts on a quiet
    # server: start_server() settles before the first).
    settle(server, quiet=args.settle)
    times, _ = access_times(server.log_path, start)
    record = {"round": r, "side": side.label, "benchmark": name, "load_average": load,
              "cpu_check_ms": cpu, **figures,
              "server_ms": {"requests": len(times), "p50": percentile(times, 0.5),
                            "p95": percentile(times, 0.95)}}
    if name == "book-hot":
        record["check"] = hot_round(app, side, unit_id, figures, args.hot_capacity)
    return record


def progress(record: dict, args) -> str:
    line = (f"  round {record['round'] + 1}/{args.rounds} {record['side']:>10} {record['benchmark']:<9} "
            f"{record['rps']:8.1f} req/s  p50 {record['latency_ms']['p50']:7.1f} ms  "
            f"p95 {record['latency_ms']['p95']:7.1f} ms  server p50 {record['server_ms']['p50']} ms  "
            f"load {record['load_average'][0]}  cpu {record['cpu_check_ms']} ms")
    if "check" in record:
        check = record["check"]
        line += f"  sold {check['answered_201']}/{check['capacity']} at {check['seats_per_s']}/s"
    return line


def run_rounds(app, sides: list[Side], benchmarks: list[str], args, base_env: dict[str, str],
               folder: Path, failures: list[dict], say=print) -> list[dict]:
    """Every round: each side (order flipped every round) runs each benchmark once."""
    records: list[dict] = []
    together = args.servers == "together"
    warm_per_kind = args.warm
    if together:
        with ThreadPoolExecutor(max_workers=len(sides)) as pool:
            list(pool.map(lambda s: start_server(s, base_env, folder, warm_per_kind), sides))
    try:
        for r in range(args.rounds):
            order = sides if r % 2 == 0 else list(reversed(sides))
            if len(sides) > 2:  # many sides: rotate as well, so each goes first in turn
                shift = (r // 2) % len(sides)
                order = order[shift:] + order[:shift]
            for side in order:
                # A side that fails (a worker killed by its timeout on an overloaded
                # machine, a refused warm-up) loses that round, not the run.
                try:
                    if not together:
                        start_server(side, base_env, folder, warm_per_kind)
                    for name in benchmarks:
                        record = measure(app, side, name, r, args, folder)
                        records.append(record)
                        say(progress(record, args))
                except (RuntimeError, OSError) as error:
                    failures.append({"round": r, "side": side.label, "error": str(error)[-2000:]})
                    say(f"  round {r + 1}/{args.rounds} {side.label:>10} FAILED: {str(error)[:300]}")
                finally:
                    if not together and side.server is not None:
                        side.server.stop()
    finally:
        for side in sides:
            if side.server is not None:
                side.server.stop()
    return records


# --------------------------------------------------------------------------- summary


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def _ratios(pairs: list[tuple]) -> dict | None:
    values = sorted(b / a for a, b in pairs if a and b is not None and a is not None)
    if not values:
        return None
    return {"median": round(statistics.median(values), 3), "min": round(values[0], 3),
            "max": round(values[-1], 3), "pairs": len(values)}


def summarise(records: list[dict], sides: list[Side], benchmarks: list[str]) -> dict:
    """Per benchmark and side: medians over rounds; per side after the first: ratios to the
    first side over the pairs of rounds with the same number."""
    out: dict = {}
    metrics = {"rps": lambda x: x["rps"], "p50": lambda x: x["latency_ms"]["p50"],
               "p95": lambda x: x["latency_ms"]["p95"], "server_p50": lambda x: x["server_ms"]["p50"],
               "server_p95": lambda x: x["server_ms"]["p95"],
               "seats_per_s": lambda x: (x.get("check") or {}).get("seats_per_s")}
    for name in benchmarks:
        by_side = {s.label: {x["round"]: x for x in records
                             if x["side"] == s.label and x["benchmark"] == name} for s in sides}
        first = by_side[sides[0].label]
        table = {}
        for side in sides:
            rounds = by_side[side.label]
            row: dict = {key: _median([get(x) for x in rounds.values()]) for key, get in metrics.items()}
            row["rounds"] = len(rounds)
            row["statuses"] = {}
            for x in rounds.values():
                for code, n in x["statuses"].items():
                    row["statuses"][code] = row["statuses"].get(code, 0) + n
            row["cpu_check_ms"] = [x["cpu_check_ms"] for x in rounds.values()]
            row["load_average_1m"] = [x["load_average"][0] for x in rounds.values()]
            if name == "book-hot":
                row["all_exactly_capacity"] = all(x["check"]["exactly_capacity"] for x in rounds.values())
            if side is not sides[0]:
                row["ratio"] = {key: _ratios([(get(first[r]), get(rounds[r])) for r in rounds if r in first])
                                for key, get in metrics.items()}
            table[side.label] = row
        out[name] = table
    return out


def _span(values: list[float]) -> str:
    return f"{min(values)}–{max(values)}" if values else "-"


def show(report: dict, sides: list[Side]) -> None:
    first = sides[0].label
    for name, table in report["summary"].items():
        rows = []
        for label, row in table.items():
            ratio = row.get("ratio") or {}

            def cell(key: str, ratio=ratio) -> str:
                r = ratio.get(key)
                return f"{r['median']:.2f} [{r['min']:.2f}–{r['max']:.2f}]" if r else "-"

            rows.append({"side": label, "rps": row["rps"], "p50": row["p50"], "p95": row["p95"],
                         "sp50": row["server_p50"], "sp95": row["server_p95"],
                         "x_rps": cell("rps"), "x_p95": cell("p95"), "x_sp50": cell("server_p50"),
                         "seats": row["seats_per_s"], "x_seats": cell("seats_per_s"),
                         "cpu": _span(row["cpu_check_ms"]), "load": _span(row["load_average_1m"]),
                         "statuses": row["statuses"]})
        columns = [("side", "side"), ("rps", "req/s"), ("x_rps", f"x {first} [spread]"),
                   ("p50", "p50 ms"), ("p95", "p95 ms"), ("x_p95", f"p95 x {first}"),
                   ("sp50", "server p50"), ("sp95", "server p95"), ("x_sp50", f"server p50 x {first}")]
        if name == "book-hot":
            columns += [("seats", "seats/s"), ("x_seats", f"seats/s x {first}")]
        columns += [("cpu", "cpu_check ms"), ("load", "load 1m"), ("statuses", "statuses")]
        print_table(f"{name}: medians over up to {max(r['rounds'] for r in table.values())} rounds "
                    f"of {report['settings']['duration']} s (ratios: median [min–max] over round pairs)",
                    rows, columns)
        if name == "book-hot":
            for label, row in table.items():
                print(f"  {label}: every round ended at exactly the capacity: {row['all_exactly_capacity']}")
    for failure in report.get("failures", []):
        print(f"FAILED: round {failure['round'] + 1}, {failure['side']}: {failure['error'][:300]}")


# --------------------------------------------------------------------------- the run


def settings_defaults(tree: Path = ROOT) -> dict[str, str]:
    """A checkout's gunicorn defaults (this one's are given to every side explicitly unless
    --own-settings: an older commit's settings file may default differently, and then
    the comparison is of the code alone)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GUNICORN_", "WEB_CONCURRENCY"))}
    env["PYTHONPATH"] = str(tree)
    conf = gunicorn_arguments(tree)[1].removeprefix("python:")  # module, or the old file
    load = (f"import importlib\nc = importlib.import_module({conf!r})" if conf.startswith("booking")
            else f"import runpy, types\nc = types.SimpleNamespace(**runpy.run_path({conf!r}))")
    code = (f"import json\n{load}\n"
            "print(json.dumps({'WEB_CONCURRENCY': c.workers, 'GUNICORN_THREADS': c.threads,"
            " 'GUNICORN_WORKER_CLASS': c.worker_class, 'GUNICORN_MAX_REQUESTS': c.max_requests}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=60)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return {k: str(v) for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def run(sides: list[Side], benchmarks: list[str], args, kind: str = "ab") -> dict:
    if not wrk_available():
        sys.exit("wrk is not installed: apt-get install --no-upgrade wrk")
    # A TERM (a background run stopped with kill) unwinds like ^C: servers stopped, the
    # worktrees removed, the database dropped unless kept.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report: dict = {"kind": kind, "machine": machine(), "settings": vars(args).copy(),
                    "benchmarks": benchmarks}
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp, \
            worktrees(sides, Path(tmp)), bench_database(args) as (url, data), \
            RedisNamespace() as redis_ns:
        folder = Path(tmp)
        report["data"] = data
        database = database_schema(url)
        with ThreadPoolExecutor(max_workers=len(sides)) as pool:
            schemas = list(pool.map(lambda side: model_schema(side.tree), sides))
        refusals = check_schemas(sides, schemas, database)
        # Tables only one side has (an older side's table the newer schema dropped) are
        # added from that side's models; the other side never reads them.
        added = []
        for side, tables in zip(sides, schemas, strict=True):
            missing = [t for t in tables if t not in database]
            if missing and all(p.startswith("table ") for p in refusals.get(side.label, [])):
                create_tables(side.tree, url, missing)
                added += [f"table {t} added for side {side.label} (its own models)" for t in missing]
        if added:
            database = database_schema(url)
            refusals = check_schemas(sides, schemas, database)
            for side in sides:
                side.schema_note = [*added, *side.schema_note]
        if refusals:
            for label, problems in refusals.items():
                print(f"side {label}: its models do not fit the database:\n  " + "\n  ".join(problems))
            sys.exit("schemas differ in a way one side cannot run on: refused (run the sides "
                     "on a database of the newer schema only if the older code can use it)")
        app = scenario_mod.app_for(url)
        try:
            for i, side in enumerate(sides):
                side.scenario = scenario_mod.prepare(
                    app, units=args.units, capacity=args.capacity, hot_capacity=args.hot_capacity,
                    feed_bookings=args.feed_bookings if i == 0 else 0, seed=2019 + i)
                if "book-hot" in benchmarks:
                    side.hot_units = make_hot_units(app, side.scenario, args.rounds, args.hot_capacity)
                own = folder / f"lists-{i}"
                own.mkdir()
                lists = request_lists(side.scenario, own, random.Random(2019))
                first = sides[0].scenario
                assert first is not None
                # The same reads on every side: the first side's feed, the same search mix.
                lists["ics"] = write_requests(own / "ics-shared.txt", [("GET", first.feed_path, "")])
                side.lists = lists
            base_env = app_environment(url, REDIS_URL=redis_ns.url, RATELIMIT_KEY_PREFIX=redis_ns.prefix,
                                       RATELIMIT_ENABLED="false", LOG_REQUESTS="true")
            for s in sides:
                s.env = s.env or settings_defaults(s.tree)  # --own-settings: as it ships
            report["sides"] = [{"label": s.label, "rev": s.rev, "commit": s.commit, "env": s.env,
                                "schema_notes": s.schema_note} for s in sides]
            for s in sides:
                for note in s.schema_note:
                    print(f"schema, side {s.label}: {note}")
            print(f"data: {data}")
            print("sides: " + "; ".join(f"{s.label} = {s.rev} ({s.commit}) {s.env}" for s in sides))
            report["failures"] = []
            records = run_rounds(app, sides, benchmarks, args, base_env, folder, report["failures"])
            report["rounds"] = records
            report["summary"] = summarise(records, sides, benchmarks)
            report["over_capacity"] = scenario_mod.over_capacity(
                app, [u for s in sides if s.scenario for u in [*s.scenario.unit_ids, *s.hot_units]])
        finally:
            dispose(app)
    report["redis_keys_left"] = len(redis_ns.keys())
    return report


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("benchmarks", nargs="+", choices=CHOICES, metavar="benchmark",
                        help=f"one or more of: {', '.join(CHOICES)}")
    parser.add_argument("--rounds", type=int, default=6, help="rounds (each side once per benchmark)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per side and round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30, help="wrk: seconds before a request times out")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds without a new access-log line before the next round")
    parser.add_argument("--warm", type=int, default=16, help="warm-up requests of each kind per start")
    parser.add_argument("--db", default=None, help="an existing database to use (not dropped)")
    parser.add_argument("--keep-db", action="store_true", help="keep the generated database")
    parser.add_argument("--spaces", type=int, default=10_000)
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--units", type=int, default=200, help="desk units of each side's scenario")
    parser.add_argument("--capacity", type=int, default=20)
    parser.add_argument("--hot-capacity", type=int, default=100, help="seats of each round's hot unit")
    parser.add_argument("--feed-bookings", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny data, 2 rounds of 1 s, 4 connections (the test suite's check)")


def smoke(args: argparse.Namespace) -> None:
    if args.smoke:
        args.rounds, args.duration, args.connections, args.settle, args.warm = 2, 1, 4, 0.3, 4
        args.spaces, args.bookings, args.units, args.capacity = 30, 300, 6, 50
        args.hot_capacity, args.feed_bookings = 3, 20


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="a commit (branch, tag, sha) or WORKTREE")
    parser.add_argument("--b", default=WORKTREE, help="a commit or WORKTREE (default)")
    parser.add_argument("--workers", type=int, default=None,
                        help="WEB_CONCURRENCY of both sides (default: booking/gunicorn_conf.py's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="GUNICORN_THREADS of both sides (default: booking/gunicorn_conf.py's)")
    parser.add_argument("--own-settings", action="store_true",
                        help="each side with its own commit's gunicorn defaults (no override)")
    parser.add_argument("--servers", choices=("together", "in-turn"), default="together",
                        help="both servers up all along, or each started for its turn only")
    add_common(parser)
    args = parser.parse_args(argv)
    smoke(args)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    gunicorn = settings_defaults()
    if args.workers is not None:
        gunicorn["WEB_CONCURRENCY"] = str(args.workers)
    if args.threads is not None:
        gunicorn["GUNICORN_THREADS"] = str(args.threads)
        gunicorn["GUNICORN_WORKER_CLASS"] = "gthread" if args.threads > 1 else "sync"
    if args.smoke:
        gunicorn.update(WEB_CONCURRENCY="1", GUNICORN_THREADS="2", GUNICORN_WORKER_CLASS="gthread")
    if args.own_settings:
        if args.workers is not None or args.threads is not None:
            sys.exit("--own-settings takes no --workers or --threads")
        gunicorn = {}
    sides = [Side("A", args.a, resolve(args.a), env=dict(gunicorn)),
             Side("B", args.b, resolve(args.b), env=dict(gunicorn))]
    report = run(sides, args.benchmarks, args)
    show(report, sides)
    print(f"\nover capacity anywhere: {len(report['over_capacity'])}; "
          f"Redis keys left: {report['redis_keys_left']}")
    path = write_results("ab-smoke" if args.smoke else "ab", report)
    print(f"\nJSON: {path}")
    return report


if __name__ == "__main__":
    main()
