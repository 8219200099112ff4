"""Real races for the last seats, on SQLite and PostgreSQL: no seat is ever sold twice."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter

import psycopg
import pytest
import sqlalchemy as sa

import booking.db
from booking.extensions import db
from booking.models import HOLDING_STATUSES, Booking, Unit, User
from booking.services.errors import DomainError
from tests.edge import reservations as r
from tests.worlds import future_day, wait_for_connections

THREADS = 50
# Fifty connections: never beside another racing test (pyproject: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("many_connections")


@pytest.fixture
def app_config(backend):
    # One connection per racer, so that every one of them really reaches the database.
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": THREADS + 2, "max_overflow": 5,
                                          "pool_timeout": 60}}


def _day():
    return future_day(7)


@pytest.fixture
def last_five(make):
    company = make.company()
    user = make.user(organisation=company)
    unit = make.unit(capacity=10)
    day = _day()
    make.booking(unit, *r.day_period(unit, day), seats=5)
    return unit.id, user.id, day


def _race(app, unit_id: int, user_id: int, day, seats: int = 1) -> Counter:
    wait_for_connections(THREADS + 7)
    barrier = threading.Barrier(THREADS)
    results: list[str] = []
    lock = threading.Lock()

    def racer() -> None:
        with app.app_context():
            try:
                unit = db.session.get(Unit, unit_id)
                user = db.session.get(User, user_id)
                period = r.day_period(unit, day)
                db.session.commit()  # start the race from an idle session
                barrier.wait(timeout=60)
                r.book(db.session, unit, user, [period], seats)
                outcome = "booked"
            except DomainError as error:
                outcome = error.code
            except Exception as error:  # anything else is a failure of the test
                outcome = f"error: {type(error).__name__}: {error}"
            finally:
                db.session.remove()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=racer) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racer hung (deadlock?)"
    return Counter(results)


def _held(unit_id: int) -> int:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Booking.seats), 0))
        .where(Booking.unit_id == unit_id, Booking.status.in_(HOLDING_STATUSES)))


def test_fifty_racers_for_the_last_five_seats(app, last_five):
    unit_id, user_id, day = last_five
    results = _race(app, unit_id, user_id, day)
    assert results == Counter({"booked": 5, "not_enough_seats": THREADS - 5}), results
    assert _held(unit_id) == 10


def test_fifty_racers_for_two_seats_each(app, last_five):
    unit_id, user_id, day = last_five
    results = _race(app, unit_id, user_id, day, seats=2)
    assert results == Counter({"booked": 2, "not_enough_seats": THREADS - 2}), results
    assert _held(unit_id) == 9


def test_the_lock_is_really_taken(app, last_five, count_queries, backend):
    unit_id, user_id, day = last_five
    unit, user = db.session.get(Unit, unit_id), db.session.get(User, user_id)
    with count_queries() as statements:
        r.book(db.session, unit, user, [r.day_period(unit, day)], 1)
    text = "\n".join(statements).upper()
    if backend == "postgresql":
        # The lock timeout: SET LOCAL, or set_config(..., true) in the statement that also
        # takes the company's advisory lock (the company limits, services/limits.py).
        assert "SET LOCAL LOCK_TIMEOUT" in text or "SET_CONFIG('LOCK_TIMEOUT'" in text
        assert "FOR UPDATE" in text
    else:
        assert "BEGIN IMMEDIATE" in text


def test_a_lock_held_too_long_answers_busy(app, last_five, backend, monkeypatch, database_url):
    unit_id, user_id, day = last_five
    unit, user = db.session.get(Unit, unit_id), db.session.get(User, user_id)
    period = r.day_period(unit, day)
    db.session.commit()
    if backend == "postgresql":
        monkeypatch.setattr(booking.db, "POSTGRES_LOCK_TIMEOUT", "300ms")
        holder = psycopg.connect(database_url)
        holder.execute("SELECT id FROM units WHERE id = %s FOR UPDATE", (unit_id,))
    else:
        monkeypatch.setattr(booking.db, "SQLITE_BUSY_TIMEOUT_MS", 300)
        db.engine.dispose()  # reconnect with the short busy timeout
        holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DomainError) as err:
            r.book(db.session, unit, user, [period], 1)
        assert err.value.code == "busy" and err.value.status == 503
    finally:
        holder.rollback() if backend == "postgresql" else holder.execute("ROLLBACK")
        holder.close()
    # Nothing half-written, and the session is usable again.
    assert _held(unit_id) == 5
    r.book(db.session, unit, user, [period], 1)
    assert _held(unit_id) == 6
