"""Limits a real service has: bookings and invitations per company (issue 17, finding 5).

The defect: one account, one request (20 dates × 30 seats × 30 attendees) queued 1,240
mails (an invitation and a reminder to each of 31 people for each date), and nothing
limited how many bookings one company made, so one account could hold a space's whole
inventory for months at no cost.

Now: COMPANY_BOOKINGS_PER_HOUR, COMPANY_BOOKINGS_PER_DAY and COMPANY_INVITATIONS_PER_DAY
(services/limits.py), counted over sliding windows whoever of the company books; over a
limit the request is refused whole (429, naming the limit) and nothing is written. The
count holds under concurrency: it is made under a lock per company (PostgreSQL: an
advisory lock taken by the statement that begins the booking transaction), and costs one
statement per booking request.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking import clock
from booking.extensions import db
from booking.models import Booking, OutboxMessage, Unit, User
from booking.services.errors import DomainError
from tests import worlds
from tests.edge import reservations as r
from tests.worlds import future_day, wait_for_connections

POOL = 12
pytestmark = pytest.mark.xdist_group("many_connections")  # the race opens a dozen


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.fixture
def limits(app):
    """Set the limits of this test (the app's config, read on every booking)."""
    def _set(per_hour: int = 0, per_day: int = 0, invitations: int = 0) -> None:
        app.config.update(COMPANY_BOOKINGS_PER_HOUR=per_hour, COMPANY_BOOKINGS_PER_DAY=per_day,
                          COMPANY_INVITATIONS_PER_DAY=invitations)
    return _set


def _headers(user) -> dict:
    """An API token that outlives the test's travels in time (two days)."""
    from booking.services import tokens

    secret, _ = tokens.issue(db.session, user, 48)
    db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def open_world(make):
    """The booking world, open every day 9–18, 40 seats, with the booker's API token."""
    w = worlds.world(make, capacity=40, hours=(range(7), 540, 1080))
    return {**w, "headers": _headers(w["booker"])}


def _days(n: int, first: int = 3) -> list[str]:
    return [future_day(first + i).isoformat() for i in range(n)]


def _api_book(client, w, *, dates: list[str], seats: int = 1, attendees=(), headers=None):
    return client.post("/api/v1/bookings", headers=headers or w["headers"], json={
        "unit_id": w["desks"].id, "dates": dates, "seats": seats, "attendees": list(attendees)})


def _refused(answer, code: str, limit: int) -> None:
    assert answer.status_code == 429, answer.get_json()
    body = answer.get_json()
    assert answer.mimetype == "application/problem+json"
    assert body["code"] == code and body["limit"] == limit, body
    assert str(limit) in body["detail"], body  # the message states the limit


# --------------------------------------------------------------------------- the defect


def test_one_request_cannot_mail_a_thousand_invitations(app, client, open_world):
    """The probe's request, by a verified account, with the default limits."""
    attendees = [f"target{i}@example.jp" for i in range(30)]
    answer = _api_book(client, open_world, dates=_days(20), seats=30, attendees=attendees)
    _refused(answer, "company_invitations_per_day", app.config["COMPANY_INVITATIONS_PER_DAY"])
    assert _count(Booking) == 0 and _count(OutboxMessage) == 0


def test_defaults_are_on(app):
    assert app.config["COMPANY_BOOKINGS_PER_HOUR"] == 100
    assert app.config["COMPANY_BOOKINGS_PER_DAY"] == 300
    assert app.config["COMPANY_INVITATIONS_PER_DAY"] == 500


# --------------------------------------------------------------------------- each limit


def test_bookings_per_hour(client, open_world, limits):
    limits(per_hour=3)
    assert _api_book(client, open_world, dates=_days(2)).status_code == 201
    # A request that would go over is refused whole, even the part that would fit.
    _refused(_api_book(client, open_world, dates=_days(2, first=10)),
             "company_bookings_per_hour", 3)
    assert _count(Booking) == 2
    assert _api_book(client, open_world, dates=_days(1, first=10)).status_code == 201
    _refused(_api_book(client, open_world, dates=_days(1, first=11)),
             "company_bookings_per_hour", 3)
    # The hour slides: an hour after the first ones, three more fit.
    with time_machine.travel(clock.now() + timedelta(minutes=61)):
        assert _api_book(client, open_world, dates=_days(3, first=20)).status_code == 201
    assert _count(Booking) == 6


def test_bookings_per_day_count_every_member_and_unit_of_the_company(client, make, open_world,
                                                                     limits):
    limits(per_day=4)
    w = open_world
    theirs = _headers(make.user(organisation=w["company"]))
    other_unit = make.unit(w["space"], capacity=5)
    assert _api_book(client, w, dates=_days(2)).status_code == 201
    answer = client.post("/api/v1/bookings", headers=theirs, json={
        "unit_id": other_unit.id, "dates": _days(2), "seats": 1})
    assert answer.status_code == 201
    _refused(_api_book(client, w, dates=_days(1, first=12), headers=theirs),
             "company_bookings_per_day", 4)
    # Cancelling does not give the count back: the bookings were made (and mailed).
    first = db.session.scalars(sa.select(Booking).order_by(Booking.id)).first()
    assert client.delete(f"/api/v1/bookings/{first.reference}",
                         headers=w["headers"]).status_code == 200
    _refused(_api_book(client, w, dates=_days(1, first=12)), "company_bookings_per_day", 4)
    # Another company is not held back by this one.
    stranger = make.user(organisation=make.company())
    assert _api_book(client, w, dates=_days(1), headers=_headers(stranger)).status_code == 201
    with time_machine.travel(clock.now() + timedelta(hours=24, minutes=1)):
        assert _api_book(client, w, dates=_days(1, first=12)).status_code == 201


def test_invitations_per_day(client, open_world, limits):
    limits(invitations=10)
    four = [f"a{i}@example.jp" for i in range(4)]
    # One booking to the booker and four attendees: five invitations, twice.
    assert _api_book(client, open_world, dates=_days(1), seats=4, attendees=four
                     ).status_code == 201
    assert _api_book(client, open_world, dates=_days(1, first=4), seats=4, attendees=four
                     ).status_code == 201
    outbox = _count(OutboxMessage)
    _refused(_api_book(client, open_world, dates=_days(1, first=5)),
             "company_invitations_per_day", 10)
    assert _count(Booking) == 2 and _count(OutboxMessage) == outbox


def test_zero_turns_a_limit_off(client, open_world, limits):
    limits(per_hour=0, per_day=0, invitations=0)
    for first in (3, 30):
        assert _api_book(client, open_world, dates=_days(25, first=first), seats=1,
                         attendees=["x@example.jp"]).status_code == 201
    assert _count(Booking) == 50


def test_the_booking_form_says_the_limit_at_the_top(client, login, open_world, limits):
    import re

    limits(per_hour=1)
    login(open_world["booker"])
    url = f"/bookings/new?unit_id={open_world['desks'].id}"
    for n, first in enumerate((3, 4)):
        page = client.get(url).get_data(as_text=True)
        token = re.search(r'name="submission" type="hidden" value="([^"]+)"', page).group(1)
        answer = client.post(url, data={"first_date": future_day(first).isoformat(),
                                        "seats": "1", "submission": token})
        if n == 0:
            assert answer.status_code == 302
    assert answer.status_code == 429
    html = answer.get_data(as_text=True)
    assert "1時間に1件まで" in html
    assert _count(Booking) == 1


# --------------------------------------------------------------------------- concurrency


@pytest.fixture
def app_config(backend):
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": POOL, "max_overflow": 2,
                                          "pool_timeout": 60}}


def _race(app, unit_ids: list[int], user_id: int, day) -> Counter:
    """One booking per unit, all at once, by members of one company, each in its own
    thread and connection."""
    db.session.commit()
    barrier = threading.Barrier(len(unit_ids))
    outcomes: list[str] = []
    lock = threading.Lock()

    def racer(unit_id: int) -> None:
        with app.app_context():
            try:
                unit, user = db.session.get(Unit, unit_id), db.session.get(User, user_id)
                assert user.company is not None
                period = r.day_period(unit, day)
                db.session.commit()
                barrier.wait(timeout=60)
                r.book(db.session, unit, user, [period], 1)
                outcome = "ok"
            except DomainError as error:
                db.session.rollback()
                outcome = error.code
            except Exception as error:
                outcome = f"error: {type(error).__name__}: {error}"
            finally:
                db.session.remove()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=racer, args=(u,)) for u in unit_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racer hung (deadlock?)"
    return Counter(outcomes)


ROUNDS = 20
RACERS = 8


def test_racing_requests_of_one_company_on_different_units_keep_the_limit(app, make, limits):
    """Eight bookings at once by one company on eight units against a limit of three:
    exactly three are made, in every round (without the company lock, each request
    counted alone under its own unit's lock, and all eight were made)."""
    wait_for_connections(POOL + 3)
    limits(per_hour=3)
    space = make.space(hours=(range(7), 540, 1080))
    units = [make.unit(space, capacity=5).id for _ in range(RACERS)]
    for n in range(ROUNDS):
        company = make.company()
        user = make.user(organisation=company)
        results = _race(app, units, user.id, future_day(3 + n))
        assert results == Counter({"ok": 3, "company_bookings_per_hour": RACERS - 3}), \
            (n, results)
        made = db.session.scalar(sa.select(sa.func.count()).select_from(Booking)
                                 .where(Booking.company_id == company.id))
        assert made == 3, (n, made)


# --------------------------------------------------------------------------- the cost


def _one_booking(w, day: int, count_queries) -> list[str]:
    unit_id, user_id = w["desks"].id, w["booker"].id
    db.session.commit()
    unit, user = db.session.get(Unit, unit_id), db.session.get(User, user_id)
    assert user.company is not None and unit.space.opening_hours
    with count_queries() as statements:
        r.book(db.session, unit, user, [r.day_period(unit, future_day(day))], 1)
    return [" ".join(s.split()).upper() for s in statements]


def test_the_limits_cost_one_statement_and_take_the_company_lock_first(
        make, count_queries, limits, backend):
    w = worlds.world(make, hours=(range(7), 540, 1080))
    limits()  # all off: no count, no company lock
    _one_booking(w, 3, count_queries)  # warm caches
    off = _one_booking(w, 4, count_queries)
    limits(per_hour=100, per_day=300, invitations=500)
    on = _one_booking(w, 5, count_queries)
    assert len(on) == len(off) + 1, "\n".join(on)
    assert sum("FROM BOOKINGS LEFT OUTER JOIN BOOKING_ATTENDEES" in s for s in on) == 1
    if backend == "postgresql":
        company_id = w["company"].id
        # The transaction's first statement (the operator members told of the booking and
        # the booking's id are read before it begins: reservations.book reads them before
        # its locks).
        first = next(s for s in on if not s.startswith(("SELECT USERS.", "SELECT NEXTVAL")))
        assert f"PG_ADVISORY_XACT_LOCK({company_id}::BIGINT)" in first, first
        assert "SET_CONFIG('LOCK_TIMEOUT'" in first
        assert not any("PG_ADVISORY" in s for s in off)
