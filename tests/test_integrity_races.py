"""Rules that hold under races (issue 17, findings 2, 3 and 8).

2. A campaign's "N bookings per company" holds whatever units the racing requests touch:
   the rules are decided under a lock per (campaign, company), taken before the unit lock.
3. Status changes of a booking (check-in, no-show, cancel) follow one transition table and
   are applied with the status they start from in the UPDATE's WHERE clause (and under the
   unit lock, which loads.py also takes before it writes unit_loads): a lost race answers
   409 and changes nothing; concurrent check-ins on one unit and day do not collide in
   unit_loads.
8. Rooms and houses are taken whole: their capacity is 1, and an override 0 or 1.

The races run on PostgreSQL and SQLite (threads, each with its own connection), twenty
rounds each, and check the database afterwards.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta

import psycopg
import pytest
import sqlalchemy as sa
import time_machine

import booking.db
from booking import clock
from booking.extensions import db
from booking.models import (
    HOLDING_STATUSES,
    Booking,
    BookingStatus,
    CapacityOverride,
    Membership,
    OrgKind,
    OutboxMessage,
    PricePer,
    Unit,
    UnitKind,
    UnitLoad,
    User,
)
from booking.services import closures, loads, space_admin
from booking.services.availability import at
from booking.services.errors import DomainError
from tests import worlds
from tests.edge import reservations as r
from tests.worlds import future_day, wait_for_connections

ROUNDS = 20
POOL = 20
# Many connections: never beside another racing test (pyproject: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("many_connections")

Prepare = Callable[[], Callable[[], str]]


@pytest.fixture
def app_config(backend):
    # One connection per racer, so that every one of them really reaches the database.
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": POOL, "max_overflow": 5,
                                          "pool_timeout": 60}}


def _race(app, jobs: list[tuple[str, Prepare]]) -> list[tuple[str, str]]:
    """Run every job in its own thread, app context and connection, all released at once.
    A job's prepare() loads what it needs (before the barrier) and returns the racing
    call, which answers "ok" or raises. Returns (label, outcome) per job, in job order:
    "ok", a DomainError's "code/status", or "error: ..." for anything else."""
    db.session.commit()
    barrier = threading.Barrier(len(jobs))
    outcomes: list[tuple[str, str] | None] = [None] * len(jobs)

    def racer(i: int, label: str, prepare: Prepare) -> None:
        with app.app_context():
            try:
                go = prepare()
                db.session.commit()  # start the race from an idle session
                barrier.wait(timeout=60)
                outcome = go()
            except DomainError as error:
                db.session.rollback()
                outcome = f"{error.code}/{error.status}"
            except Exception as error:  # anything else is a failure of the test
                outcome = f"error: {type(error).__name__}: {error}"
            finally:
                db.session.remove()
        outcomes[i] = (label, outcome)

    threads = [threading.Thread(target=racer, args=(i, label, prepare))
               for i, (label, prepare) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racer hung (deadlock?)"
    db.session.expire_all()
    return [o for o in outcomes if o is not None]


_LOAD_COLUMNS = (UnitLoad.unit_id, UnitLoad.day, UnitLoad.start_min, UnitLoad.end_min,
                 UnitLoad.seats, UnitLoad.seats_free)


def assert_loads_rebuild_alike() -> None:
    """unit_loads as the racers left them equals a rebuild from the bookings (rebuilt in a
    transaction that is rolled back)."""
    db.session.rollback()
    kept = set(db.session.execute(sa.select(*_LOAD_COLUMNS)).all())
    assert kept, "no loads at all: nothing was checked"
    with db.engine.connect() as conn, conn.begin() as transaction:
        loads.rebuild(conn)
        rebuilt = set(conn.execute(sa.select(*_LOAD_COLUMNS)).all())
        transaction.rollback()
    assert kept == rebuilt, sorted(kept ^ rebuilt)


def _user(user_id: int) -> User:
    return db.session.get(User, user_id)


def _booking(booking_id: int) -> Booking:
    return db.session.get(Booking, booking_id)


# ------------------------------------------------------- 2. campaign rules across units


@pytest.fixture
def campaign_on_four_units(make):
    """A campaign with one slot on each of four desk pools: the unit's price (1,000 yen a
    day), the municipality pays up to 500 yen of a booking, one booking per company."""
    operator = make.organisation(OrgKind.OPERATOR)
    space = make.space(operator)
    units = [make.unit(space, capacity=5, price_amount=1000, price_per=PricePer.DAY)
             for _ in range(4)]
    today = clock.today()
    campaign = make.campaign(starts_on=today, ends_on=today + timedelta(days=60))
    slots = [make.slot(campaign, unit, seats=5, price_amount=None, subsidy_cap=500,
                       max_bookings_per_company=1) for unit in units]
    return campaign, units, slots


def _campaign_booker(unit_id: int, slot_id: int, user_id: int, day: date) -> Prepare:
    from booking.models import CampaignSlot

    def prepare():
        unit = db.session.get(Unit, unit_id)
        slot = db.session.get(CampaignSlot, slot_id)
        user = _user(user_id)
        assert user.company is not None
        period = r.day_period(unit, day, slot)

        def go() -> str:
            r.book(db.session, unit, user, [period], 1, slot=slot)
            return "ok"
        return go
    return prepare


def test_one_booking_per_company_holds_across_units(app, make, campaign_on_four_units):
    _, units, slots = campaign_on_four_units
    wait_for_connections(POOL + 7)
    first = make.company()
    users = [make.user(organisation=first).id for _ in range(2)]
    companies = []
    for n in range(ROUNDS):
        day = future_day(10 + n)  # a day of its own: seats to spare
        # A new company each round: its two members move to it (their bookings stay the
        # last company's).
        company = first if n == 0 else make.company()
        db.session.execute(sa.update(Membership).where(Membership.user_id.in_(users))
                           .values(organisation_id=company.id))
        jobs = [(f"unit {i}", _campaign_booker(units[i].id, slots[i].id, users[j], day))
                for i in range(4) for j in range(2)]
        results = Counter(outcome for _label, outcome in _race(app, jobs))
        assert results == Counter({"ok": 1, "campaign_bookings_per_company/403": 7}), results
        companies.append(company.id)
    # The database: one booking and one subsidy of at most 500 yen per company.
    rows = db.session.execute(
        sa.select(Booking.company_id, sa.func.count(), sa.func.sum(Booking.subsidy_amount))
        .where(Booking.status.in_(HOLDING_STATUSES)).group_by(Booking.company_id)).all()
    assert sorted(rows) == sorted((c, 1, 500) for c in companies)
    assert_loads_rebuild_alike()


def _campaign_lock_comes_first(statements: list[str], backend: str) -> None:
    text = [" ".join(s.split()).upper() for s in statements]
    if backend == "sqlite":  # one writer at a time: the IMMEDIATE transaction is the lock
        assert "BEGIN IMMEDIATE" in text
        return
    unit_lock = next(i for i, s in enumerate(text) if "FROM UNITS" in s and "FOR UPDATE" in s)
    campaign_lock = next(i for i, s in enumerate(text) if "PG_ADVISORY_XACT_LOCK" in s)
    assert campaign_lock < unit_lock, text


def test_the_campaign_lock_is_taken_before_the_unit_lock(app, make, campaign_on_four_units,
                                                         count_queries, backend):
    _campaign, units, slots = campaign_on_four_units
    company = make.company()
    user = make.user(organisation=company)
    day = future_day(10)
    with count_queries() as statements:
        [made] = r.book(db.session, units[0], user, [r.day_period(units[0], day, slots[0])],
                        1, slot=slots[0])
    _campaign_lock_comes_first(statements, backend)
    # A change of a campaign booking takes it too.
    made = db.session.get(Booking, made.id)
    with count_queries() as statements:
        r.change(db.session, made, user, seats=2)
    _campaign_lock_comes_first(statements, backend)


def test_a_campaign_lock_held_too_long_answers_busy(app, make, campaign_on_four_units,
                                                   backend, monkeypatch, database_url):
    """The lock timeout applies to the campaign lock too: "busy", never a request hanging."""
    if backend != "postgresql":
        pytest.skip("SQLite: the IMMEDIATE transaction is the lock (test_booking_race)")
    campaign, units, slots = campaign_on_four_units
    company = make.company()
    user = make.user(organisation=company)
    day = future_day(10)
    period = r.day_period(units[0], day, slots[0])
    monkeypatch.setattr(booking.db, "POSTGRES_LOCK_TIMEOUT", "300ms")
    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s::integer, %s::integer)",
                       (campaign.id, company.id))
        with pytest.raises(DomainError) as err:
            r.book(db.session, units[0], user, [period], 1, slot=slots[0])
        assert err.value.code == "busy" and err.value.status == 503
        holder.rollback()
    r.book(db.session, db.session.get(Unit, units[0].id), user, [period], 1, slot=slots[0])


# ------------------------------------------------------- 3. status changes that race


@pytest.fixture
def front_desk(make):
    """An operator, a company with a booker, and a day three days ahead on which the
    space is open 9:00–18:00."""
    operator_org = make.organisation(OrgKind.OPERATOR)
    operator = make.user(organisation=operator_org)
    space = make.space(operator_org)
    company = make.company()
    booker = make.user(organisation=company)
    day = future_day(3)
    return {"operator": operator.id, "booker": booker.id, "company": company, "space": space,
            "day": day}


def _round_unit(make, desk) -> tuple[Unit, list[int]]:
    """A fresh desk pool (cancellable until its start) with four bookings 9:00–18:00."""
    unit = make.unit(desk["space"], capacity=10, cancel_deadline_hours=0, lead_time_hours=0)
    booked = [make.booking(unit, at(desk["day"], 540), at(desk["day"], 1080), 1,
                           company=desk["company"], user_id=desk["booker"]).id
              for _ in range(4)]
    return unit, booked


def _act(action: str, booking_id: int, user_id: int) -> Prepare:
    def prepare():
        booking, user = _booking(booking_id), _user(user_id)
        booking.unit.space  # noqa: B018 — loaded before the race, as a request does

        def go() -> str:
            if action == "check_in":
                r.check_in(db.session, booking, user)
            elif action == "no_show":
                r.mark_no_show(db.session, booking, user)
            else:
                r.cancel(db.session, booking, user, reason="予定変更")
            return "ok"
        return go
    return prepare


def _new_booking(unit_id: int, user_id: int, period) -> Prepare:
    def prepare():
        unit, user = db.session.get(Unit, unit_id), _user(user_id)
        assert user.company is not None

        def go() -> str:
            r.book(db.session, unit, user, [period], 1)
            return "ok"
        return go
    return prepare


def _cancel_mails(booking_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.booking_id == booking_id, OutboxMessage.kind == "cancellation"))


def test_check_in_racing_a_cancellation_never_resurrects_it(app, make, front_desk):
    desk = front_desk
    day = desk["day"]
    wait_for_connections(POOL + 7)
    # One company makes 6 bookings a round, 120 within the hour: over the company limit
    # of bookings per hour (test_company_limits.py), which is not what this race is about.
    app.config["COMPANY_BOOKINGS_PER_HOUR"] = 0
    # 8:00 in Tokyo on the day: check-in is open, and the company may still cancel.
    with time_machine.travel(at(day, 480), tick=True):
        for _ in range(ROUNDS):
            unit, booked = _round_unit(make, desk)
            jobs: list[tuple[str, Prepare]] = []
            for booking_id in booked:
                jobs.append((f"check_in {booking_id}", _act("check_in", booking_id,
                                                           desk["operator"])))
                jobs.append((f"cancel {booking_id}", _act("cancel", booking_id, desk["booker"])))
            for _ in range(2):  # bookings in flight on the same unit and day
                jobs.append(("book", _new_booking(unit.id, desk["booker"],
                                                  r.hours_period(day, 600, 900))))
            outcomes = _race(app, jobs)
            assert not [o for o in outcomes if o[1].startswith("error")], outcomes
            assert [o for label, o in outcomes if label == "book"] == ["ok", "ok"], outcomes
            for booking_id in booked:
                mine = {label.split()[0]: o for label, o in outcomes
                        if label.endswith(f" {booking_id}")}
                winners = [action for action, o in mine.items() if o == "ok"]
                assert len(winners) == 1, mine
                loser = "cancel" if winners == ["check_in"] else "check_in"
                assert mine[loser] in ("already_cancelled/409", "bad_status/409"), mine
                b = _booking(booking_id)
                if winners == ["check_in"]:
                    assert b.status == BookingStatus.CHECKED_IN
                    assert b.checked_in_at is not None and b.cancelled_at is None
                    assert _cancel_mails(booking_id) == 0
                else:
                    assert b.status == BookingStatus.CANCELLED
                    assert b.cancelled_at is not None and b.checked_in_at is None
                    assert _cancel_mails(booking_id) == 1
            held = db.session.scalar(sa.select(sa.func.sum(Booking.seats)).where(
                Booking.unit_id == unit.id, Booking.status.in_(HOLDING_STATUSES)))
            assert held == 2 + sum(o == "ok" for label, o in outcomes
                                   if label.startswith("check_in"))
    assert_loads_rebuild_alike()


def test_check_ins_and_no_shows_racing_on_one_unit_and_day(app, make, front_desk):
    desk = front_desk
    day = desk["day"]
    wait_for_connections(POOL + 7)
    # 10:00 in Tokyo: the bookings have begun; a no-show may be recorded.
    with time_machine.travel(at(day, 600), tick=True):
        for _ in range(ROUNDS):
            unit, booked = _round_unit(make, desk)
            jobs: list[tuple[str, Prepare]] = []
            for booking_id in booked:
                jobs.append((f"check_in {booking_id}", _act("check_in", booking_id,
                                                           desk["operator"])))
                jobs.append((f"check_in {booking_id}", _act("check_in", booking_id,
                                                           desk["booker"])))
                jobs.append((f"no_show {booking_id}", _act("no_show", booking_id,
                                                          desk["operator"])))
            jobs.append(("book", _new_booking(unit.id, desk["booker"],
                                              r.hours_period(day, 840, 1080))))
            outcomes = _race(app, jobs)
            assert not [o for o in outcomes if o[1].startswith("error")], outcomes
            assert [o for label, o in outcomes if label == "book"] == ["ok"], outcomes
            for booking_id in booked:
                mine = [(label.split()[0], o) for label, o in outcomes
                        if label.endswith(f" {booking_id}")]
                winners = [action for action, o in mine if o == "ok"]
                assert len(winners) == 1, mine
                assert all(o == "bad_status/409" for _a, o in mine if o != "ok"), mine
                b = _booking(booking_id)
                assert b.cancelled_at is None
                if winners == ["check_in"]:
                    assert b.status == BookingStatus.CHECKED_IN and b.checked_in_at is not None
                else:
                    assert b.status == BookingStatus.NO_SHOW and b.checked_in_at is None
    assert_loads_rebuild_alike()


def test_a_flush_that_changes_bookings_locks_their_unit_first(app, make, front_desk,
                                                              count_queries, backend):
    """Loads are written under the unit's lock even when the caller took none."""
    _, [booking_id, *_] = _round_unit(make, front_desk)
    b = _booking(booking_id)
    b.seats = 2
    with count_queries() as statements:
        db.session.commit()
    text = [" ".join(s.split()).upper() for s in statements]
    written = next(i for i, s in enumerate(text) if s.startswith("UPDATE BOOKINGS"))
    locks = [i for i, s in enumerate(text) if "FROM UNITS" in s and "FOR UPDATE" in s]
    if backend == "postgresql":
        assert locks and locks[0] < written, text
    else:
        assert not locks  # SQLite: one writer at a time
    assert_loads_rebuild_alike()


def test_a_refused_transition_answers_409_and_changes_nothing(app, make, client, login):
    """What the loser of a race is told: the API answers 409 with the reason, the
    operator's page shows it, and the booking stays as the winner left it."""
    day = future_day(3)
    with time_machine.travel(at(day, 480), tick=True):  # check-in open, cancelling too
        w = worlds.world(make, owner=True, token=True)
        unit = w["desks"]
        unit.cancel_deadline_hours = 0
        db.session.commit()
        checked, cancelled = (make.booking(unit, at(day, 540), at(day, 1080), 1,
                                           company=w["company"], user_id=w["booker"].id)
                              for _ in range(2))
        r.check_in(db.session, checked, w["owner"])
        res = client.delete(f"/api/v1/bookings/{checked.reference}", headers=w["headers"])
        assert res.status_code == 409 and res.json["code"] == "bad_status"
        r.cancel(db.session, cancelled, w["booker"])
        login(w["owner"])
        res = client.post(f"/operator/bookings/{cancelled.id}/check-in")
        assert res.status_code == 409
        assert "この予約はキャンセル済みです。" in res.get_data(as_text=True)
    db.session.expire_all()
    assert (checked.status, checked.cancelled_at) == (BookingStatus.CHECKED_IN, None)
    assert _cancel_mails(checked.id) == 0
    assert (cancelled.status, cancelled.checked_in_at) == (BookingStatus.CANCELLED, None)
    assert_loads_rebuild_alike()


# ------------------------------------------------------- 8. rooms and houses are taken whole


@pytest.fixture
def rooms(make):
    org = make.organisation(OrgKind.OPERATOR)
    owner = make.user(organisation=org)
    space = make.space(org)
    room = make.unit(space, kind=UnitKind.MEETING_ROOM, capacity=1, fits_people=6,
                     price_amount=2000, price_per=PricePer.HOUR)
    house = make.unit(space, kind=UnitKind.WHOLE_HOUSE, capacity=1, fits_people=4,
                      price_amount=20000, price_per=PricePer.NIGHT)
    desks = make.unit(space, capacity=10)
    return {"owner": owner, "space": space, "room": room, "house": house, "desks": desks}


@pytest.mark.parametrize("which", ["room", "house"])
def test_an_override_on_a_room_or_house_is_zero_or_one(app, make, rooms, which):
    unit, owner = rooms[which], rooms["owner"]
    day = future_day(10)
    with pytest.raises(DomainError) as err:
        closures.set_override(db.session, owner, [unit], day, day, 3, "")
    assert err.value.code == "whole_unit_capacity" and err.value.status == 422
    db.session.rollback()
    # With a desk pool in the same request, nothing is written either.
    with pytest.raises(DomainError):
        closures.set_override(db.session, owner, [rooms["desks"], unit], day, day, 3, "")
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CapacityOverride)) == 0
    for seats in (0, 1):
        closures.set_override(db.session, owner, [unit], day, day, seats, "")
        db.session.commit()
    assert db.session.scalar(sa.select(CapacityOverride.capacity)) == 1


def test_a_room_cannot_be_booked_twice_at_once(app, make, rooms):
    room, owner = rooms["room"], rooms["owner"]
    company = make.company()
    user = make.user(organisation=company)
    day = future_day(10)
    with pytest.raises(DomainError):
        closures.set_override(db.session, owner, [room], day, day, 3, "")
    db.session.rollback()
    period = r.hours_period(day, 600, 720)
    r.book(db.session, db.session.get(Unit, room.id), user, [period], 1)
    for _ in range(2):
        with pytest.raises(DomainError) as err:
            r.book(db.session, db.session.get(Unit, room.id), user, [period], 1)
        assert err.value.code == "not_enough_seats"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 1


def test_the_database_keeps_rooms_and_houses_at_capacity_one(app, rooms):
    for kind in (UnitKind.MEETING_ROOM, UnitKind.PRIVATE_ROOM, UnitKind.WHOLE_HOUSE):
        db.session.add(Unit(space_id=rooms["space"].id, name="大部屋", kind=kind, capacity=3,
                            price_amount=0, price_per=PricePer.DAY))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.flush()
        db.session.rollback()
    room = db.session.get(Unit, rooms["room"].id)
    room.capacity = 2
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()
    desks = db.session.get(Unit, rooms["desks"].id)
    desks.capacity = 30  # a desk pool has as many as it has
    db.session.commit()


def test_a_desk_pool_made_a_room_keeps_its_overrides_at_one(app, make, rooms):
    desks, owner = rooms["desks"], rooms["owner"]
    day = future_day(10)
    closures.set_override(db.session, owner, [desks], day, day, 3, "")
    db.session.commit()
    space_admin.update_unit(db.session, owner, db.session.get(Unit, desks.id),
                            {"kind": UnitKind.MEETING_ROOM, "fits_people": 8})
    db.session.commit()
    db.session.expire_all()
    room = db.session.get(Unit, desks.id)
    assert (room.kind, room.capacity) == (UnitKind.MEETING_ROOM, 1)
    assert [o.capacity for o in room.capacity_overrides] == [1]
    company = make.company()
    user = make.user(organisation=company)
    period = r.hours_period(day, 600, 720)
    r.book(db.session, room, user, [period], 1)
    with pytest.raises(DomainError) as err:
        r.book(db.session, db.session.get(Unit, room.id), user, [period], 1)
    assert err.value.code == "not_enough_seats"


def test_a_room_made_a_desk_pool_takes_its_seats(app, make, rooms):
    room, owner = rooms["room"], rooms["owner"]
    day = future_day(10)
    make.booking(room, at(day, 600), at(day, 720), 1)  # the change is checked against it
    space_admin.update_unit(db.session, owner, db.session.get(Unit, room.id),
                            {"kind": UnitKind.DESK, "capacity": 12})
    db.session.commit()
    db.session.expire_all()
    desks = db.session.get(Unit, room.id)
    assert (desks.kind, desks.capacity) == (UnitKind.DESK, 12)


def test_the_override_form_says_why_for_a_room(client, login, rooms):
    login(rooms["owner"])
    day = future_day(10)
    response = client.post(f"/operator/spaces/{rooms['space'].id}/overrides", data={
        "override-units": [str(rooms["room"].id)], "override-start": day.isoformat(),
        "override-end": day.isoformat(), "override-capacity": "3",
        "override-reason": "団体利用",
    })
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    error = re.search(r'id="override-capacity-error"[^>]*>(.*?)</', page, re.S)
    assert error and "0か1" in error.group(1), page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CapacityOverride)) == 0

