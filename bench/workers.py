"""The worker model by measurement: gunicorn configurations of one commit, in alternating rounds.

    .venv/bin/python -m bench.workers search book-many                      # the default grid
    .venv/bin/python -m bench.workers --configs sync:2,gthread4:2,gevent:2 search --rounds 4
    .venv/bin/python -m bench.workers --db bench_ab_0123456789 book-many    # a kept database

Each configuration is `CLASS:WORKERS`, CLASS one of `sync`, `gthread2`, `gthread4` (threads
per worker), `gevent`; it becomes WEB_CONCURRENCY, GUNICORN_THREADS and
GUNICORN_WORKER_CLASS of booking/gunicorn_conf.py, everything else as in production.
The runner is bench/ab.py's: one database (generated once, or `--db`), each configuration
books on units of its own, rounds of `--duration` seconds in an order that flips and
rotates every round, with the load average and the CPU check before each. The servers are
started in turn (`--servers in-turn`, the default here): a dozen servers at once would
hold more PostgreSQL connections than a shared machine can spare, and idle servers still
take memory. Ratios are to the first configuration.
"""

from __future__ import annotations

import argparse

from bench.ab import Side, add_common, resolve, run, settings_defaults, show, smoke
from bench.stack import write_results

GRID = ("sync:1,sync:2,sync:3,sync:5,gthread2:1,gthread2:2,gthread2:3,gthread2:5,"
        "gthread4:1,gthread4:2,gthread4:3,gthread4:5,gevent:1,gevent:2,gevent:3,gevent:5")


def config_env(config: str) -> dict[str, str]:
    kind, _, count = config.partition(":")
    workers = int(count or 1)
    if kind == "sync":
        return {"GUNICORN_WORKER_CLASS": "sync", "GUNICORN_THREADS": "1", "WEB_CONCURRENCY": str(workers)}
    if kind.startswith("gthread"):
        threads = int(kind.removeprefix("gthread") or 4)
        return {"GUNICORN_WORKER_CLASS": "gthread", "GUNICORN_THREADS": str(threads),
                "WEB_CONCURRENCY": str(workers)}
    if kind == "gevent":
        return {"GUNICORN_WORKER_CLASS": "gevent", "GUNICORN_THREADS": "1", "WEB_CONCURRENCY": str(workers)}
    raise SystemExit(f"unknown worker configuration {config!r} (sync:N, gthreadT:N, gevent:N)")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=GRID, help="comma-separated CLASS:WORKERS")
    parser.add_argument("--rev", default="HEAD", help="the commit to serve, or WORKTREE")
    parser.add_argument("--servers", choices=("together", "in-turn"), default="in-turn")
    add_common(parser)
    parser.set_defaults(rounds=3)
    args = parser.parse_args(argv)
    smoke(args)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    base = settings_defaults()
    commit = resolve(args.rev)
    sides = [Side(config, args.rev, commit, env={**base, **config_env(config)})
             for config in (c.strip() for c in args.configs.split(",")) if config]
    report = run(sides, args.benchmarks, args, kind="workers")
    show(report, sides)
    path = write_results("workers-smoke" if args.smoke else "workers", report)
    print(f"\nJSON: {path}")
    return report


if __name__ == "__main__":
    main()
