"""Per-request cost of the API's plumbing: two commits (or a commit and the work tree) in
alternating rounds, through Flask's test client, in-process, on a SQLite file.

    .venv/bin/python -m bench.api_overhead --a 6673ffa --b WORKTREE --rounds 6 --n 400

Each round runs one child process per side; a child builds its own app and data (one
space with a desk unit, a company user with a token), then times GET /api/v1/spaces/<id>
and POST /api/v1/bookings (a new Idempotency-Key each time, so every request books) and
GET /api/v1/spaces?lat&lon, and prints CPU microseconds per request (process time: the
machine is shared). The table gives each side's median over the rounds and B − A.
Issue 21's budget for the generated OpenAPI document: under 0.2 ms more per request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ("space_detail", "search", "create_booking")


def _tree(rev: str, into: Path) -> Path:
    if rev == "WORKTREE":
        return ROOT
    target = into / rev
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "booking", "tests", "seeds"],
                             check=False, capture_output=True)
    if archive.returncode != 0:  # an older or newer layout: without seeds/
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "booking", "tests"],
                                 check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def child(n: int, workdir: str) -> None:
    from datetime import timedelta

    from booking import clock, create_app
    from booking.extensions import db
    from booking.services import tokens
    from tests.factories import Factory

    app = create_app({
        "TESTING": True, "SECRET_KEY": "bench", "SERVER_NAME": "localhost",
        "PUBLIC_URL": "http://localhost", "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir}/bench.sqlite3",
        "UPLOAD_DIR": f"{workdir}/u", "MAIL_DIR": f"{workdir}/m",
    })
    with app.app_context():
        db.create_all()
        make = Factory(db.session)
        unit = make.unit(capacity=200)
        space_id = unit.space_id
        user = make.user(organisation=make.company())
        token, _ = tokens.issue(db.session, user, 24)
        db.session.commit()
        unit_id = unit.id
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    day = clock.today() + timedelta(days=7)
    # Every request books a seat: spread over days so that no day fills up.
    days = [(day + timedelta(days=i % 150)).isoformat() for i in range(n)]

    def space_detail(i: int):
        return client.get(f"/api/v1/spaces/{space_id}")

    def search(i: int):
        return client.get(f"/api/v1/spaces?lat=34.97&lon=138.38&date={day.isoformat()}")

    def create_booking(i: int):
        return client.post("/api/v1/bookings", json={"unit_id": unit_id, "date": days[i]},
                           headers={**headers, "Idempotency-Key": f"k{i}-{time.time_ns()}"})

    result = {}
    for name, call in (("space_detail", space_detail), ("search", search),
                       ("create_booking", create_booking)):
        for i in range(min(20, n)):  # warm up
            assert call(i).status_code in (200, 201), call(i).get_data(as_text=True)[:300]
        # CPU time of this process: the machine is shared, and the wall clock counts the
        # time other processes had the CPU (the database is a file of this process).
        started = time.process_time()
        for i in range(n):
            call(i)
        result[name] = (time.process_time() - started) / n * 1e6
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--a", default="HEAD~1")
    parser.add_argument("--b", default="WORKTREE")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.n, args.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="api-overhead-") as tmp:
        trees = {"A": _tree(args.a, Path(tmp)), "B": _tree(args.b, Path(tmp))}
        samples: dict[str, dict[str, list[float]]] = {s: {c: [] for c in CASES} for s in trees}
        for r in range(args.rounds):
            for side in (("A", "B") if r % 2 == 0 else ("B", "A")):
                workdir = Path(tmp) / f"run-{r}-{side}"
                workdir.mkdir()
                out = subprocess.run(
                    [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                     "from bench.api_overhead import child; child(int(sys.argv[2]), sys.argv[3])",
                     str(trees[side]), str(args.n), str(workdir)],
                    cwd=str(ROOT), env={"PYTHONPATH": f"{trees[side]}:{ROOT}",
                                        "PATH": "/usr/bin:/bin"},
                    check=True, capture_output=True, text=True)
                for case, us in json.loads(out.stdout.strip().splitlines()[-1]).items():
                    samples[side][case].append(us)
        print(f"A = {args.a}, B = {args.b}; {args.rounds} rounds × {args.n} requests, "
              "CPU µs per request (median of rounds)")
        print(f"{'case':16} {'A':>9} {'B':>9} {'B − A':>9}   spread of the rounds (max − min) A, B")
        for case in CASES:
            a, b = statistics.median(samples["A"][case]), statistics.median(samples["B"][case])
            spread = [max(samples[s][case]) - min(samples[s][case]) for s in ("A", "B")]
            print(f"{case:16} {a:9.1f} {b:9.1f} {b - a:+9.1f}   {spread[0]:.0f}, {spread[1]:.0f}")


if __name__ == "__main__":
    main()
