"""unit_loads stays the step function of the holding bookings, whatever changes them, on
SQLite and PostgreSQL (search decides units from it)."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from booking import clock
from booking.extensions import db
from booking.models import (
    HOLDING_STATUSES,
    NO_AREA,
    Booking,
    BookingStatus,
    PricePer,
    Unit,
    UnitKind,
    UnitLoad,
    User,
    map_area,
)
from booking.services import loads
from booking.services.availability import at, tokyo_days
from tests import worlds
from tests.edge import reservations as r
from tests.worlds import future_day


def stored() -> dict:
    """The stored pieces, after checking that each says its unit's capacity minus seats,
    and its unit's map square."""
    out: dict = defaultdict(list)
    units = {unit_id: (capacity, area) for unit_id, capacity, area
             in db.session.execute(sa.select(Unit.id, Unit.capacity, Unit.area))}
    for row in db.session.scalars(sa.select(UnitLoad).order_by(
            UnitLoad.unit_id, UnitLoad.day, UnitLoad.start_min)):
        assert row.seats_free == units[row.unit_id][0] - row.seats, row
        assert row.area == units[row.unit_id][1], row
        out[(row.unit_id, row.day)].append((row.start_min, row.end_min, row.seats))
    return dict(out)


def recounted() -> dict:
    """What the loads must be: counted afresh from every holding booking."""
    held: dict = defaultdict(list)
    for b in db.session.scalars(sa.select(Booking).where(Booking.status.in_(HOLDING_STATUSES))):
        for day in tokyo_days(b.starts_at, b.ends_at):
            held[(b.unit_id, day)].append((b.starts_at, b.ends_at, b.seats))
    out = {key: loads.pieces(bookings, key[1]) for key, bookings in held.items()}
    return {key: pieces for key, pieces in out.items() if pieces}


@pytest.fixture
def world(make):
    w = worlds.world(make)
    w["room"] = make.unit(w["space"], kind=UnitKind.MEETING_ROOM, capacity=1, fits_people=6,
                          price_amount=2000, price_per=PricePer.HOUR)
    return w


def test_pieces_cut_at_midnight_and_merge_equal_neighbours():
    day = date(2027, 8, 1)
    bookings = [(at(day, 540), at(day, 720), 2), (at(day, 720), at(day, 1080), 2),
                (at(day, 600), at(day, 660), 1), (at(day, 1320), at(day, 1440 + 600), 1)]
    assert loads.pieces(bookings, day) == [(540, 600, 2), (600, 660, 3), (660, 1080, 2),
                                           (1320, 1440, 1)]
    assert loads.pieces(bookings, day + timedelta(days=1)) == [(0, 600, 1)]
    assert loads.pieces([], day) == []


def test_book_change_cancel_through_the_service(world):
    desks, room, user = world["desks"], world["room"], world["booker"]
    day = future_day()
    [first] = r.book(db.session, desks, user, [r.day_period(desks, day)], 3)
    r.book(db.session, desks, user, [r.day_period(desks, day)], 2)
    [meeting] = r.book(db.session, room, user, [r.hours_period(day, 600, 720)], 1)
    assert stored() == recounted()
    assert stored()[(desks.id, day)] == [(540, 1080, 5)]
    assert stored()[(room.id, day)] == [(600, 720, 1)]

    r.change(db.session, meeting, user, period=r.hours_period(day + timedelta(days=1), 780, 840))
    assert (room.id, day) not in stored()
    assert stored()[(room.id, day + timedelta(days=1))] == [(780, 840, 1)]

    r.cancel(db.session, first, user)
    assert stored()[(desks.id, day)] == [(540, 1080, 2)]
    assert stored() == recounted()


def test_a_booking_writes_only_the_pieces_it_changes(world, make, count_queries):
    """book() hands the day's bookings it read under the lock to the loads (note_held):
    the day is recounted without reading them again, and only the pieces that changed
    are written (an upsert; a DELETE too when pieces merge)."""
    room, user = world["room"], world["booker"]
    day = future_day(4)
    r.book(db.session, room, user, [r.hours_period(day, 600, 660)], 1)
    r.book(db.session, room, user, [r.hours_period(day, 720, 780)], 1)
    assert stored()[(room.id, day)] == [(600, 660, 1), (720, 780, 1)]
    together = db.engine.dialect.name == "postgresql"  # the upsert joins the closing INSERT

    def loads_written(statements: list[str]) -> list[str]:
        written = [s for s in statements if "unit_loads" in s]
        if together:  # one statement with the booking's audit entry, not one of its own
            assert all("audit_log" in s for s in written if not s.startswith("DELETE")), written
        return [s.split()[0] for s in written]

    with count_queries() as statements:  # 11:00-12:00 joins them into one piece
        r.book(db.session, room, user, [r.hours_period(day, 660, 720)], 1)
    upsert = "WITH" if together else "INSERT"
    assert loads_written(statements) == ["DELETE", upsert], statements
    assert not any("FROM bookings JOIN units" in s for s in statements), statements
    assert stored()[(room.id, day)] == [(600, 780, 1)]
    with count_queries() as statements:  # a piece of its own: one INSERT, no DELETE
        r.book(db.session, room, user, [r.hours_period(day, 840, 900)], 1)
    assert loads_written(statements) == [upsert]
    assert stored()[(room.id, day)] == [(600, 780, 1), (840, 900, 1)]
    assert stored() == recounted()


def _noted_and_added(desks: Unit, user: User, day: date, seats: int) -> Booking:
    """As book() leaves it before its closing statement: the day's bookings noted under
    the lock, one more flushed, its loads not written yet."""
    held = [(b.starts_at, b.ends_at, b.seats) for b in db.session.scalars(
        sa.select(Booking).where(Booking.unit_id == desks.id))]
    loads.note_held(db.session, desks, [day], held)
    start, end = r.day_period(desks, day)
    added = Booking(reference=f"T{day:%m%d}{seats}", unit_id=desks.id, company_id=user.company.id,
                    user_id=user.id, starts_at=start, ends_at=end, seats=seats,
                    price_amount=0, status=BookingStatus.CONFIRMED)
    db.session.add(added)
    db.session.flush()
    return added


def test_loads_a_flush_leaves_for_the_closing_statement_are_written_at_the_commit(world):
    """A transaction that noted a unit's bookings (note_held) and flushed one more, then
    ends without book()'s closing statement, still commits the loads of it."""
    desks, user = world["desks"], world["booker"]
    day = future_day(6)
    r.book(db.session, desks, user, [r.day_period(desks, day)], 2)
    _noted_and_added(desks, user, day, 1)
    assert stored()[(desks.id, day)] == [(540, 1080, 2)]  # left for the closing statement
    db.session.commit()
    assert stored()[(desks.id, day)] == [(540, 1080, 3)]
    assert stored() == recounted()


def test_loads_left_unwritten_are_written_before_they_are_forgotten(world):
    """A booking on a day that was not noted forgets what was noted of its unit (its days
    recounted from the table from then on): what that had left unwritten is written
    first, though the recount does not touch its day."""
    desks, user = world["desks"], world["booker"]
    day = future_day(7)
    r.book(db.session, desks, user, [r.day_period(desks, day)], 2)
    _noted_and_added(desks, user, day, 1)
    start, end = r.day_period(desks, day + timedelta(days=1))
    db.session.add(Booking(reference="T-NEXT-DAY", unit_id=desks.id, company_id=user.company.id,
                           user_id=user.id, starts_at=start, ends_at=end, seats=1,
                           price_amount=0, status=BookingStatus.CONFIRMED))
    db.session.flush()
    assert stored()[(desks.id, day)] == [(540, 1080, 3)]
    db.session.commit()
    assert stored() == recounted()


def test_flushed_objects_and_bulk_statements(world, make):
    desks = world["desks"]
    day = future_day(12)
    booking = make.booking(desks, at(day, 540), at(day, 1080), 4)
    make.booking(desks, at(day, 600), at(day, 700), 1)
    assert stored()[(desks.id, day)] == [(540, 600, 4), (600, 700, 5), (700, 1080, 4)]

    booking.seats = 6  # an ORM change
    db.session.commit()
    assert stored()[(desks.id, day)] == [(540, 600, 6), (600, 700, 7), (700, 1080, 6)]

    booking.starts_at, booking.ends_at = at(day + timedelta(days=1), 540), at(day + timedelta(days=1), 600)
    db.session.commit()  # moved: both days recounted
    assert stored()[(desks.id, day)] == [(600, 700, 1)]
    assert stored()[(desks.id, day + timedelta(days=1))] == [(540, 600, 6)]

    db.session.execute(sa.update(Booking).where(Booking.id == booking.id)
                       .values(status=BookingStatus.CANCELLED))  # a bulk statement
    db.session.commit()
    assert (desks.id, day + timedelta(days=1)) not in stored()

    db.session.execute(sa.delete(Booking).where(Booking.unit_id == desks.id))
    db.session.commit()
    assert stored() == {}


def test_deleted_object_and_rolled_back_change(world, make):
    desks = world["desks"]
    day = future_day(14)
    booking = make.booking(desks, at(day, 540), at(day, 1080), 2)
    booking.seats = 9
    db.session.flush()
    db.session.rollback()  # the recount rolls back with the change
    assert stored()[(desks.id, day)] == [(540, 1080, 2)]
    db.session.delete(db.session.get(Booking, booking.id))
    db.session.commit()
    assert stored() == {}


def test_night_stays_load_both_days_and_rebuild_agrees(make, world):
    house = make.unit(kind=UnitKind.WHOLE_HOUSE, capacity=1, fits_people=4, price_per=PricePer.NIGHT)
    day = future_day(20)
    make.booking(house, at(day, 900), at(day + timedelta(days=2), 600), 1)
    make.booking(world["desks"], at(day, 540), at(day, 1080), 3)
    assert stored()[(house.id, day)] == [(900, 1440, 1)]
    assert stored()[(house.id, day + timedelta(days=1))] == [(0, 1440, 1)]
    assert stored()[(house.id, day + timedelta(days=2))] == [(0, 600, 1)]
    incremental = stored()
    written = loads.rebuild(db.session.connection())
    db.session.commit()
    assert stored() == incremental == recounted()
    assert written == sum(len(p) for p in incremental.values())


def test_seats_free_follows_the_units_capacity(world, make):
    desks = world["desks"]
    day = future_day(18)
    make.booking(desks, at(day, 540), at(day, 1080), 4)
    free = lambda: db.session.scalars(sa.select(UnitLoad.seats_free)  # noqa: E731
                                      .where(UnitLoad.unit_id == desks.id)).all()
    assert free() == [6]
    desks.capacity = 3  # an operator's change, through the object: overbooked by one
    db.session.commit()
    assert free() == [-1]
    db.session.execute(sa.update(Unit).where(Unit.id == desks.id).values(capacity=12))
    db.session.commit()
    assert free() == [8]
    # A booking's lock_version bump says it leaves the catalogue (capacity) alone.
    db.session.connection().execute(  # SQL past the Session: no hook sees it
        sa.update(Unit.__table__).where(Unit.id == desks.id).values(capacity=20))
    db.session.execute(sa.update(Unit).where(Unit.id == desks.id)
                       .values(lock_version=Unit.lock_version + 1)
                       .execution_options(catalogue_unchanged=True))
    db.session.commit()
    assert free() == [8]


def test_a_unit_keeps_the_map_square_its_space_had_when_it_was_made(world, make):
    """Unit.area: the square of its space's coordinates at the unit's creation, carried by
    its loads; a space moved later leaves it (search reads a unit's loads by its own
    square), and a unit made after the move takes the new one."""
    space, desks = world["space"], world["desks"]
    assert desks.area == map_area(space.lat, space.lon) != NO_AREA
    assert map_area(34.999, 138.25) == map_area(34.75, 138.4999) != map_area(35.0, 138.25)
    assert map_area(None, 138.0) == NO_AREA
    day = future_day(19)
    make.booking(desks, at(day, 540), at(day, 1080), 2)
    space.lat, space.lon = 43.06, 141.35  # moved to Sapporo
    db.session.commit()
    later = make.unit(space, name="新しい席")
    make.booking(desks, at(day, 600), at(day, 700), 1)
    make.booking(later, at(day, 600), at(day, 700), 1)
    db.session.expire_all()
    assert desks.area == map_area(34.9738, 138.3866)  # (the world's space: 静岡)
    assert later.area == map_area(43.06, 141.35)
    assert set(db.session.scalars(sa.select(UnitLoad.area).where(UnitLoad.unit_id == desks.id))) \
        == {desks.area}
    assert stored() == recounted()
    loads.rebuild(db.session.connection())
    assert stored() == recounted()


@pytest.fixture
def app_config(backend):
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 12, "max_overflow": 4, "pool_timeout": 60}}


@pytest.mark.xdist_group("many_connections")  # see pyproject: never two at once
def test_racing_bookings_and_cancellations_leave_exact_loads(app, world, make):
    """Bookings and cancellations of one unit at once: the loads end as a recount."""
    desks, user_id = world["desks"], world["booker"].id
    day = future_day(8)
    existing = [make.booking(desks, *r.day_period(desks, day), seats=1, user_id=user_id).id
                for _ in range(4)]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def book() -> None:
        with app.app_context():
            try:
                unit = db.session.get(type(desks), desks.id)
                user = db.session.get(User, user_id)
                period = r.day_period(unit, day)
                db.session.commit()
                barrier.wait(timeout=60)
                r.book(db.session, unit, user, [period], 1)
            except BaseException as error:  # reported below
                errors.append(error)

    def cancel(booking_id: int) -> None:
        with app.app_context():
            try:
                booking = db.session.get(Booking, booking_id)
                user = db.session.get(User, user_id)
                db.session.commit()
                barrier.wait(timeout=60)
                r.cancel(db.session, booking, user)
            except BaseException as error:  # reported below
                errors.append(error)

    threads = [threading.Thread(target=book) for _ in range(4)]
    threads += [threading.Thread(target=cancel, args=(bid,)) for bid in existing]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    db.session.expire_all()
    assert stored() == recounted()
    assert stored()[(desks.id, day)] == [(540, 1080, 4)]


def test_rebuild_command_recounts_after_sql_that_bypassed_the_session(world, runner):
    desks = world["desks"]
    day = future_day(16)
    db.session.execute(sa.insert(Booking.__table__).values(  # Core: no Session hook sees it
        reference="RAWSQL000001", unit_id=desks.id, starts_at=at(day, 540), ends_at=at(day, 1080),
        seats=3, status="confirmed", price_amount=0, subsidy_amount=0, sequence=0, locale="ja",
        note="", cancel_reason="", created_at=clock.now(), updated_at=clock.now()))
    db.session.commit()
    assert (desks.id, day) not in stored()
    result = runner.invoke(args=["rebuild-loads"])
    assert result.exit_code == 0 and "unit loads: 1 rows" in result.output
    assert stored() == recounted() == {(desks.id, day): [(540, 1080, 3)]}
