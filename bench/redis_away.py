"""How long requests take while the rate limits' Redis is up, stopped, and frozen.

    .venv/bin/python -m bench.redis_away [--rounds 20]

In one process (Flask's test client, a SQLite file in a temporary directory) with a
redis-server of its own on a free loopback port (the machine's Redis is not touched):
for each state of that Redis — up, stopped (terminated), frozen (SIGSTOP) — it times
wrong-password token requests, wrong-password log-ins and API bookings, and counts the
answers. Prints a table and writes JSON into bench/results/. Not a test: the figures
depend on the machine (password hashing alone is most of a log-in's time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import redis

RESULTS = Path(__file__).resolve().parent / "results"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis(port: int, directory: str) -> subprocess.Popen:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is not installed")
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", directory],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_timeout=1)
    for _ in range(200):
        try:
            if client.ping():
                return process
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def _summary(durations: list[float], answers: Counter) -> dict:
    ms = sorted(d * 1000 for d in durations)
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1),
            "max_ms": round(ms[-1], 1), "answers": dict(sorted(answers.items()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    from bench.stack import NO_COMPANY_LIMITS
    from booking import clock, create_app
    from booking.extensions import db
    from booking.models import OrgKind
    from booking.services import accounts, tokens

    work = tempfile.mkdtemp(prefix="redis-away-")
    port = _free_port()
    process = _start_redis(port, work)
    frozen = False
    try:
        app = create_app({
            "TESTING": True, "SECRET_KEY": "bench", "SERVER_NAME": "localhost",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{work}/bench.sqlite3",
            "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{port}/0",
            "MAIL_DIR": f"{work}/mail", "UPLOAD_DIR": f"{work}/uploads", "LOG_REQUESTS": False,
            **NO_COMPANY_LIMITS,
        })
        with app.app_context():
            db.create_all()
            from tests.factories import Factory

            make = Factory(db.session)
            company = make.company()
            booker = make.user("booker@example.jp", organisation=company)
            space = make.space(make.organisation(OrgKind.OPERATOR))
            unit = make.unit(space, capacity=10_000)
            secret, _ = tokens.issue(db.session, booker, 24)
            db.session.commit()
            assert accounts.authenticate(db.session, booker.email, Factory.PASSWORD)
            headers = {"Authorization": f"Bearer {secret}"}
            client = app.test_client()
            day = clock.today() + timedelta(days=10)
            results: dict[str, dict] = {}

            def timed(label: str, send) -> None:
                durations, answers = [], Counter()
                for i in range(args.rounds):
                    began = time.perf_counter()
                    status = send(i)
                    durations.append(time.perf_counter() - began)
                    answers[status] += 1
                results[label] = _summary(durations, answers)

            def run(state: str) -> None:
                # Each guess from its own address and account: nothing is refused for
                # being over a limit, so every request does the same work.
                timed(f"{state}: wrong token", lambda i: client.post(
                    "/api/v1/tokens", json={"email": f"{state}-{i}@example.jp",
                                            "password": "wrong-guess"},
                    environ_base={"REMOTE_ADDR": f"10.{len(state)}.1.{i}"}).status_code)
                timed(f"{state}: wrong log-in", lambda i: client.post(
                    "/account/login", data={"email": f"{state}-{i}@example.jp",
                                            "password": "wrong-guess"},
                    environ_base={"REMOTE_ADDR": f"10.{len(state)}.2.{i}"}).status_code)
                timed(f"{state}: booking", lambda i: client.post(
                    "/api/v1/bookings", headers=headers,
                    json={"unit_id": unit.id, "date": day.isoformat(), "seats": 1}).status_code)

            run("up")
            process.terminate()
            process.wait(timeout=10)
            run("stopped")
            process = _start_redis(port, work)
            time.sleep(app.config.get("RATELIMIT_REDIS_RETRY_SECONDS", 5) + 0.5)
            client.post("/api/v1/tokens", json={"email": "warm@example.jp", "password": "x"},
                        environ_base={"REMOTE_ADDR": "10.0.0.1"})  # counting in Redis again
            os.kill(process.pid, signal.SIGSTOP)
            frozen = True
            run("frozen")
    finally:
        if frozen:
            os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'':28} {'n':>4} {'p50 ms':>8} {'max ms':>8}  answers")
    for label, row in results.items():
        print(f"{label:28} {row['n']:>4} {row['p50_ms']:>8} {row['max_ms']:>8}  {row['answers']}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"redis_away-{int(time.time())}.json"
    out.write_text(json.dumps({"rounds": args.rounds, "results": results}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
