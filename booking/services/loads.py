"""Unit loads: the seats holding bookings take on each unit, per Tokyo day, kept in step
with the bookings in the same transaction (the `unit_loads` table).

Search reads them (`read`, the one query of this table that differs per database) to
decide thousands of units in one query; availability stays the rule for everything else
and tests hold the two to the same answer.

They follow every change of bookings made through a Session (by the hooks `install()`
registers; create_app calls it): objects flushed (new, changed,
deleted bookings) and ORM UPDATE/DELETE statements on Booking; their `seats_free` follows
the unit's capacity (a changed Unit object, or an ORM UPDATE of units that does not say
`catalogue_unchanged`, as the bookings' lock_version bumps do).

Loads are written only under the lock of their unit, so that two transactions never
recount one unit's day at once (the second would insert rows the first has just
inserted: a unique violation on pk_unit_loads). Before a bulk statement on bookings the
units it touches are locked (in id order, as bookings lock them); before a flush that
changes bookings, the units not yet locked in the transaction (`note_locked`: the
booking service and the console say which they hold) are locked in id order, before the
booking rows are written. SQLite needs none of it: one writer at a time. Raw SQL that
bypasses the Session must call `refresh` itself (bench/generate.py calls `rebuild`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import ORMExecuteState, Session

from booking.db import OnConflict, insert_statement, install_listeners, one_of
from booking.models import HOLDING_STATUSES, Booking, Unit, UnitLoad
from booking.services.availability import at, tokyo_days

Piece = tuple[int, int, int]  # start minute, end minute, seats
Held = dict[int, list[Piece]]  # unit id -> its pieces (read: minutes from the first day)
Dirty = dict[int, set[date]]  # unit id -> Tokyo days to recount

_WATCHED = ("unit_id", "starts_at", "ends_at", "seats", "status")


def pieces(bookings: Iterable[tuple[datetime, datetime, int]], day: date) -> list[Piece]:
    """The step function of seats these bookings take on `day`, in minutes after Tokyo
    midnight; a booking that ends inside a minute holds all of it."""
    midnight = at(day, 0)
    delta: dict[int, int] = defaultdict(int)
    for start, end, seats in bookings:
        a = max((start - midnight).total_seconds() / 60, 0)
        b = min((end - midnight).total_seconds() / 60, 1440)
        if a < b:
            delta[math.floor(a)] += seats
            delta[math.ceil(b)] -= seats
    out: list[Piece] = []
    held = 0
    marks = sorted(delta)
    for left, right in pairwise(marks):
        held += delta[left]
        if held <= 0:
            continue
        if out and out[-1][1] == left and out[-1][2] == held:
            out[-1] = (out[-1][0], right, held)
        else:
            out.append((left, right, held))
    return out


def _rows(unit_id: int, capacity: int, area: int, day: date,
          bookings: Iterable[tuple[datetime, datetime, int]]) -> list[dict]:
    return [_row(unit_id, capacity, area, day, piece) for piece in pieces(bookings, day)]


def _row(unit_id: int, capacity: int, area: int, day: date, piece: Piece) -> dict:
    a, b, n = piece
    return {"unit_id": unit_id, "day": day, "start_min": a, "end_min": b, "seats": n,
            "seats_free": capacity - n, "area": area}


def _holding(*where) -> sa.Select:
    """Holding bookings with their unit's capacity and map square."""
    return (sa.select(Booking.unit_id, Unit.capacity, Unit.area, Booking.starts_at,
                      Booking.ends_at, Booking.seats).join(Unit, Unit.id == Booking.unit_id)
            .where(Booking.status.in_(HOLDING_STATUSES), *where))


def refresh(connection: sa.Connection, dirty: Mapping[int, Iterable[date]]) -> None:
    """Recount the loads of these units on these days from their holding bookings."""
    wanted = {unit_id: set(days) for unit_id, days in dirty.items() if days}
    if not wanted:
        return
    first = min(min(days) for days in wanted.values())
    last = max(max(days) for days in wanted.values())
    found: dict[int, list[tuple[datetime, datetime, int]]] = defaultdict(list)
    units: dict[int, tuple[int, int]] = {}  # unit id -> capacity, area
    for unit_id, capacity, area, start, end, seats in connection.execute(_holding(
            Booking.unit_id.in_(sorted(wanted)),
            Booking.starts_at < at(last + timedelta(days=1), 0),
            Booking.ends_at > at(first, 0))):
        found[unit_id].append((start, end, seats))
        units[unit_id] = (capacity, area)
    rows = []
    for unit_id, days in sorted(wanted.items()):
        connection.execute(sa.delete(UnitLoad).where(UnitLoad.unit_id == unit_id,
                                                     UnitLoad.day.in_(sorted(days))))
        if unit_id in units:
            for day in days:
                rows += _rows(unit_id, *units[unit_id], day, found[unit_id])
    if rows:
        connection.execute(sa.insert(UnitLoad), rows)


def _changes(unit_id: int, known: _Known) -> tuple[list[dict], list[sa.ColumnElement[bool]]]:
    """What brings the unit's loads from what the table counts (`known.written`) to what
    `known` holds, which it then counts: the pieces that changed or are new (upsert rows)
    and those that are gone (two pieces merged: DELETE conditions); a day that did not
    change costs nothing."""
    upserts: list[dict] = []
    gone: list[sa.ColumnElement[bool]] = []
    if len(known.held) == len(known.written):  # bookings are only ever added to it
        return upserts, gone
    for day in sorted(known.days):
        old = {p[0]: p for p in pieces(known.written, day)}
        new = pieces(known.held, day)
        upserts += [_row(unit_id, known.capacity, known.area, day, piece)
                    for piece in new if old.get(piece[0]) != piece]
        if vanished := sorted(set(old) - {p[0] for p in new}):
            gone.append(sa.and_(UnitLoad.day == day, UnitLoad.start_min.in_(vanished)))
    known.written = list(known.held)
    return upserts, gone


def _delete(connection: sa.Connection, unit_id: int, gone: list[sa.ColumnElement[bool]]) -> None:
    if gone:
        connection.execute(sa.delete(UnitLoad).where(UnitLoad.unit_id == unit_id,
                                                     sa.or_(*gone)))


def _write_unwritten(session: Session, unit_ids: Iterable[int] | None = None) -> None:
    """Write the loads that flushes left to the closing statement, of these units (None:
    all), now: before what they were computed from is forgotten, and before the commit."""
    _model, rows, conflict = unwritten(session, unit_ids)
    if rows:
        connection = session.connection()
        connection.execute(insert_statement(connection.dialect.name, _TABLE, conflict), rows)


# unit_loads' upsert for booking.db.insert_together: its key, and what a new row updates.
UPSERT = OnConflict(keys=("unit_id", "day", "start_min"), update=("end_min", "seats", "seats_free"))
_TABLE = cast(sa.Table, UnitLoad.__table__)


def unwritten(session: Session, unit_ids: Iterable[int] | None = None
              ) -> tuple[type[UnitLoad], list[dict], OnConflict]:
    """The loads that flushes left to the closing statement (see note_held), of these units
    (None: all), as a batch of booking.db.insert_together, which upserts them with its
    other rows; pieces that are gone (rare: two merged) are deleted now, in a statement of
    their own."""
    known: dict[int, _Known] = session.info.get(_KNOWN) or {}
    rows: list[dict] = []
    for unit_id in sorted(known if unit_ids is None else set(unit_ids) & set(known)):
        upserts, gone = _changes(unit_id, known[unit_id])
        _delete(session.connection(), unit_id, gone)
        rows += upserts
    return UnitLoad, rows, UPSERT


def rebuild(connection: sa.Connection) -> int:
    """Recount every load from the bookings (after a bulk load that bypassed the Session);
    returns the number of rows written."""
    connection.execute(sa.delete(UnitLoad))
    written = 0
    batch: list[dict] = []
    current: int | None = None
    current_capacity = current_area = 0
    held: dict[date, list[tuple[datetime, datetime, int]]] = defaultdict(list)

    def flush_unit() -> None:
        if current is None:  # before the first unit: nothing held yet
            return
        for day, bookings in held.items():
            batch.extend(_rows(current, current_capacity, current_area, day, bookings))
        held.clear()

    result = connection.execute(
        _holding().order_by(Booking.unit_id).execution_options(yield_per=20_000))
    for unit_id, capacity, area, start, end, seats in result:
        if unit_id != current:
            flush_unit()
            current, current_capacity, current_area = unit_id, capacity, area
            if len(batch) >= 20_000:
                connection.execute(sa.insert(UnitLoad), batch)
                written += len(batch)
                batch.clear()
        for day in tokyo_days(start, end):
            held[day].append((start, end, seats))
    flush_unit()
    if batch:
        connection.execute(sa.insert(UnitLoad), batch)
        written += len(batch)
    return written


def resync_free(connection: sa.Connection, unit_ids: Iterable[int]) -> None:
    """Recount `seats_free` of these units' loads from their capacity now."""
    if ids := sorted(set(unit_ids)):
        capacity = sa.select(Unit.capacity).where(Unit.id == UnitLoad.unit_id).scalar_subquery()
        connection.execute(sa.update(UnitLoad).where(UnitLoad.unit_id.in_(ids))
                           .values(seats_free=capacity - UnitLoad.seats))


# --- reading them (search) ----------------------------------------------------------------


def read(session: Session, unit_ids: list[int], night_unit_ids: list[int], days: list[date],
         fewer_free_than: int | None = None) -> Held:
    """The loads of these units on these days, and of those priced per night on the next
    (their check-out), in one query, as pieces in minutes from the first day's midnight;
    only the pieces that leave fewer seats free than `fewer_free_than` when given (what
    decides whether a unit has that many). Nothing is read for no units."""
    out: Held = {}
    if not unit_ids:
        return out
    connection = session.connection()
    on_postgresql = connection.dialect.name == "postgresql"

    # Minutes from the first day's midnight, counted by the database (quicker than a date
    # per row).
    days_in: sa.ColumnElement[int]
    if on_postgresql:
        days_in = sa.type_coerce(UnitLoad.day - days[0], sa.Integer)  # date - date: days
    else:
        days_in = sa.cast(sa.func.julianday(UnitLoad.day, type_=sa.Float)
                          - sa.func.julianday(days[0], type_=sa.Float), sa.Integer)
    minutes_in = days_in * 1440

    def loads_of(ids: list[int], on: list[date]) -> sa.Select:
        stmt = sa.select(UnitLoad.unit_id, minutes_in + UnitLoad.start_min,
                         minutes_in + UnitLoad.end_min, UnitLoad.seats
                         ).where(one_of(UnitLoad.day, on, sa.Date, on_postgresql))
        if fewer_free_than is not None:
            stmt = stmt.where(UnitLoad.seats_free < fewer_free_than)
        if fewer_free_than is None or not on_postgresql:  # the page's few units: by the key
            return stmt.where(one_of(UnitLoad.unit_id, ids, sa.Integer, on_postgresql))
        # Thousands of units: the rows of the days that leave too few seats free come by
        # the day index and keep those of the units marked in a map of the ids. (A list of
        # the ids took twice as long to send and plan; one probe of the primary key per
        # unit, three times as long.)
        return stmt.where(_unit_in_map(ids))

    checkout = days[-1] + timedelta(days=1)
    stmt: sa.Select | sa.CompoundSelect = loads_of(unit_ids, days)
    if night_unit_ids:
        stmt = sa.union_all(stmt, loads_of(night_unit_ids, [checkout]))
    for unit_id, start, end, seats in connection.execute(stmt).all():
        out.setdefault(unit_id, []).append((start, end, seats))
    return out


def _unit_in_map(ids: list[int]) -> sa.ColumnElement[bool]:
    """PostgreSQL: the load's unit is one of `ids`, looked up in a map of one byte per id
    (28 KB for the 28,000 units of 10,000 spaces; a bitmap took four times as long to
    build)."""
    marks = bytearray(max(ids) + 1)
    for i in ids:
        marks[i] = 1
    found = sa.bindparam(None, bytes(marks), type_=sa.LargeBinary)
    unit = UnitLoad.unit_id
    return sa.case((unit < len(marks), sa.func.get_byte(found, unit)), else_=0) == 1


# --- keeping them in step -------------------------------------------------------------------


def _mark(dirty: Dirty, unit_id: int | None, start: datetime | None, end: datetime | None) -> None:
    if unit_id is not None and start is not None and end is not None and start < end:
        dirty[unit_id].update(tokyo_days(start, end))


def _dirty(session: Session) -> Dirty:
    return session.info.setdefault("unit_loads_dirty", defaultdict(set))


def _capacity_changed(session: Session) -> set[int]:
    return session.info.setdefault("unit_loads_capacity", set())


_LOCKED = "unit_loads_units_locked"
_KNOWN = "unit_loads_known"  # unit id -> _Known: its holding bookings, read under its lock
_ADDED = "unit_loads_added"  # unit id -> bookings the flush under way adds to a _Known


@dataclass
class _Known:
    capacity: int
    area: int
    days: set[date]
    held: list[tuple[datetime, datetime, int]]
    # The bookings the table's loads of these days count: `held` before the additions that
    # are not written yet (flushed bookings whose loads wait for the closing statement).
    written: list[tuple[datetime, datetime, int]]


def note_held(session: Session, unit: Unit, days: Iterable[date],
              held: Iterable[tuple[datetime, datetime, int]]) -> None:
    """The caller holds the unit's lock (note_locked) and has just read, under it, every
    holding booking (start, end, seats) that touches `days`, and the unit (its capacity).
    A flush that only adds bookings of this unit on these days then recounts its loads
    from these and the new ones without reading the day's bookings again, and leaves the
    pieces that changed to be written by the caller's closing statement (`unwritten`, one
    upsert among its other inserts: one round trip less under the lock), or else before
    the commit or before anything forgets them. Anything else (a booking changed or
    deleted, a bulk statement, the capacity changed) forgets it and recounts from the
    table, as without it. Forgotten when the transaction ends."""
    session.info.setdefault(_KNOWN, {})[unit.id] = _Known(unit.capacity, unit.area, set(days),
                                                          list(held), list(held))


def note_added(session: Session, booking: Booking) -> None:
    """A new booking whose row goes in without a flush (booking.db.as_flushed): counted
    into the bookings noted of its unit (note_held, which must cover its days), its loads
    written with the closing statement (`unwritten`) or before the commit."""
    known = (session.info.get(_KNOWN) or {}).get(booking.unit_id)
    if known is None or not set(tokyo_days(booking.starts_at, booking.ends_at)) <= known.days:
        raise RuntimeError("a booking stored without a flush needs its unit's days noted "
                           "under its lock (note_held)")
    if booking.status in HOLDING_STATUSES:
        known.held.append((booking.starts_at, booking.ends_at, booking.seats))


def note_locked(session: Session, unit_ids: Iterable[int]) -> None:
    """The caller holds the row locks of these units until the transaction ends."""
    session.info.setdefault(_LOCKED, set()).update(unit_ids)


def _lock(session: Session, connection: sa.Connection, unit_ids: Iterable[int]) -> None:
    """Lock these units (in id order) unless this transaction holds them already."""
    if connection.dialect.name != "postgresql":
        return  # SQLite: writers run one at a time
    held = session.info.setdefault(_LOCKED, set())
    if wanted := sorted(set(unit_ids) - held):
        connection.execute(sa.select(Unit.id).where(Unit.id.in_(wanted))
                           .order_by(Unit.id).with_for_update())
        held.update(wanted)


def _forget_locks(session: Session, transaction) -> None:
    # The database transaction ended: its locks are gone. A savepoint rolled back takes
    # the locks taken inside it along: forgetting them all then costs a lock again at most.
    if transaction.parent is None or transaction.nested:
        session.info.pop(_LOCKED, None)
        session.info.pop(_KNOWN, None)
        session.info.pop(_ADDED, None)


def _before_flush(session: Session, _context, _instances) -> None:
    dirty = _dirty(session)
    changed = set(session.dirty)
    new = set(session.new)
    known: dict[int, _Known] = session.info.get(_KNOWN) or {}
    added: dict[int, list[tuple[datetime, datetime, int]]] = defaultdict(list)
    session.info[_ADDED] = added
    moved: list[int] = []  # persistent bookings: their rows as stored before this flush
    for obj in (*new, *changed, *session.deleted):
        if isinstance(obj, Unit) and obj in changed and obj.id is not None \
                and sa.inspect(obj).attrs["capacity"].history.has_changes():
            _capacity_changed(session).add(obj.id)
            _write_unwritten(session, [obj.id])
            known.pop(obj.id, None)
        if not isinstance(obj, Booking):
            continue
        if obj in changed and not any(
                sa.inspect(obj).attrs[name].history.has_changes() for name in _WATCHED):
            continue
        unit_id = obj.unit_id if obj.unit_id is not None else (obj.unit.id if obj.unit else None)
        _mark(dirty, unit_id, obj.starts_at, obj.ends_at)
        if obj.id is not None:
            moved.append(obj.id)
        if obj not in new:
            _write_unwritten(session)
            known.clear()  # a booking changed or deleted: recount from the table
        elif unit_id in known and obj.starts_at is not None and obj.ends_at is not None:
            if set(tokyo_days(obj.starts_at, obj.ends_at)) <= known[unit_id].days:
                if obj.status in HOLDING_STATUSES:
                    added[unit_id].append((obj.starts_at, obj.ends_at, obj.seats))
            else:
                _write_unwritten(session, [unit_id])
                known.pop(unit_id)
    if moved:
        for unit_id, start, end in session.connection().execute(
            sa.select(Booking.unit_id, Booking.starts_at, Booking.ends_at)
            .where(Booking.id.in_(moved))
        ):
            _mark(dirty, unit_id, start, end)
    if dirty:  # before the bookings are written: their units' locks, as bookings take them
        _lock(session, session.connection(), dirty)


def _after_flush(session: Session, _context) -> None:
    dirty = session.info.pop("unit_loads_dirty", None)
    added = session.info.pop(_ADDED, None) or {}
    if dirty:
        known: dict[int, _Known] = session.info.get(_KNOWN) or {}
        rest = {unit_id: days for unit_id, days in dirty.items() if unit_id not in known}
        for unit_id in sorted(set(dirty) - set(rest)):
            known[unit_id].held.extend(added.get(unit_id, []))
        if session.in_nested_transaction():  # a savepoint's end forgets what is known
            _write_unwritten(session)
        refresh(session.connection(), rest)
    if resized := session.info.pop("unit_loads_capacity", None):
        resync_free(session.connection(), resized)


def _before_commit(session: Session) -> None:
    """What a flush left to a closing statement that did not come is written before the
    commit (the commit's own flush comes after this hook: it is done here first)."""
    if session.info.get(_KNOWN):
        session.flush()
        _write_unwritten(session)


def _bulk_statement(state: ORMExecuteState):
    if not (state.is_update or state.is_delete) or state.bind_mapper is None:
        return None
    if state.is_update and state.bind_mapper.class_ is Unit \
            and not state.execution_options.get("catalogue_unchanged"):
        return _bulk_unit_update(state)
    if state.bind_mapper.class_ is not Booking:
        return None
    connection = state.session.connection()
    touched = _matched(state, Booking.id, Booking.unit_id, Booking.starts_at, Booking.ends_at)
    if not touched:
        return None
    _lock(state.session, connection, {unit_id for _id, unit_id, _s, _e in touched})
    _write_unwritten(state.session)
    state.session.info.pop(_KNOWN, None)  # recounted from the table from now on
    result = state.invoke_statement()
    dirty: Dirty = defaultdict(set)
    for _id, unit_id, start, end in touched:
        _mark(dirty, unit_id, start, end)
    if state.is_update:  # where they are now (an update may move them)
        for unit_id, start, end in connection.execute(
            sa.select(Booking.unit_id, Booking.starts_at, Booking.ends_at)
            .where(Booking.id.in_([row[0] for row in touched]))
        ):
            _mark(dirty, unit_id, start, end)
    refresh(connection, dirty)
    return result


def _bulk_unit_update(state: ORMExecuteState):
    ids = [unit_id for unit_id, in _matched(state, Unit.id)]
    _write_unwritten(state.session)
    state.session.info.pop(_KNOWN, None)  # capacities may change
    result = state.invoke_statement()
    resync_free(state.session.connection(), ids)
    return result


def _matched(state: ORMExecuteState, *columns) -> Sequence[sa.Row]:
    """These columns of the rows the bulk statement is about to change."""
    where = getattr(state.statement, "whereclause", None)  # an UPDATE's or a DELETE's
    return state.session.connection().execute(
        sa.select(*columns).where(where if where is not None else sa.true())).all()


def install() -> None:
    """Keep unit_loads in step with every flush and bulk statement of any Session
    (create_app calls it; a second call registers nothing twice)."""
    install_listeners((
        (Session, "after_transaction_end", _forget_locks),
        (Session, "before_flush", _before_flush),
        (Session, "after_flush_postexec", _after_flush),
        (Session, "before_commit", _before_commit),
        (Session, "do_orm_execute", _bulk_statement),
    ))
