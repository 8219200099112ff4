"""What the fault checks share: an SMTP server on loopback, the outbox worker process."""

from __future__ import annotations

import asyncio
import contextlib
import email
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.stack import ROOT, free_port


class MailSink:
    """A real SMTP server (aiosmtpd) on a loopback port that records what it accepts.

    stop() and start() again on the same port are the SMTP outage. `delay` makes each DATA
    take that long (the outbox worker is then reliably caught in the middle of a send);
    `receiving` is set whenever a message has arrived and its answer is still pending.
    """

    def __init__(self, port: int | None = None, delay: float = 0.0) -> None:
        self.port = port or free_port()
        self.delay = delay
        self.messages: list[dict] = []
        self.receiving = threading.Event()
        self._lock = threading.Lock()
        self._controller = None

    def start(self) -> MailSink:
        from aiosmtpd.controller import Controller

        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def record(self, envelope) -> None:
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        with self._lock:
            self.messages.append({"message_id": message.get("Message-ID", ""),
                                  "to": list(envelope.rcpt_tos), "subject": message.get("Subject", ""),
                                  "at": time.monotonic()})

    def last_message_id(self) -> str:
        with self._lock:
            return self.messages[-1]["message_id"] if self.messages else ""

    def counts(self) -> Counter:
        with self._lock:
            return Counter(m["message_id"] for m in self.messages)

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server, session, envelope) -> str:
        # Recorded on receipt, before the answer: a sender that dies now will send it again,
        # which is SMTP's at-least-once, and the check counts it as such.
        self.sink.record(envelope)
        if self.sink.delay:
            self.sink.receiving.set()
            await asyncio.sleep(self.sink.delay)
            self.sink.receiving.clear()
        return "250 Message accepted"


class OutboxWorker:
    """`flask outbox run` as a process of its own (bench/faults/outbox_worker.py)."""

    def __init__(self, env: dict[str, str], *, lease: float, retry: float, interval: float = 0.3,
                 batch: int = 50, log_path: Path | None = None) -> None:
        self.env = env
        self.args = ["--lease", str(lease), "--retry", str(retry), "--interval", str(interval),
                     "--batch", str(batch)]
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> OutboxWorker:
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.faults.outbox_worker", *self.args], cwd=ROOT,
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if log is not subprocess.DEVNULL:
            log.close()  # the child has its own descriptor
        self.starts += 1
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, no chance to mark anything sent."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> OutboxWorker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def query(url: str, statement: str, *params) -> list[tuple]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute(statement, params).fetchall()


def outbox_state(url: str) -> dict:
    """Confirmation mails queued, sent, waiting, and how many failed at least once."""
    rows = query(url, "SELECT count(*), count(sent_at), count(*) FILTER (WHERE last_error <> '' "
                      "OR attempts > 1) FROM outbox WHERE kind = 'confirmation'")
    queued, sent, retried = rows[0]
    return {"queued": queued, "sent": sent, "waiting": queued - sent, "failed_at_least_once": retried}


def outbox_final_states(url: str) -> dict[str, int]:
    """Confirmation rows by their state as booking/services/mail.py leaves them: sent
    (sent_at), parked (failed_at: given up after MAIL_MAX_ATTEMPTS, or a poison message),
    waiting (neither: due again later); plus how many needed more than one attempt."""
    [(sent, parked, waiting, retried)] = query(
        url, "SELECT count(*) FILTER (WHERE sent_at IS NOT NULL), "
             "count(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NOT NULL), "
             "count(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL), "
             "count(*) FILTER (WHERE attempts > 1) FROM outbox WHERE kind = 'confirmation'")
    return {"sent": sent, "parked": parked, "waiting": waiting, "needed_retry": retried}


def seats_over_capacity(url: str) -> list[dict]:
    """Units' Tokyo days on which holding bookings take more seats than the unit has (must
    be none). The drills book whole days, so the bookings of a unit and day share a start."""
    rows = query(url, "SELECT b.unit_id, b.starts_at, sum(b.seats), u.capacity FROM bookings b "
                      "JOIN units u ON u.id = b.unit_id "
                      "WHERE b.status IN ('confirmed', 'checked_in', 'no_show') "
                      "GROUP BY b.unit_id, b.starts_at, u.capacity HAVING sum(b.seats) > u.capacity")
    return [{"unit_id": u, "starts_at": str(s), "seats": n, "capacity": c} for u, s, n, c in rows]


def seats_held(url: str, unit_ids: list[int]) -> dict[str, int]:
    """Seats held per unit and Tokyo day ("unit/YYYY-MM-DD") on these units."""
    rows = query(url, "SELECT b.unit_id, (b.starts_at AT TIME ZONE 'Asia/Tokyo')::date, "
                      "sum(b.seats) FROM bookings b WHERE b.unit_id = ANY(%s) "
                      "AND b.status IN ('confirmed', 'checked_in', 'no_show') GROUP BY 1, 2",
                 list(unit_ids))
    return {f"{u}/{d.isoformat()}": int(n) for u, d, n in rows}


def loads_against_recount(url: str) -> dict:
    """The stored `unit_loads` rows against a recount from the bookings
    (booking.services.loads.rebuild, run in a transaction that is rolled back: the stored
    rows are compared, never repaired). Equal when `missing` and `extra` are empty."""
    import sqlalchemy as sa

    from bench.stack import sqlalchemy_url
    from booking.models import UnitLoad
    from booking.services import loads

    columns = (UnitLoad.unit_id, UnitLoad.day, UnitLoad.start_min, UnitLoad.end_min,
               UnitLoad.seats, UnitLoad.seats_free)
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            stored = {tuple(r) for r in conn.execute(sa.select(*columns))}
            loads.rebuild(conn)
            recount = {tuple(r) for r in conn.execute(sa.select(*columns))}
            conn.rollback()
    finally:
        engine.dispose()
    show = lambda rows: [[str(v) for v in r] for r in sorted(rows)[:10]]  # noqa: E731
    return {"stored_rows": len(stored), "recount_rows": len(recount),
            "missing": show(recount - stored), "extra": show(stored - recount),
            "equal": stored == recount}


def message_ids(url: str, kind: str | None = "confirmation") -> set[str]:
    """The Message-ID of each queued confirmation (of every outbox row, kind None), read
    from the stored message bytes."""
    out = set()
    where, params = ("WHERE kind = %s", (kind,)) if kind is not None else ("", ())
    for (raw,) in query(url, f"SELECT message FROM outbox {where}", *params):
        out.add(email.message_from_bytes(bytes(raw)).get("Message-ID", ""))
    return out


def delivery_report(sink: MailSink, url: str) -> dict:
    """The customers' confirmations: each delivered once, none lost. Other mail the
    bookings queue (the operator's notices) is delivered too; only a message the outbox
    never held is unknown."""
    counts = sink.counts()
    queued_ids = message_ids(url)
    delivered = {mid for mid in counts if mid in queued_ids}
    return {
        **outbox_state(url),
        "delivered_messages": sum(counts.values()),
        "delivered_distinct": len(delivered),
        "lost": len(queued_ids - delivered),
        "duplicates": sum(n - 1 for n in counts.values() if n > 1),
        "unknown": len(set(counts) - message_ids(url, None)),
    }


@contextlib.contextmanager
def background(target: Callable[[], object]):
    """Run target in a thread; the block gets a holder whose ['result'] is set at the end."""
    holder: dict = {}

    def run() -> None:
        try:
            holder["result"] = target()
        except BaseException as error:  # re-raised in the caller's thread
            holder["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield holder
    finally:
        thread.join()
        if "error" in holder:
            raise holder["error"]


def print_fault_report(title: str, rows: list[dict], report: dict) -> None:
    """A drill's figures as a table, then its log warnings and errors and its checks."""
    from bench.stack import print_table

    print_table(title, rows, [("what", "what"), ("value", "value"), ("detail", "detail")])
    for message, n in report["log_warnings"].items():
        print(f"  log warning ×{n}: {message}")
    for line in report["log_errors"]:
        print(f"  log error: {line}")
    for name, ok in report["checks"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
