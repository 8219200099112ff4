"""The booking rules of booking.services.reservations, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest
import sqlalchemy as sa
import time_machine

from booking import clock
from booking.extensions import db
from booking.models import (
    AuditEntry,
    Booking,
    BookingStatus,
    CapacityOverride,
    Closure,
    Eligibility,
    OrgKind,
    OutboxMessage,
    PricePer,
    UnitKind,
)
from booking.services.availability import TOKYO, at
from booking.services.errors import DomainError
from tests import worlds
from tests.edge import reservations as r
from tests.worlds import future_day


@pytest.fixture
def world(make):
    return worlds.world(make, price=1500, owner=True)


def codes(excinfo) -> str:
    return excinfo.value.code


def test_book_a_day_uses_opening_hours_and_prices_per_seat(world):
    unit, user = world["desks"], world["booker"]
    day = future_day()
    [booking] = r.book(db.session, unit, user, [r.day_period(unit, day)], 3,
                       attendees=["a@example.jp", "B@example.jp"])
    assert booking.starts_at == at(day, 540) and booking.ends_at == at(day, 1080)
    assert booking.price_amount == 3 * 1500 and booking.subsidy_amount == 0
    assert booking.status == BookingStatus.CONFIRMED and booking.sequence == 0
    assert [a.email for a in booking.attendees] == ["a@example.jp", "b@example.jp"]
    assert len(booking.reference) == 12 and booking.reference.isalnum()
    # Three people invited (booker + 2) get a confirmation each, plus a reminder each;
    # the space's owner is told of the new booking (issue 19, mail.enqueue_for_operators).
    kinds = sorted(db.session.scalars(sa.select(OutboxMessage.kind)))
    assert kinds == ["confirmation"] * 3 + ["operator_confirmation"] + ["reminder"] * 3
    assert db.session.scalar(sa.select(AuditEntry.action)) == "booking.create"


def test_references_are_random(world):
    unit, user = world["desks"], world["booker"]
    made = r.book(db.session, unit, user,
                  [r.day_period(unit, future_day(d)) for d in range(5, 9)], 1)
    refs = [b.reference for b in made]
    assert len(set(refs)) == 4
    assert not any(a[:6] == b[:6] for a, b in pairwise(refs))


def test_a_set_of_days_books_all_or_nothing(world, make):
    unit, user = world["desks"], world["booker"]
    days = [future_day(10), future_day(12), future_day(14)]
    make.booking(unit, *r.day_period(unit, days[2]), seats=9)
    with pytest.raises(DomainError) as err:
        r.book(db.session, unit, user, [r.day_period(unit, d) for d in days], 2)
    assert codes(err) == "not_enough_seats" and err.value.extra["available"] == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0
    made = r.book(db.session, unit, user, [r.day_period(unit, d) for d in days[:2]], 2)
    assert len(made) == 2


def test_hours_are_priced_per_started_hour_and_checked_against_opening(world, make):
    room = make.unit(world["space"], kind=UnitKind.MEETING_ROOM, capacity=1, fits_people=6,
                     price_amount=800, price_per=PricePer.HOUR, max_length=8)
    user, day = world["booker"], future_day()
    [b] = r.book(db.session, room, user, [r.hours_period(day, 600, 750)], 1)
    assert b.price_amount == 3 * 800
    with pytest.raises(DomainError) as err:  # taken whole: overlapping hour refused
        r.book(db.session, room, user, [r.hours_period(day, 720, 780)], 1)
    assert codes(err) == "not_enough_seats"
    with pytest.raises(DomainError) as err:
        r.book(db.session, room, user, [r.hours_period(day, 1020, 1140)], 1)
    assert codes(err) == "outside_hours"
    with pytest.raises(DomainError) as err:
        r.book(db.session, room, user, [r.hours_period(day, 780, 840)], 4)
    assert codes(err) == "whole_unit"
    with pytest.raises(DomainError) as err:
        r.book(db.session, room, user, [r.hours_period(day, 780, 840)], 1,
               attendees=[f"p{i}@example.jp" for i in range(7)])
    assert codes(err) == "too_many_attendees"
    with pytest.raises(DomainError) as err:
        r.book(db.session, room, user, [r.hours_period(day, 540, 1080)], 1)
    assert codes(err) == "too_long"


def test_nights_of_a_whole_house(make, world):
    house_space = make.space(world["space"].organisation, hours=(range(7), 0, 1440))
    house = make.unit(house_space, kind=UnitKind.WHOLE_HOUSE, capacity=1, fits_people=5,
                      price_amount=20000, price_per=PricePer.NIGHT, min_length=2)
    user, first = world["booker"], future_day(20)
    with pytest.raises(DomainError) as err:
        r.book(db.session, house, user, [r.nights_period(house, first, 1)], 1)
    assert codes(err) == "too_short"
    [b] = r.book(db.session, house, user, [r.nights_period(house, first, 3)], 1)
    assert b.starts_at == at(first, 15 * 60)
    assert b.ends_at == at(first + timedelta(days=3), 10 * 60)
    assert b.price_amount == 60000
    # The next guests may check in on the day the first check out.
    r.book(db.session, house, user, [r.nights_period(house, first + timedelta(days=3), 2)], 1)
    with pytest.raises(DomainError) as err:
        r.book(db.session, house, user, [r.nights_period(house, first + timedelta(days=1), 2)], 1)
    assert codes(err) == "not_enough_seats"


@pytest.mark.parametrize("seats", [0, -1, 1000, 201])
def test_bad_seat_counts(world, seats):
    unit = world["desks"]
    with pytest.raises(DomainError) as err:
        r.book(db.session, unit, world["booker"], [r.day_period(unit, future_day())], seats)
    assert codes(err) == "bad_seats"


def test_bad_input_writes_nothing(world, make):
    unit, user, day = world["desks"], world["booker"], future_day()
    cases = {
        "bad_range": [(at(day, 700), at(day, 600))],
        "in_past": [r.day_period(unit, (clock.now() - timedelta(days=2)).astimezone(TOKYO).date())],
        "outside_hours": [(at(day, 420), at(day, 600))],
    }
    db.session.add(Closure(unit_id=unit.id, start_date=future_day(30), end_date=future_day(31)))
    db.session.commit()
    cases["closed"] = [r.day_period(unit, future_day(31))]
    for code, periods in cases.items():
        with pytest.raises(DomainError) as err:
            r.book(db.session, unit, user, periods, 1)
        assert codes(err) == code, code
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_closed_weekday_and_unapproved_organisation(make, world):
    weekdays_only = make.space(world["space"].organisation, hours=(range(5), 540, 1080))
    unit = make.unit(weekdays_only)
    day = future_day()
    while day.weekday() != 6:
        day += timedelta(days=1)
    with pytest.raises(DomainError) as err:
        r.book(db.session, unit, world["booker"], [r.day_period(unit, day)], 1)
    assert codes(err) == "closed"
    pending = make.organisation(OrgKind.OPERATOR, approved=False)
    hidden = make.unit(make.space(pending))
    with pytest.raises(DomainError) as err:
        r.book(db.session, hidden, world["booker"], [r.day_period(hidden, future_day())], 1)
    assert codes(err) == "unavailable"


def test_lead_time_and_capacity_override(world):
    unit, user = world["desks"], world["booker"]
    unit.lead_time_hours = 24 * 30
    db.session.commit()
    with pytest.raises(DomainError) as err:
        r.book(db.session, unit, user, [r.day_period(unit, future_day(5))], 1)
    assert codes(err) == "lead_time"
    unit.lead_time_hours = 0
    db.session.add(CapacityOverride(unit_id=unit.id, day=future_day(6), capacity=2))
    db.session.commit()
    with pytest.raises(DomainError) as err:
        r.book(db.session, unit, user, [r.day_period(unit, future_day(6))], 3)
    assert codes(err) == "not_enough_seats" and err.value.extra["available"] == 2


def test_user_without_company_cannot_book(world, make):
    loner = make.user()
    with pytest.raises(DomainError) as err:
        r.book(db.session, world["desks"], loner,
               [r.day_period(world["desks"], future_day())], 1)
    assert codes(err) == "no_company"


def test_campaign_slot_price_subsidy_and_rules(world, make):
    unit = world["desks"]
    unit.members_only = True
    db.session.commit()
    campaign = make.campaign(starts_on=future_day(1), ends_on=future_day(40))
    free = make.slot(campaign, unit, seats=3, price_amount=0, max_seats_per_company_per_day=2)
    user, day = world["booker"], future_day(10)
    with pytest.raises(DomainError) as err:  # members only without the slot
        r.book(db.session, unit, user, [r.day_period(unit, day)], 1)
    assert codes(err) == "members_only"
    [b] = r.book(db.session, unit, user, [r.day_period(unit, day, free)], 2, slot=free)
    assert b.campaign_slot_id == free.id and b.price_amount == 0
    with pytest.raises(DomainError) as err:
        r.book(db.session, unit, user, [r.day_period(unit, day, free)], 1, slot=free)
    assert codes(err) == "campaign_seats_per_day"
    subsidised = make.slot(campaign, unit, seats=5, price_amount=None, subsidy_cap=1000,
                           eligibility=Eligibility.OUTSIDE_PREFECTURE)
    [s] = r.book(db.session, unit, user, [r.day_period(unit, day, subsidised)], 1,
                 slot=subsidised)
    assert (s.price_amount, s.subsidy_amount) == (500, 1000)
    local = make.company(prefecture_code=22)
    local_user = make.user(organisation=local)
    with pytest.raises(DomainError) as err:
        r.book(db.session, unit, local_user, [r.day_period(unit, day, subsidised)], 1,
               slot=subsidised)
    assert codes(err) == "campaign_outside_prefecture"
    with pytest.raises(DomainError) as err:  # outside the campaign's dates
        r.book(db.session, unit, user, [r.day_period(unit, future_day(50), free)], 1, slot=free)
    assert codes(err) == "campaign_closed"


def test_cancel_until_deadline_frees_seats_and_sends_cancel(world):
    unit, user = world["desks"], world["booker"]
    day = future_day(10)
    [b] = r.book(db.session, unit, user, [r.day_period(unit, day)], 10)
    cancelled = r.cancel(db.session, b, user, reason="予定変更")
    assert cancelled.status == BookingStatus.CANCELLED and cancelled.sequence == 1
    kinds = sorted(db.session.scalars(sa.select(OutboxMessage.kind)))
    assert kinds == ["cancellation", "confirmation",  # the reminder is gone
                     "operator_cancellation", "operator_confirmation"]  # the owner's
    with pytest.raises(DomainError) as err:
        r.cancel(db.session, b, user)
    assert codes(err) == "already_cancelled"
    r.book(db.session, unit, user, [r.day_period(unit, day)], 10)  # seats free at once


def test_cancel_after_deadline_refused_but_operator_may(world):
    unit, user = world["desks"], world["booker"]
    day = future_day(3)
    [b] = r.book(db.session, unit, user, [r.day_period(unit, day)], 1)
    with time_machine.travel(at(day, 540) - timedelta(hours=10), tick=False):
        with pytest.raises(DomainError) as err:
            r.cancel(db.session, b, user)
        assert codes(err) == "cancel_deadline"
        done = r.cancel(db.session, b, world["owner"], reason="設備故障")
        assert done.status == BookingStatus.CANCELLED and done.cancel_reason == "設備故障"


def test_strangers_cannot_touch_a_booking(world, make):
    unit, user = world["desks"], world["booker"]
    [b] = r.book(db.session, unit, user, [r.day_period(unit, future_day())], 1)
    stranger = make.user(organisation=make.company())
    for action in (r.cancel, r.check_in):
        with pytest.raises(DomainError) as err:
            action(db.session, b, stranger)
        assert codes(err) == "not_yours"
    with pytest.raises(DomainError) as err:
        r.find(db.session, b.reference, stranger)
    assert codes(err) == "not_yours"
    assert r.find(db.session, b.reference.lower(), user).id == b.id


def test_change_rechecks_as_new_and_raises_sequence(world, make):
    unit, user = world["desks"], world["booker"]
    day = future_day(10)
    [b] = r.book(db.session, unit, user, [r.day_period(unit, day)], 4)
    make.booking(unit, *r.day_period(unit, day), seats=5)
    changed = r.change(db.session, b, user, seats=5)  # its own 4 seats do not count
    assert changed.seats == 5 and changed.sequence == 1 and changed.price_amount == 7500
    with pytest.raises(DomainError) as err:
        r.change(db.session, b, user, seats=6)
    assert codes(err) == "not_enough_seats" and err.value.extra["available"] == 5
    moved = r.change(db.session, b, user, period=r.day_period(unit, day + timedelta(days=1)))
    assert moved.starts_at == at(day + timedelta(days=1), 540) and moved.sequence == 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.kind == "update")) == 2
    reminders = db.session.scalars(sa.select(OutboxMessage)
                                   .where(OutboxMessage.kind == "reminder")).all()
    assert len(reminders) == 1
    assert reminders[0].next_attempt_at == moved.starts_at - timedelta(hours=24)


def test_check_in_only_on_the_day(world):
    unit, user = world["desks"], world["booker"]
    day = future_day(5)
    [b] = r.book(db.session, unit, user, [r.day_period(unit, day)], 1)
    with pytest.raises(DomainError) as err:
        r.check_in(db.session, b, world["owner"])
    assert codes(err) == "not_checkin_time"
    with time_machine.travel(at(day, 600), tick=False):
        done = r.check_in(db.session, b, world["owner"])
        assert done.status == BookingStatus.CHECKED_IN and done.checked_in_at is not None
        with pytest.raises(DomainError) as err:
            r.check_in(db.session, b, world["owner"])
        assert codes(err) == "bad_status"


# What one booking of a day costs in SQL statements, inside book(), for a unit and a user
# as a request hands them over (loaded). Each, in order:
#  1. the space's operator members who keep booking mails on (the world has an operator
#     owner, issue 19): read before the lock, since who is told decides nothing;
#  2. BEGIN IMMEDIATE (SQLite) or the lock timeout set with the company's advisory lock
#     (PostgreSQL, one statement; the world's company limits are on);
#  3. the unit's space with its organisation and opening hours (one SELECT, just before the
#     lock: PostgreSQL would read them as of before the lock's wait anyway, and making
#     their objects under the lock cost every waiting booking half a millisecond);
#  3b. the unit row locked and read (SELECT … FOR UPDATE OF units);
#  4. the company's bookings and invitations of the last hour and day counted (the company
#     limits of services/limits.py, decided under the company lock);
#  5. availability: closures, capacity overrides, offered slots' ids and the holding
#     bookings of the period's whole days, in one UNION ALL (a second SELECT only when a
#     slot is offered then);
#  6. INSERT booking (no lock_version bump: the row lock is held to commit without it): on
#     PostgreSQL in 8's statement, its id taken from the sequence before 2 (one SELECT
#     nextval); on SQLite a statement of its own, its id after the table's largest, read
#     under the lock (one SELECT more: booking.db.next_ids, as_flushed);
#  7. the unit's loads of the day: only the pieces that changed, one upsert (INSERT … ON
#     CONFLICT; a DELETE too, before it, when pieces merge), recounted from the bookings 5
#     read under the lock (loads.note_held), not read again;
#  8. INSERT the audit row and the outbox rows (confirmation, reminder and the operator's
#     notice, with the facts their mails are rendered from after commit: no mail is
#     rendered under the lock): on PostgreSQL one statement with 6 and 7
#     (booking.db.insert_together: the booking, the loads' upsert and the audit INSERT in
#     its WITH clause), on SQLite two (9.).
# Under the lock: 3b to 8 (and the commit). Nothing is read twice: the booker and their
# company (both expired by the transaction's beginning) are not reread — the mail's facts
# and the audit row take what the request loaded; no idempotency key here (a key costs
# its INSERT only: it is read on refusal or collision). Issue 22 lowered it from 16/18,
# then 13, then 9 (availability in one query, the loads without their SELECT and DELETE),
# then 8 on PostgreSQL (the audit, mail and idempotency rows in one statement), then 9 and
# 10 (the space read apart from the unit's lock, 3 and 3b), then 8 on PostgreSQL (the loads'
# upsert in 8's statement), then with the booking's INSERT there too PostgreSQL 8 (its id
# read before the lock) and SQLite 11 (its id read under the lock): under the lock on
# PostgreSQL 3b, 5 and 8 only.
# Raise it only for a statement that must be there, and say which here.
STATEMENTS_PER_BOOKING = {"postgresql": 8, "sqlite": 11}

# The whole request: POST /api/v1/bookings with an Idempotency-Key, as the API serves it.
# 1. the token with its user, memberships and their organisations (one SELECT,
# api/common.py and services/tokens.py); then book() given the unit by its id
# (booking_requests.place: no slot named): the ones above, but the unit is read only by
# its lock (3b), which also asks whether any campaign slot on it has not ended (none: no
# slot can be chosen; else place rolls back and chooses the slot first), and the operator
# members (1) are found by the unit's id; the idempotency record (its answer built once,
# in the transaction) is inserted with the audit and outbox rows (8) on PostgreSQL, by a
# statement of its own on SQLite. Nothing after commit: the answer sent is the one stored.
# Issue 22: 19 before (token, user, memberships, company, the unit before the lock,
# availability in three, the loads in three). On PostgreSQL the token is read without a
# transaction (tokens.user_before_a_decision): no BEGIN and COMMIT around it (they are no
# statements, so not counted here; test below).
STATEMENTS_PER_REQUEST = {"postgresql": 9, "sqlite": 13}


def test_a_booking_request_reads_its_token_without_a_transaction(make, client, backend):
    """POST /api/v1/bookings reads its token, and what else it reads before the decision,
    outside a transaction (no BEGIN and COMMIT for those reads: its writes are all decided
    in book()'s own transaction); the decision runs in a transaction, and so does every
    statement of a request that writes otherwise (DELETE)."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's round trips: SQLite begins no transaction to read")
    w = worlds.world(make, price=1500, owner=True, token=True)
    body = {"unit_id": w["desks"].id, "date": future_day(9).isoformat(), "seats": 1}
    db.session.commit()
    db.session.close()  # as a request begins: no transaction yet
    seen: list[tuple[bool, str]] = []

    def note(conn, _cursor, statement, *_args):
        seen.append((conn.connection.dbapi_connection.autocommit, statement))

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        answer = client.post("/api/v1/bookings", json=body, headers=w["headers"])
        assert answer.status_code == 201, answer.json
        booked, seen[:] = list(seen), []
        db.session.close()
        cancelled = client.delete(f"/api/v1/bookings/{answer.json['reference']}",
                                  headers=w["headers"])
        assert cancelled.status_code == 200, cancelled.json
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
    # The reads before the decision (the token first), then the decision's transaction,
    # from the statement that sets its lock timeout to the last INSERT.
    decided = next(i for i, (_a, s) in enumerate(booked) if "lock_timeout" in s)
    assert "api_tokens" in booked[0][1], booked
    assert all(autocommit and s.startswith("SELECT") for autocommit, s in booked[:decided])
    assert not any(autocommit for autocommit, _s in booked[decided:]), booked
    assert not any(autocommit for autocommit, _s in seen), seen
    db.session.rollback()
    assert db.session.scalar(sa.select(Booking.status).where(
        Booking.reference == answer.json["reference"])) == BookingStatus.CANCELLED


def _as_a_request_hands_them(world):
    from sqlalchemy.orm import selectinload

    from booking.models import Space, Unit, User

    unit_id, user_id = world["desks"].id, world["booker"].id
    db.session.commit()
    unit = db.session.scalar(sa.select(Unit).where(Unit.id == unit_id).options(
        selectinload(Unit.space).selectinload(Space.opening_hours)))
    user = db.session.get(User, user_id)
    assert user.company is not None  # memberships loaded, as the API's token check does
    return unit, user


def test_one_booking_costs_a_fixed_number_of_statements(world, count_queries, backend):
    unit, user = _as_a_request_hands_them(world)
    r.book(db.session, unit, user, [r.day_period(unit, future_day(9))], 1)  # warm caches
    unit, user = _as_a_request_hands_them(world)
    with count_queries() as statements:
        r.book(db.session, unit, user, [r.day_period(unit, future_day())], 1)
    statements = [" ".join(s.split()) for s in statements]
    listing = "\n".join(s[:100] for s in statements)
    assert len(statements) == STATEMENTS_PER_BOOKING[backend], listing
    # The unit (by its lock), its space and its opening hours are read once each.
    assert sum("units.capacity" in s for s in statements) == 1, listing
    assert sum(" opening_hours " in s for s in statements) == 1, listing
    assert sum(s.startswith("SELECT spaces.") for s in statements) == 1, listing


def test_one_booking_request_costs_a_fixed_number_of_statements(make, client, count_queries,
                                                                backend):
    w = worlds.world(make, price=1500, owner=True, token=True)
    db.session.commit()
    seen: list[str] = []
    for day in (9, 10):  # the first warms the caches; the second's statements are counted
        body = {"unit_id": w["desks"].id, "date": future_day(day).isoformat(), "seats": 1}
        with count_queries() as counted:
            answer = client.post("/api/v1/bookings", json=body,
                                 headers={**w["headers"], "Idempotency-Key": f"key-{day}"})
        assert answer.status_code == 201, answer.json
        seen = counted
    statements = [" ".join(s.split()) for s in seen]
    listing = "\n".join(s[:100] for s in statements)
    assert len(statements) == STATEMENTS_PER_REQUEST[backend], listing
    assert sum(" FROM api_tokens" in s or "JOIN api_tokens" in s for s in statements) == 1
    assert sum("units.capacity" in s for s in statements) == 1, listing  # the unit: once
    assert sum(s.startswith("SELECT") and "bookings.unit_id" in s for s in statements) == 1, \
        listing  # the day's bookings: read once, by availability
