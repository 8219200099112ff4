"""Free seats of units over time: the one function search, pages, bookings and the API call.

A unit's free seats are a step function of time. We compute it by a sweep over the
instants where anything changes (day boundaries, opening and closing, campaign windows,
booking starts and ends) and keep, for each piece, three numbers:

- physical: seats that exist and are not booked (capacity or the day's override, minus
  every booking that holds seats; 0 on a closure);
- regular: what the public can book at the unit's own price (physical while the space is
  open and the unit not members-only, else 0);
- per campaign slot: what the slot can still give (min of physical and the slot's seats
  minus the slot's own bookings, inside the slot's dates and daily window and the
  space's opening hours, else 0). A slot opens a members-only unit to everyone.

Everything for a list of units is loaded in a constant number of queries.

A unit here is a model Unit with its space loaded, or anything that reads the same
(search passes the units of its catalogue, services/catalogue.py, held in memory).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from itertools import islice, pairwise
from typing import NamedTuple, Protocol

import jpholiday
import sqlalchemy as sa
from sqlalchemy.orm import Session, contains_eager

from booking.clock import TOKYO
from booking.db import one_of
from booking.models import (
    HOLDING_STATUSES,
    Booking,
    Campaign,
    CampaignSlot,
    CapacityOverride,
    Closure,
    Unit,
)


@lru_cache(maxsize=65536)  # timelines ask for the same few instants again and again
def at(day: date, minutes: int) -> datetime:
    """The Tokyo instant `minutes` after midnight of `day` (1440 = next midnight)."""
    return datetime.combine(day, time(0), TOKYO) + timedelta(minutes=minutes)


def tokyo_days(start: datetime, end: datetime) -> list[date]:
    """Every Tokyo date that [start, end) touches."""
    first = start.astimezone(TOKYO).date()
    last = (end - timedelta(microseconds=1)).astimezone(TOKYO).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def overlaps(start_col, end_col, start: datetime | sa.ColumnElement,
             end: datetime | sa.ColumnElement):
    """The one half-open overlap predicate: [start_col, end_col) meets [start, end)."""
    return sa.and_(start_col < end, end_col > start)


@lru_cache(maxsize=4096)  # jpholiday works the year's holidays out at every call
def is_holiday(day: date) -> bool:
    return jpholiday.is_holiday(day)


class OpenHours(Protocol):
    # Read-only, so that the catalogue's Hours (a NamedTuple) fits as well as the model's.
    @property
    def opens_min(self) -> int: ...
    @property
    def closes_min(self) -> int: ...


class SpaceHours(Protocol):
    @property
    def closed_on_holidays(self) -> bool: ...

    def hours_on(self, weekday: int) -> OpenHours | None: ...


class UnitTerms(Protocol):
    """What availability reads of a unit: a model Unit, or a unit of the search catalogue."""

    # Read-only (properties), so that a model's Mapped columns and relationship fit.
    @property
    def id(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def members_only(self) -> bool: ...
    @property
    def space(self) -> SpaceHours: ...


@dataclass(frozen=True)
class Piece:
    start: datetime
    end: datetime
    physical: int
    regular: int
    slots: dict[int, int] = field(default_factory=dict)

    def free(self, slot_id: int | None = None) -> int:
        return self.regular if slot_id is None else self.slots.get(slot_id, 0)


@dataclass
class Timeline:
    unit: UnitTerms
    pieces: list[Piece]  # in time order, none overlapping
    slots: list[CampaignSlot]
    # The holding bookings read for it (Booking or _Held: starts_at, ends_at, seats, ...):
    # the booking service hands them to the unit loads, which then need not read them.
    held: list = field(default_factory=list)
    _ends: list[datetime] | None = field(default=None, init=False, repr=False, compare=False)

    def _during(self, start: datetime, end: datetime) -> Iterator[Piece]:
        """The pieces that meet [start, end), found by halving (a month's free days ask
        for every day's, a search for every hour's: not a walk from the first piece)."""
        if self._ends is None:
            self._ends = [p.end for p in self.pieces]
        for piece in islice(self.pieces, bisect_right(self._ends, start), None):
            if piece.start >= end:
                return
            yield piece

    def min_free(self, start: datetime, end: datetime, slot_id: int | None = None) -> int:
        """Seats free during the whole of [start, end) (0 if any part is closed)."""
        covered = start
        lowest: int | None = None
        for piece in self._during(start, end):
            if piece.start > covered:  # a hole: outside the computed range
                return 0
            free = piece.free(slot_id)
            lowest = free if lowest is None else min(lowest, free)
            covered = piece.end
        if lowest is None or covered < end:
            return 0
        return max(lowest, 0)

    def max_free(self, start: datetime, end: datetime, slot_id: int | None = None) -> int:
        """The most seats free at any instant of [start, end)."""
        return max((p.free(slot_id) for p in self._during(start, end)), default=0)


class ClosedDays(NamedTuple):
    """A closure's days (inclusive), which is all availability reads of it."""

    start_date: date
    end_date: date


@dataclass
class UnitData:
    """What decides a unit's seats over a range, as load() reads it (or a caller keeps it:
    services/free_time.py)."""

    closures: list[ClosedDays] = field(default_factory=list)
    overrides: dict[date, int] = field(default_factory=dict)
    slots: list[CampaignSlot] = field(default_factory=list)
    bookings: list = field(default_factory=list)  # Booking, or _Held rows


def regular_window(unit: UnitTerms, day: date) -> tuple[datetime, datetime] | None:
    """Opening hours of the unit's space on `day`, or None when it is closed that day."""
    space = unit.space
    if space.closed_on_holidays and is_holiday(day):
        return None
    hours = space.hours_on(day.weekday())
    if hours is None:
        return None
    return at(day, hours.opens_min), at(day, hours.closes_min)


def slot_window(slot: CampaignSlot, day: date, unit: UnitTerms | None = None
                ) -> tuple[datetime, datetime] | None:
    """The slot's daily window on `day`, within the space's opening hours of that day
    (those of `unit`, the slot's unit, when given: no query for slot.unit)."""
    if not slot.covers(day, day):
        return None
    opening = regular_window(slot.unit if unit is None else unit, day)
    if opening is None:
        return None
    start = max(at(day, slot.daily_start_min), opening[0])
    end = min(at(day, slot.daily_end_min), opening[1])
    return (start, end) if start < end else None


def _closed(data: UnitData, day: date) -> bool:
    return any(c.start_date <= day <= c.end_date for c in data.closures)


@cache
def slot_is_offered() -> sa.ColumnElement[bool]:
    """CampaignSlot.is_offered in SQL, built once: what every query of the slots offered
    puts in its WHERE. Building it makes two aliased classes and their hybrids:
    milliseconds each time (4 ms on a loaded 2-core machine), paid twice by every
    booking, once under the unit's lock, and by every space page read. The expression is
    immutable and correlates to whichever statement it is put in, so one serves them all."""
    return sa.and_(CampaignSlot.is_offered)


def offered_slots(*columns) -> sa.Select:
    """`columns` of the campaign slots units offer (CampaignSlot.is_offered), joined to
    their campaign."""
    return (sa.select(*columns).join(Campaign, CampaignSlot.campaign_id == Campaign.id)
            .where(slot_is_offered()))


def load(
    session: Session,
    units: Sequence[UnitTerms],
    start: datetime,
    end: datetime,
    *,
    exclude_booking_id: int | None = None,
    whole_bookings: bool = True,
    kept_slots: dict[int, CampaignSlot] | None = None,
) -> dict[int, UnitData]:
    """Closures, overrides, offered slots and holding bookings of `units`; the bookings
    as model objects, or as rows of what a timeline reads of them (quicker by far when
    there are many).

    As rows: one query (a UNION ALL of the four, told apart by its first column), and a
    second only when a unit offers a campaign slot then (the slots as model objects, with
    their campaign). As model objects: that, and a query of the bookings.

    `kept_slots`: slots by id kept across requests (search keeps them with its catalogue,
    which a change of any slot or campaign replaces); the slots offered are taken from
    there, and those it lacks are read (in a session of their own, so that they stay
    readable detached: read only) and kept in it."""
    ids = [u.id for u in units]
    data: dict[int, UnitData] = defaultdict(UnitData)
    if not ids:
        return data
    days = tokyo_days(start, end) or [start.astimezone(TOKYO).date()]
    params = {"ids": ids, "first": days[0], "last": days[-1], "start": start, "end": end,
              "exclude": exclude_booking_id}
    slot_ids: list[int] = []
    # PostgreSQL, several units (a search's): the ids as one array (db.one_of). One unit (a
    # booking's check) keeps `unit_id IN (:id)`, planned as `= :id`: an index scan by unit
    # and time (0.01 ms), where `= ANY` of a one-id array took a bitmap scan (0.4 ms) and
    # a booking 9 % longer.
    by_array = len(ids) > 1 and session.get_bind().dialect.name == "postgresql"
    statement = _load_statement(not whole_bookings, exclude_booking_id is not None, by_array)
    for kind, unit_id, first_day, last_day, number, starts, ends, slot_id in session.execute(
            statement, params):
        if kind == _CLOSURE:
            data[unit_id].closures.append(ClosedDays(first_day, last_day))
        elif kind == _OVERRIDE:
            data[unit_id].overrides[first_day] = number
        elif kind == _SLOT:
            slot_ids.append(slot_id)
        else:
            data[unit_id].bookings.append(_Held(unit_id, starts, ends, number, slot_id))
    if slot_ids and kept_slots is not None:
        if missing := [i for i in slot_ids if i not in kept_slots]:
            own = Session(bind=session.connection(), autoflush=False, expire_on_commit=False)
            try:
                kept_slots.update((slot.id, slot) for slot in own.scalars(_slots(missing)))
            finally:
                own.close()
        for slot_id in sorted(slot_ids):
            slot = kept_slots[slot_id]
            data[slot.unit_id].slots.append(slot)
    elif slot_ids:
        for slot in session.scalars(_slots(slot_ids)):
            data[slot.unit_id].slots.append(slot)
    if whole_bookings:
        for booking in session.scalars(
                sa.select(Booking).where(*_held(exclude_booking_id is not None, by_array)),
                params):
            data[booking.unit_id].bookings.append(booking)
    return data


def _slots(ids: list[int]) -> sa.Select[CampaignSlot]:
    """These campaign slots in id order, with their campaign (it comes with the join: no
    query per campaign when callers read it)."""
    return (sa.select(CampaignSlot).join(Campaign, CampaignSlot.campaign_id == Campaign.id)
            .where(CampaignSlot.id.in_(ids)).order_by(CampaignSlot.id)
            .options(contains_eager(CampaignSlot.campaign)))


def _held(excluding: bool, by_array: bool) -> tuple[sa.ColumnElement[bool], ...]:
    """Holding bookings of the units `:ids` that overlap [:start, :end) (but `:exclude`)."""
    where = (one_of(Booking.unit_id, "ids", sa.Integer, by_array),
             Booking.status.in_(HOLDING_STATUSES),
             overlaps(Booking.starts_at, Booking.ends_at, sa.bindparam("start", type_=_WHEN),
                      sa.bindparam("end", type_=_WHEN)))
    return (*where, Booking.id != sa.bindparam("exclude")) if excluding else where


def held_bookings(session: Session, units: Sequence[UnitTerms], start: datetime,
                  end: datetime) -> dict[int, list[_Held]]:
    """The holding bookings of `units` that meet [start, end), by unit id, as load reads
    them (the columns a timeline reads): one query, built once."""
    ids = [u.id for u in units]
    out: dict[int, list[_Held]] = {}
    if not ids:
        return out
    by_array = len(ids) > 1 and session.get_bind().dialect.name == "postgresql"
    for row in session.execute(_held_statement(by_array), {"ids": ids, "start": start,
                                                            "end": end}):
        out.setdefault(row[0], []).append(_Held(*row))
    return out


@cache
def _held_statement(by_array: bool) -> sa.Select:
    return sa.select(Booking.unit_id, Booking.starts_at, Booking.ends_at, Booking.seats,
                     Booking.campaign_slot_id).where(*_held(False, by_array))


@cache
def _load_statement(with_bookings: bool, excluding: bool, by_array: bool
                    ) -> sa.CompoundSelect:
    """load's query, built once (with bind parameters: :ids, :first, :last, and :start,
    :end, :exclude of _held). Building it anew took longer than running it."""
    first, last = sa.bindparam("first", type_=_DAY), sa.bindparam("last", type_=_DAY)

    def null(type_) -> sa.ColumnElement:
        return sa.cast(sa.null(), type_)

    # (kind, unit, first day, last day, capacity or seats, start, end, slot); the first
    # SELECT types the columns (PostgreSQL asks the same type of every SELECT's column).
    parts = [
        sa.select(sa.literal(_CLOSURE), Closure.unit_id, Closure.start_date, Closure.end_date,
                  null(sa.Integer), null(_WHEN), null(_WHEN), null(sa.Integer))
        .where(one_of(Closure.unit_id, "ids", sa.Integer, by_array), Closure.start_date <= last,
               Closure.end_date >= first),
        sa.select(sa.literal(_OVERRIDE), CapacityOverride.unit_id, CapacityOverride.day,
                  CapacityOverride.day, CapacityOverride.capacity, null(_WHEN), null(_WHEN),
                  null(sa.Integer))
        .where(one_of(CapacityOverride.unit_id, "ids", sa.Integer, by_array),
               CapacityOverride.day.between(first, last)),
        offered_slots(sa.literal(_SLOT), CampaignSlot.unit_id, null(_DAY), null(_DAY),
                      null(sa.Integer), null(_WHEN), null(_WHEN), CampaignSlot.id)
        .where(one_of(CampaignSlot.unit_id, "ids", sa.Integer, by_array),
               CampaignSlot.start_date <= last, CampaignSlot.end_date >= first),
    ]
    if with_bookings:
        parts.append(sa.select(sa.literal(_BOOKING), Booking.unit_id, null(_DAY), null(_DAY),
                               Booking.seats, Booking.starts_at, Booking.ends_at,
                               Booking.campaign_slot_id).where(*_held(excluding, by_array)))
    return sa.union_all(*parts)


_CLOSURE, _OVERRIDE, _SLOT, _BOOKING = 0, 1, 2, 3
_DAY, _WHEN = Closure.start_date.type, Booking.starts_at.type


class _Held(NamedTuple):
    """What a timeline reads of a holding booking (a row of load's query)."""

    unit_id: int
    starts_at: datetime
    ends_at: datetime
    seats: int
    campaign_slot_id: int | None


def timeline_of(unit: UnitTerms, data: UnitData, start: datetime, end: datetime) -> Timeline:
    """The unit's timeline over [start, end) from data already read (no query)."""
    days = tokyo_days(start, end)
    windows_regular: list[tuple[datetime, datetime]] = []
    windows_slot: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    cuts = {start, end}
    for day in days:
        cuts.add(at(day, 0))
        if _closed(data, day):
            continue
        # A members-only unit's own offer is for its members (services/space_members.py):
        # counted here like any unit's; who may take it is decided by the callers
        # (reservations refuses the others "members_only"; search and free time offer
        # it only to members).
        if w := regular_window(unit, day):
            windows_regular.append(w)
            cuts.update(w)
        for slot in data.slots:
            if w := slot_window(slot, day, unit):
                windows_slot[slot.id].append(w)
                cuts.update(w)
    # Seats booked overall and per slot change at booking starts and ends.
    delta: dict[datetime, int] = defaultdict(int)
    slot_delta: dict[int, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for b in data.bookings:
        delta[b.starts_at] += b.seats
        delta[b.ends_at] -= b.seats
        if b.campaign_slot_id is not None:
            slot_delta[b.campaign_slot_id][b.starts_at] += b.seats
            slot_delta[b.campaign_slot_id][b.ends_at] -= b.seats
        cuts.update((b.starts_at, b.ends_at))

    ordered = sorted(c.astimezone(TOKYO) for c in cuts)
    booked = sum(s for t, s in delta.items() if t <= ordered[0])
    slot_booked = {
        sid: sum(s for t, s in d.items() if t <= ordered[0]) for sid, d in slot_delta.items()
    }
    capacity, overrides = unit.capacity, data.overrides
    closed = {day for day in days if _closed(data, day)}
    regular_in = _Windows(windows_regular)
    slots_in = [(slot, _Windows(windows_slot.get(slot.id, []))) for slot in data.slots]
    pieces: list[Piece] = []
    for left, right in pairwise(ordered):
        if left > ordered[0]:
            booked += delta.get(left, 0)
            for sid, d in slot_delta.items():
                slot_booked[sid] += d.get(left, 0)
        if right <= start or left >= end:
            continue
        day = left.date()
        physical = 0 if day in closed else overrides.get(day, capacity) - booked
        regular = physical if regular_in.hold(left, right) else 0
        slots = {
            slot.id: max(min(physical, slot.seats - slot_booked.get(slot.id, 0)), 0)
            for slot, windows in slots_in if windows.hold(left, right)
        }
        pieces.append(Piece(left, right, physical, max(regular, 0), slots))
    return Timeline(unit=unit, pieces=pieces, slots=data.slots, held=data.bookings)


class _Windows:
    """Windows in time order that do not overlap (a unit's opening hours or a slot's daily
    window, one per day), asked about pieces in time order: each window is passed once,
    instead of every piece looking through them all (a month's pieces × its days)."""

    def __init__(self, windows: list[tuple[datetime, datetime]]) -> None:
        self.windows = windows
        self.at = 0

    def hold(self, left: datetime, right: datetime) -> bool:
        """Whether one window holds the whole of [left, right): a window that ends before
        `right` holds neither this piece nor a later one; the next window starts after it."""
        windows = self.windows
        while self.at < len(windows) and windows[self.at][1] < right:
            self.at += 1
        return self.at < len(windows) and windows[self.at][0] <= left


def timelines(
    session: Session,
    units: Sequence[UnitTerms],
    start: datetime,
    end: datetime,
    *,
    exclude_booking_id: int | None = None,
    kept_slots: dict[int, CampaignSlot] | None = None,
) -> dict[int, Timeline]:
    """Timelines of every unit over [start, end); model Units must have .space loaded.
    `kept_slots`: as for `load`."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("aware datetimes only")
    data = load(session, units, start, end, exclude_booking_id=exclude_booking_id,
                whole_bookings=False, kept_slots=kept_slots)
    return {u.id: timeline_of(u, data[u.id], start, end) for u in units}


def timeline(session: Session, unit: Unit, start: datetime, end: datetime, **kw) -> Timeline:
    return timelines(session, [unit], start, end, **kw)[unit.id]
