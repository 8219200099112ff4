"""Scheduled jobs of the mail worker: `flask outbox run` calls `run_due` once a round
(every few seconds), and `flask jobs run --once` runs them once (operations, tests).

A job is a function `run(session) -> int | None` (what it did, for the log) listed in
JOBS below by its dotted path, imported when it first runs (so that this module imports
no service and any service may register here without an import cycle). Each runs in a
transaction of its own: it starts from an idle session, its work is committed when it
returns (it may commit more often itself, e.g. one booking at a time) and rolled back
when it raises. An exception in one job is logged and never stops the other jobs, the
worker or the mail.

Several workers may run at once, so each job's effect is guarded by the database, never
by "only one worker runs": a status change carries its expected status in the UPDATE's
WHERE (reservations._transition), and a job that must run once per period (the morning
digest: once per Tokyo day) claims that period with `claim(session, name, key)` in the
transaction that does the work: the JobRun row's unique (name, key) lets exactly one
worker's INSERT commit; the other's waits for it (PostgreSQL) or for the write lock
(SQLite) and is refused, and that worker does nothing. The claim and the work commit
together, so a worker that dies half-way leaves the period unclaimed for the next round.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from booking import clock
from booking.models import JobRun

log = logging.getLogger(__name__)

# name -> "module:function". The name is the JobRun.name of a once-per-period job
# (at most 40 characters). Add a line for a new job.
JOBS: dict[str, str] = {
    "waitlist_expiry": "booking.services.waitlist:expire_offers",
    "no_show_release": "booking.services.no_shows:run",
    "digest": "booking.services.digest:run",
    "feed_changes": "booking.services.calendars:compact_changes",
}

Job = Callable[[Session], Any]


def _load(path: str) -> Job:
    module, _, function = path.partition(":")
    return getattr(importlib.import_module(module), function)


def claim(session: Session, name: str, key: str) -> bool:
    """Claim the run of job `name` for period `key` in the caller's transaction (begin it
    with booking.db.begin_write, so that on SQLite the write lock is taken before the
    first read). True: this worker does the work, and the claim commits with it. False:
    another worker has claimed it (committed, or about to: PostgreSQL makes this INSERT
    wait for the other transaction and then refuses it); the caller's transaction is
    rolled back, with nothing done."""
    try:
        session.add(JobRun(name=name, key=key))
        session.flush()
    except sa.exc.IntegrityError:
        session.rollback()
        return False
    return True


def claimed(session: Session, name: str, key: str) -> bool:
    """Whether the run of `name` for `key` is done (a read, no lock: a cheap check
    before the claiming transaction)."""
    return (session.scalar(sa.select(sa.func.count(JobRun.id)).where(
        JobRun.name == name, JobRun.key == key)) or 0) > 0


def finish(session: Session, name: str, key: str) -> None:
    """Note when the claimed run ended (in the same transaction as its work)."""
    session.execute(sa.update(JobRun).where(JobRun.name == name, JobRun.key == key)
                    .values(finished_at=clock.now()))


def run_one(session: Session, name: str) -> tuple[str, Any]:
    """Run job `name` in a transaction of its own: ("ok", what it returned) or ("error",
    the exception's text), logged; never raises an Exception."""
    try:
        session.rollback()  # an idle session: the job begins its own transaction
        result = _load(JOBS[name])(session)
        session.commit()
    except Exception as error:  # one job must not stop the others, the worker or the mail
        try:
            session.rollback()
        except Exception:  # the connection itself is gone: the next round starts afresh
            log.exception("job %s: rollback failed", name)
        log.exception("job %s failed; it runs again next round", name)
        return "error", f"{type(error).__name__}: {error}"
    if result:
        log.info("job %s: %s", name, result)
    return "ok", result


def run_due(session: Session, only: str | None = None) -> dict[str, tuple[str, Any]]:
    """Run every job (or only `only`) once, each in its own transaction; each decides
    itself what is due now. Returns name -> (outcome, result)."""
    names = [only] if only else list(JOBS)
    return {name: run_one(session, name) for name in names}


@click.group("jobs")
def jobs_cli() -> None:
    """The worker's scheduled jobs (`flask outbox run` runs them each round)."""


@jobs_cli.command("run")
@click.option("--once", is_flag=True, help="Run once and stop (what this command always does).")
@click.option("--only", type=click.Choice(sorted(JOBS)), default=None, help="Just this job.")
@with_appcontext
def run_command(once: bool, only: str | None) -> None:
    """Run the scheduled jobs once (each round of `flask outbox run` runs them too)."""
    from booking.extensions import db

    try:
        for name, (outcome, result) in run_due(db.session(), only).items():
            click.echo(f"job {name}: {outcome}" + (f" ({result})" if result else ""))
    finally:
        db.session.remove()
