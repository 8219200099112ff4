"""Fault: the SMTP server stopped during a booking load.

    .venv/bin/python -m bench.faults.smtp_outage [--requests 300 --outage 4]

Against a PostgreSQL server of its own, with gunicorn serving the app, the outbox worker
running as its own process (`flask outbox run`, timers shortened: bench/faults/
outbox_worker.py) and a real SMTP server on loopback (aiosmtpd). Clients book through the
API; once mail is flowing (the SMTP server has received at least one confirmation) and
while bookings are still being made, the SMTP server is stopped, kept down for --outage
seconds, and started again on the same port.

Outcomes are counted by the outbox rows' final states (booking/services/mail.py): sent
(sent_at), parked (failed_at: given up after MAIL_MAX_ATTEMPTS, set explicitly here), or
still waiting; a row sent after more than one attempt is one that met the outage.

Passes when: no booking failed (every request answered 201); SMTP was stopped with mail
flowing and bookings still coming; the outage was really hit (sends failed while it was
down); afterwards every confirmation row is sent (none parked, none waiting: sent =
queued = requests) and the SMTP server received each exactly once (none lost, no
duplicates).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from bench import scenario as scenario_mod
from bench.faults.common import (
    MailSink,
    OutboxWorker,
    background,
    delivery_report,
    outbox_final_states,
    query,
    wait_until,
)
from bench.load import book_all, summary
from bench.stack import AppServer, OwnPostgres, app_environment, machine, print_table, write_results

MAX_ATTEMPTS = 30  # MAIL_MAX_ATTEMPTS (production's default): an outage of seconds parks nothing


def run(*, requests: int = 300, threads: int = 6, outage: float = 4.0, deliver_timeout: float = 90,
        workers: int = 2, app_threads: int = 4) -> dict:
    report: dict = {"check": "smtp_outage", "machine": machine(), "settings": {
        "requests": requests, "threads": threads, "outage_s": outage,
        "mail_max_attempts": MAX_ATTEMPTS}}
    with tempfile.TemporaryDirectory(prefix="fault-smtp-") as tmp, OwnPostgres() as pg, \
            MailSink() as sink:
        database_url = pg.create_database("booking")
        app = scenario_mod.app_for(database_url)
        scenario_mod.create_schema(app)
        sc = scenario_mod.prepare(app, units=30, capacity=50, days=5, hot_capacity=1,
                                  feed_bookings=0)
        _dispose(app)
        env = app_environment(database_url, RATELIMIT_ENABLED="false",
                              MAIL_URL=f"smtp://127.0.0.1:{sink.port}", BOOKING_INSTANCE_DIR=tmp,
                              MAIL_DIR=str(Path(tmp) / "mail"), LOG_REQUESTS="false",
                              MAIL_MAX_ATTEMPTS=str(MAX_ATTEMPTS))
        bodies = [{"unit_id": sc.unit_ids[i % len(sc.unit_ids)],
                   "date": sc.dates[(i // len(sc.unit_ids)) % len(sc.dates)], "seats": 1}
                  for i in range(requests)]
        answered = 0
        lock = threading.Lock()

        def counted(_attempt) -> None:
            nonlocal answered
            with lock:
                answered += 1

        worker = OutboxWorker(env, lease=30, retry=1, log_path=Path(tmp) / "worker.log")
        with AppServer(env, workers=workers, threads=app_threads, name="smtp-fault",
                       log_path=Path(tmp) / "gunicorn.log") as server, worker:
            with background(lambda: book_all([server.url], sc.token, bodies, threads=threads,
                                             on_answer=counted)) as load:
                # Mail is flowing: the first confirmation has reached the server.
                flowing = wait_until(lambda: len(sink.messages) >= 1, timeout=120, step=0.05)
                delivered_before = len(sink.messages)
                answered_before = answered
                sink.stop()
                down_at = time.monotonic()
                time.sleep(outage)
                during = _failing(database_url)
                sink.start()
                up_at = time.monotonic()
            outcomes = load["result"]
            done = wait_until(lambda: outbox_final_states(database_url)["waiting"] == 0,
                              timeout=deliver_timeout, step=0.5)
            delivered_at = time.monotonic()
            time.sleep(1)  # a duplicate would arrive now, if the worker sent one
            mail = delivery_report(sink, database_url)
            final = outbox_final_states(database_url)

    load_summary = summary(outcomes)
    report.update({
        "load": load_summary,
        "outage": {"seconds": round(up_at - down_at, 2), "delivered_before": delivered_before,
                   "bookings_answered_before": answered_before, "outbox_during": during},
        "outbox_final": final,
        "mail": {**mail, "all_delivered_within_s": round(delivered_at - up_at, 2) if done else None},
    })
    checks = {
        "no_booking_failed": load_summary["final"] == {"201": requests},
        # Flowing: some mail delivered and more still to send when SMTP stopped (the
        # bookings may all have been answered by then: their mail is what must survive).
        "stopped_while_mail_flowing": flowing and 1 <= delivered_before < requests,
        "outage_was_hit": during["failed_sends"] > 0,
        "every_row_sent_none_parked": done and final["sent"] == mail["queued"] == requests
        and final["parked"] == 0 and final["waiting"] == 0,
        "all_mail_delivered_once": mail["lost"] == 0 and mail["unknown"] == 0
        and mail["delivered_distinct"] == requests,
        "no_duplicates": mail["duplicates"] == 0,
    }
    report["checks"] = checks
    report["passed"] = all(checks.values())
    return report


def _failing(url: str) -> dict:
    """The outbox while SMTP is down: rows whose last send failed (last_error set, not
    sent), parked, and waiting."""
    [(failed, parked, waiting)] = query(
        url, "SELECT count(*) FILTER (WHERE sent_at IS NULL AND last_error <> ''), "
             "count(*) FILTER (WHERE failed_at IS NOT NULL), "
             "count(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL) "
             "FROM outbox WHERE kind = 'confirmation'")
    return {"failed_sends": failed, "parked": parked, "waiting": waiting}


def _dispose(app) -> None:
    from booking.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def show(report: dict) -> None:
    load, mail, outage = report["load"], report["mail"], report["outage"]
    rows = [
        {"what": "booking requests", "value": load["requests"], "detail": f"answers {load['final']}"},
        {"what": "SMTP stopped after", "value": f"{outage['delivered_before']} mails",
         "detail": f"{outage['bookings_answered_before']} bookings answered"},
        {"what": "SMTP down (s)", "value": outage["seconds"],
         "detail": f"outbox meanwhile {outage['outbox_during']}"},
        {"what": "mails queued", "value": mail["queued"]},
        {"what": "rows sent / parked / waiting",
         "value": f"{report['outbox_final']['sent']} / {report['outbox_final']['parked']} / "
                  f"{report['outbox_final']['waiting']}",
         "detail": f"sent after a retry {report['outbox_final']['needed_retry']}, "
                   f"MAIL_MAX_ATTEMPTS {report['settings']['mail_max_attempts']}"},
        {"what": "mails delivered (distinct)", "value": mail["delivered_distinct"],
         "detail": f"lost {mail['lost']}, duplicates {mail['duplicates']}"},
        {"what": "all delivered after return (s)", "value": mail["all_delivered_within_s"]},
    ]
    print_table("Fault: SMTP server stopped during a booking load", rows,
                [("what", "what"), ("value", "value"), ("detail", "detail")])
    for name, ok in report["checks"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="SMTP server stopped during a booking load.")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--outage", type=float, default=4.0)
    args = parser.parse_args(argv)
    report = run(requests=args.requests, threads=args.threads, outage=args.outage)
    show(report)
    print(f"\nJSON: {write_results('fault-smtp-outage', report)}")
    if not report["passed"]:
        raise SystemExit(1)
    return report


if __name__ == "__main__":
    main()
