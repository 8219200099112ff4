"""Fault: the outbox worker killed in the middle of a send.

    .venv/bin/python -m bench.faults.worker_kill [--bookings 60 --kills 3]

Against a PostgreSQL server of its own, with gunicorn serving the app and a real SMTP
server on loopback (aiosmtpd) that takes --delay seconds to answer each message. Bookings
are made through the API with no worker running, so their confirmations wait in the
outbox. Then the worker (`flask outbox run` as its own process, timers shortened) is
started; each time the SMTP server has received a message and not yet answered it, the
worker is killed with SIGKILL and a new one started, --kills times; the last one runs to
the end.

The lease (how long a claimed message waits before another worker takes it up: 5 minutes
in production, booking.services.mail.LEASE, a module constant rather than a setting) is
shortened to --lease seconds (default 3) by bench/faults/outbox_worker.py, so that a
killed worker's message comes back in seconds; the report states both.

Passes when: every queued confirmation is delivered (none lost) and duplicates are at most
one per kill: only the messages the killed workers were sending were received twice, each
at most twice — the message whose answer the killed worker never read, which SMTP's
at-least-once delivery forces to be sent again.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench import scenario as scenario_mod
from bench.faults.common import MailSink, OutboxWorker, delivery_report, outbox_state, wait_until
from bench.load import book_all, summary
from bench.stack import AppServer, OwnPostgres, app_environment, machine, print_table, write_results


def run(*, bookings: int = 60, kills: int = 3, delay: float = 0.3, lease: float = 3.0,
        deliver_timeout: float = 120) -> dict:
    from booking.services import mail as mail_service

    report: dict = {"check": "worker_kill", "machine": machine(), "settings": {
        "bookings": bookings, "kills": kills, "smtp_delay_s": delay, "lease_s": lease,
        "production_lease_s": mail_service.LEASE.total_seconds(),
        "lease_note": f"lease shortened to {lease:g} s for the drill (production "
                      f"{mail_service.LEASE.total_seconds():g} s, booking.services.mail.LEASE)"}}
    with tempfile.TemporaryDirectory(prefix="fault-worker-") as tmp, OwnPostgres() as pg, \
            MailSink(delay=delay) as sink:
        database_url = pg.create_database("booking")
        app = scenario_mod.app_for(database_url)
        scenario_mod.create_schema(app)
        sc = scenario_mod.prepare(app, units=10, capacity=50, days=5, hot_capacity=1,
                                  feed_bookings=0)
        _dispose(app)
        env = app_environment(database_url, RATELIMIT_ENABLED="false",
                              MAIL_URL=f"smtp://127.0.0.1:{sink.port}", BOOKING_INSTANCE_DIR=tmp,
                              MAIL_DIR=str(Path(tmp) / "mail"), LOG_REQUESTS="false")
        bodies = [{"unit_id": sc.unit_ids[i % len(sc.unit_ids)],
                   "date": sc.dates[(i // len(sc.unit_ids)) % len(sc.dates)], "seats": 1}
                  for i in range(bookings)]
        with AppServer(env, workers=2, threads=2, name="worker-fault",
                       log_path=Path(tmp) / "gunicorn.log") as server:
            outcomes = book_all([server.url], sc.token, bodies, threads=4)
        queued = outbox_state(database_url)

        worker = OutboxWorker(env, lease=lease, retry=1, log_path=Path(tmp) / "worker.log")
        killed_mid_send = 0
        in_flight: list[str] = []  # the Message-ID each killed worker was sending
        started = time.monotonic()
        worker.start()
        try:
            for _ in range(kills):
                # Let it send a few, then catch it while the server holds a message.
                target = len(sink.messages) + 3
                wait_until(lambda target=target: len(sink.messages) >= target, timeout=60, step=0.05)
                if sink.receiving.wait(timeout=30):
                    worker.kill()
                    in_flight.append(sink.last_message_id())
                    killed_mid_send += 1
                    worker.start()
            done = wait_until(lambda: outbox_state(database_url)["waiting"] == 0,
                              timeout=deliver_timeout, step=0.3)
            finished = time.monotonic()
            time.sleep(1)
        finally:
            worker.stop()
        mail = delivery_report(sink, database_url)
        received = sink.counts()

    duplicated = {mid: n - 1 for mid, n in received.items() if n > 1}
    report.update({
        "killed_while_sending": in_flight, "duplicated": duplicated,
        "load": summary(outcomes), "queued_before_worker": queued,
        "kills_mid_send": killed_mid_send, "worker_starts": worker.starts,
        "mail": {**mail, "all_delivered_in_s": round(finished - started, 2) if done else None},
    })
    checks = {
        "bookings_made": summary(outcomes)["final"] == {"201": bookings},
        "killed_mid_send": killed_mid_send == kills,
        "no_mail_lost": done and mail["lost"] == 0 and mail["delivered_distinct"] == mail["queued"]
        == bookings,
        "duplicates_at_most_one_per_kill": mail["duplicates"] <= killed_mid_send
        and all(n == 1 for n in duplicated.values()) and set(duplicated) <= set(in_flight),
    }
    report["checks"] = checks
    report["passed"] = all(checks.values())
    return report


def _dispose(app) -> None:
    from booking.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def show(report: dict) -> None:
    mail = report["mail"]
    rows = [
        {"what": "bookings (201)", "value": report["load"]["created"]},
        {"what": "mails queued", "value": mail["queued"]},
        {"what": "workers killed mid-send", "value": report["kills_mid_send"]},
        {"what": "mails delivered (distinct)", "value": mail["delivered_distinct"],
         "detail": f"messages received {mail['delivered_messages']}, lost {mail['lost']}, "
                   f"duplicates {mail['duplicates']}"},
        {"what": "all delivered in (s)", "value": mail["all_delivered_in_s"]},
    ]
    rows.append({"what": "lease (s)", "value": report["settings"]["lease_s"],
                 "detail": report["settings"]["lease_note"]})
    print_table("Fault: outbox worker killed mid-send", rows,
                [("what", "what"), ("value", "value"), ("detail", "detail")])
    for name, ok in report["checks"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="The outbox worker killed mid-send.")
    parser.add_argument("--bookings", type=int, default=60)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.3, help="SMTP answer delay, seconds")
    parser.add_argument("--lease", type=float, default=3.0,
                        help="lease of a claimed message, seconds (production: 300)")
    args = parser.parse_args(argv)
    report = run(bookings=args.bookings, kills=args.kills, delay=args.delay, lease=args.lease)
    show(report)
    print(f"\nJSON: {write_results('fault-worker-kill', report)}")
    if not report["passed"]:
        raise SystemExit(1)
    return report


if __name__ == "__main__":
    main()
