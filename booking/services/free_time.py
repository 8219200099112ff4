"""What is free before choosing: a unit's month of free days and a room's day of free hours.

Built on booking.services.availability alone, read exactly as a booking is decided
(reservations.book asks availability.timelines for the seats free during the whole
period it books), so that what these views call free books and what they call full is
refused, and a unit shown with N free seats here shows N in search:

- a day (desks, rooms let by the day): the seats free for the whole of the space's
  opening hours that day (or the campaign slot's window in them), as a day booking is
  checked; a unit let whole (room, house) is free or not;
- a night (houses let by the night): the night starting that day, from check-in that
  day to check-out the next (reservations.nights_period);
- an hour (rooms let by the hour): [hour, hour + step) inside the opening hours.

Why a day or hour cannot be booked, in the order a person would want to hear it: past
(it starts before the first start offered now, reservations.first_start: today's hours
that began, or begin before the drop-in's start, are past too), closed (the
space's hours, a public holiday, a closure of the unit), beyond the unit's booking horizon
(max_days_ahead), members only (no public price without a campaign slot), not offered
(outside the slot's dates or window), too soon (the unit's lead time), full.

Today is a day like the others while the space has not opened; once it has, a day
counts what a drop-in booking would hold: from the drop-in's start to closing
(reservations.bookable_window, the same period a booking of today is given).

Queries: one availability.timelines load per view (a month, or a day of hours) for any
number of units, plus one for the closures that say "closed" rather than "full"
(availability counts a closed unit as having no seats, which it does not tell apart).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking import clock
from booking.models import (
    CampaignSlot,
    Closure,
    PricePer,
    Space,
    Unit,
    UnitKind,
)
from booking.services import availability, reservations, spaces
from booking.services.availability import (
    Timeline,
    UnitData,
    at,
    regular_window,
    slot_window,
)
from booking.services.spaces import Page


class State(enum.StrEnum):
    FREE = "free"
    FULL = "full"
    PAST = "past"
    CLOSED = "closed"
    BEYOND = "beyond"  # after the unit's booking horizon
    MEMBERS_ONLY = "members_only"
    NOT_OFFERED = "not_offered"  # outside the campaign slot's dates or daily window
    TOO_SOON = "too_soon"  # inside the unit's lead time


@dataclass(frozen=True)
class FreeDay:
    """One day of a month: its state, and the seats free when it is free or full."""

    day: date
    state: State
    seats: int = 0
    start: datetime | None = None  # the period a booking of this day would hold
    end: datetime | None = None

    @property
    def bookable(self) -> bool:
        return self.state == State.FREE


@dataclass(frozen=True)
class MonthView:
    unit: Unit
    slot: CampaignSlot | None
    first: date  # the month's first day
    days: list[FreeDay]
    previous: date | None  # first day of the month before, when worth showing
    next: date | None  # first day of the next month, while inside the horizon

    @property
    def whole(self) -> bool:
        """A room or house is taken whole: free or not, never a number of seats."""
        return self.unit.kind != UnitKind.DESK

    @property
    def by_night(self) -> bool:
        return self.unit.price_per == PricePer.NIGHT

    def weeks(self) -> list[list[FreeDay | None]]:
        """The days in rows of seven, Sunday first (as Japanese calendars are); None for
        the cells before the first and after the last day."""
        lead = (self.first.weekday() + 1) % 7  # Monday=0 … Sunday=6 → Sunday first
        cells: list[FreeDay | None] = [None] * lead + list(self.days)
        cells += [None] * (-len(cells) % 7)
        return [cells[i:i + 7] for i in range(0, len(cells), 7)]


@dataclass(frozen=True)
class FreeHour:
    start: datetime
    end: datetime
    start_min: int  # minutes after the day's midnight (Tokyo), for labels and form fields
    end_min: int
    state: State
    seats: int = 0
    # A booking of the unit's shortest length can start here (the links fill that).
    startable: bool = False
    startable_end_min: int | None = None

    @property
    def bookable(self) -> bool:
        return self.state == State.FREE


@dataclass(frozen=True)
class DayGrid:
    unit: Unit
    slot: CampaignSlot | None
    day: date
    state: State  # FREE when any hour is, else why none is
    hours: list[FreeHour]
    step: int  # minutes
    previous: date | None
    next: date | None

    @property
    def whole(self) -> bool:
        return self.unit.kind != UnitKind.DESK

    @property
    def min_minutes(self) -> int:
        return self.unit.min_length * 60

    @property
    def max_minutes(self) -> int:
        return self.unit.max_length * 60


@dataclass
class SpaceFreeTime:
    """What a space page shows: a month per unit let by the day or night, the hours of a
    day per unit let by the hour."""

    month: date
    day: date
    today: date
    calendars: dict[int, MonthView] = field(default_factory=dict)
    grids: dict[int, DayGrid] = field(default_factory=dict)


# --------------------------------------------------------------------------- terms


class _Hours(NamedTuple):
    opens_min: int
    closes_min: int


@dataclass(frozen=True, slots=True)
class _SpaceTerms:
    """What the rules read of a unit's space (availability.SpaceHours), read once."""

    closed_on_holidays: bool
    week: tuple[_Hours | None, ...]  # Monday to Sunday

    def hours_on(self, weekday: int) -> _Hours | None:
        return self.week[weekday]


@dataclass(frozen=True, slots=True)
class _UnitTerms:
    """What the rules below read of a unit, read once from the model: a month asks the
    opening hours of each day four or five times (the day's period, window, closures and
    timeline), and a model's attributes and hours list cost several times a plain
    object's. The views keep the model Unit (MonthView.unit, DayGrid.unit)."""

    id: int
    capacity: int
    members_only: bool
    space: _SpaceTerms
    price_per: PricePer
    checkin_min: int
    checkout_min: int
    lead_time_hours: int
    max_days_ahead: int
    min_length: int


def _terms(unit: Unit) -> _UnitTerms:
    space = unit.space
    week = []
    for weekday in range(7):
        hours = space.hours_on(weekday)
        week.append(None if hours is None else _Hours(hours.opens_min, hours.closes_min))
    return _UnitTerms(
        id=unit.id, capacity=unit.capacity, members_only=unit.members_only,
        space=_SpaceTerms(space.closed_on_holidays, tuple(week)), price_per=unit.price_per,
        checkin_min=unit.checkin_min, checkout_min=unit.checkout_min,
        lead_time_hours=unit.lead_time_hours, max_days_ahead=unit.max_days_ahead,
        min_length=unit.min_length)


# --------------------------------------------------------------------------- months


def month_start(value: date) -> date:
    return value.replace(day=1)


def next_month(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def previous_month(first: date) -> date:
    return (first - timedelta(days=1)).replace(day=1)


def parse_month(text: str | None) -> date | None:
    """'2027-07' → 2027-07-01; None when it is not a month of the supported dates."""
    from booking import dates

    try:
        year, month = (int(p) for p in (text or "").strip().split("-"))
        first = date(year, month, 1)
    except ValueError:
        return None
    return first if dates.supported(first) else None


def horizon(unit: Unit | _UnitTerms, today: date) -> date:
    """The last day a booking of the unit may start on (reservations._within_horizon)."""
    return today + timedelta(days=unit.max_days_ahead)


def month(session: Session, unit: Unit, year: int, month: int, *,
          slot: CampaignSlot | None = None) -> MonthView:
    """The days of the month with their free seats (one availability load); see the
    module docstring. `slot`: through that campaign slot instead of the unit's own offer."""
    return _months(session, [(unit, slot)], date(year, month, 1))[unit.id]


def _months(session: Session, wanted: Sequence[tuple[Unit, CampaignSlot | None]],
            first: date, *, members_through_slot: bool = False,
            member: bool = False, kept: Page | None = None,
            held: dict[int, list] | None = None) -> dict[int, MonthView]:
    """Months of several units in one availability load. `members_through_slot`: a
    members-only unit asked without a slot shows the first slot offered on it that month
    that has not ended (how the public can book it), when there is one. `member`: the
    viewer is on the space's member list (services/space_members.py) and books its
    members-only units directly, as any unit."""
    last = next_month(first) - timedelta(days=1)
    terms = {u.id: _terms(u) for u, _ in wanted}
    # One range for all: the month, and the next day for the last night's check-out.
    lines, closed = _timelines(session, list(terms.values()), at(first, 0),
                               at(last + timedelta(days=2), 0), first,
                               last + timedelta(days=1), kept, held)
    now, today = clock.now(), clock.today()
    out = {}
    for unit, asked in wanted:
        line = lines[unit.id]
        slot = asked
        if slot is None and members_through_slot and unit.members_only and not member:
            slot = min((s for s in line.slots if not s.ended(today)),
                       key=lambda s: (s.start_date, s.id), default=None)
        days = [_day(terms[unit.id], slot, line, closed.get(unit.id, []),
                     first + timedelta(days=i), now, today, member)
                for i in range((last - first).days + 1)]
        out[unit.id] = MonthView(
            unit=unit, slot=slot, first=first, days=days,
            previous=previous_month(first) if first > month_start(today) else None,
            next=next_month(first) if next_month(first) <= horizon(unit, today) else None)
    return out


def _closures(session: Session, units: Sequence[_UnitTerms], first: date, last: date
              ) -> dict[int, list[tuple[date, date]]]:
    """The units' closures touching [first, last] (inclusive), by unit id."""
    out: dict[int, list[tuple[date, date]]] = {}
    if not units:
        return out
    for unit_id, start, end in session.execute(
            sa.select(Closure.unit_id, Closure.start_date, Closure.end_date)
            .where(Closure.unit_id.in_([u.id for u in units]),
                   Closure.start_date <= last, Closure.end_date >= first)):
        out.setdefault(unit_id, []).append((start, end))
    return out


def _timelines(session: Session, units: Sequence[_UnitTerms], start: datetime, end: datetime,
               first: date, last: date, kept: Page | None,
               held: dict[int, list] | None = None
               ) -> tuple[dict[int, Timeline], dict[int, list[tuple[date, date]]]]:
    """The units' timelines over [start, end) and their closures touching [first, last]
    (the days of that range): from the database (4 queries), or with what the space
    page keeps (`kept`: closures, overrides and offered slots, which change only with the
    catalogue) and only the bookings read (1 query, availability.held_bookings; none
    when `held` has them: read for several ranges at once)."""
    if kept is None:
        return (availability.timelines(session, units, start, end),
                _closures(session, units, first, last))
    touches = kept.touches.get((start, end))
    if touches is None:
        with spaces.own_session(session) as own:  # its slots are kept: loaded apart
            data = availability.load(own, units, start, end, whole_bookings=False)
        touches = {unit.id: UnitData(closures=data[unit.id].closures,
                                      overrides=data[unit.id].overrides,
                                      slots=data[unit.id].slots) for unit in units}
        if len(kept.touches) >= spaces.RANGES_KEPT:
            kept.touches.clear()
        kept.touches[(start, end)] = touches
        held = {unit.id: data[unit.id].bookings for unit in units}
    elif held is None:
        held = availability.held_bookings(session, units, start, end)
    else:  # read for a wider range: only this one's
        held = {unit.id: [b for b in held.get(unit.id, []) if b.starts_at < end and b.ends_at > start]
                for unit in units}
    lines = {unit.id: availability.timeline_of(
        unit, replace(touches[unit.id], bookings=held.get(unit.id, [])), start, end)
        for unit in units}
    closed = {unit.id: [(c.start_date, c.end_date) for c in touches[unit.id].closures]
              for unit in units}
    return lines, closed


def _is_closed(unit: _UnitTerms, closures: list[tuple[date, date]], day: date) -> bool:
    return regular_window(unit, day) is None or any(a <= day <= b for a, b in closures)


def _offered(line: Timeline, slot: CampaignSlot | None) -> bool:
    """Whether the slot is offered (availability loads offered slots only)."""
    return slot is None or any(s.id == slot.id for s in line.slots)


def _period(unit: _UnitTerms, slot: CampaignSlot | None, day: date, now: datetime
            ) -> tuple[datetime, datetime] | None:
    """What a booking of `day` made now would hold: the night from it (check-in to
    check-out), or the day's opening hours (the slot's window in them), today from the
    drop-in's start once they have begun (reservations.bookable_window); None when the
    day offers nothing by the day (closed, outside the slot, today's hours over)."""
    if unit.price_per == PricePer.NIGHT:
        if slot is not None and not slot.covers(day, day):
            return None
        return at(day, unit.checkin_min), at(day + timedelta(days=1), unit.checkout_min)
    return reservations.bookable_window(unit, day, slot, now=now)


def _day(unit: _UnitTerms, slot: CampaignSlot | None, line: Timeline,
         closures: list[tuple[date, date]], day: date, now: datetime, today: date,
         member: bool = False) -> FreeDay:
    """One day of a month, decided as a booking of that day (or the night from it) is."""
    night = unit.price_per == PricePer.NIGHT
    period = _period(unit, slot, day, now)
    window = (period if night else
              slot_window(slot, day, unit) if slot is not None else regular_window(unit, day))
    if day < today or (period is not None and period[0] <= now) or (
            window is not None and period is None):  # today's hours are over
        return FreeDay(day, State.PAST)
    if any(_is_closed(unit, closures, d) for d in ([day, day + timedelta(days=1)] if night
                                                   else [day])):
        return FreeDay(day, State.CLOSED)
    if day > horizon(unit, today):
        return FreeDay(day, State.BEYOND)
    if slot is None and unit.members_only and not member:
        return FreeDay(day, State.MEMBERS_ONLY)
    if period is None or not _offered(line, slot):
        return FreeDay(day, State.NOT_OFFERED)
    start, end = period
    if start < now + timedelta(hours=unit.lead_time_hours):
        return FreeDay(day, State.TOO_SOON)
    seats = line.min_free(start, end, slot.id if slot is not None else None)
    return FreeDay(day, State.FREE if seats > 0 else State.FULL, seats, start, end)


# --------------------------------------------------------------------------- hours


def day_grid(session: Session, unit: Unit, day: date, *, slot: CampaignSlot | None = None,
             step: int = 60) -> DayGrid:
    """The day's hours from opening to closing (or the slot's window), each free or
    booked, past, or why not (one availability load)."""
    return _grids(session, [(unit, slot)], day, step)[unit.id]


def _grids(session: Session, wanted: Sequence[tuple[Unit, CampaignSlot | None]], day: date,
           step: int = 60, *, members_through_slot: bool = False,
           member: bool = False, kept: Page | None = None,
           held: dict[int, list] | None = None) -> dict[int, DayGrid]:
    """Days of hours of several units in one availability load (`members_through_slot`:
    as in _months, a slot offered that day)."""
    if step <= 0:
        raise ValueError("step must be positive")
    terms = {u.id: _terms(u) for u, _ in wanted}
    lines, closed = _timelines(session, list(terms.values()), at(day, 0),
                               at(day + timedelta(days=1), 0), day, day, kept, held)
    now, today = clock.now(), clock.today()
    out = {}
    for unit, asked in wanted:
        slot = asked
        if slot is None and members_through_slot and unit.members_only and not member:
            slot = min((s for s in lines[unit.id].slots if s.covers(day, day)),
                       key=lambda s: s.id, default=None)
        hours, state = _hours(terms[unit.id], slot, lines[unit.id], closed.get(unit.id, []),
                              day, step, now, today, member)
        out[unit.id] = DayGrid(
            unit=unit, slot=slot, day=day, state=state, hours=hours, step=step,
            previous=day - timedelta(days=1) if day > today else None,
            next=day + timedelta(days=1) if day < horizon(unit, today) else None)
    return out


def _hours(unit: _UnitTerms, slot: CampaignSlot | None, line: Timeline,
           closures: list[tuple[date, date]], day: date, step: int, now: datetime,
           today: date, member: bool = False) -> tuple[list[FreeHour], State]:
    if _is_closed(unit, closures, day):
        return [], (State.PAST if day < today else State.CLOSED)
    opening = regular_window(unit, day)
    assert opening is not None
    window = slot_window(slot, day, unit) if slot is not None else opening
    if window is None:
        return [], (State.PAST if day < today else State.NOT_OFFERED)
    slot_id = slot.id if slot is not None else None
    midnight = at(day, 0)
    # Whole-day reasons first: they hold for every hour.
    common: State | None = None
    if day > horizon(unit, today):
        common = State.BEYOND
    elif slot is None and unit.members_only and not member:
        common = State.MEMBERS_ONLY
    elif not _offered(line, slot):
        common = State.NOT_OFFERED
    earliest = now + timedelta(hours=unit.lead_time_hours)
    shortest = timedelta(hours=unit.min_length)
    hours = []
    start, end = window
    # Today's hours before the first start offered now (on this grid) are past: the
    # booking page and search say the same (reservations.first_start).
    begins = reservations.first_start(now, start, timedelta(minutes=step))
    while start < end:
        stop = min(start + timedelta(minutes=step), end)
        seats = 0
        if start < begins:
            state = State.PAST
        elif common is not None:
            state = common
        elif start < earliest:
            state = State.TOO_SOON
        else:
            seats = line.min_free(start, stop, slot_id)
            state = State.FREE if seats > 0 else State.FULL
        startable = (state == State.FREE and start + shortest <= end
                     and line.min_free(start, start + shortest, slot_id) > 0)
        hours.append(FreeHour(
            start=start, end=stop, start_min=_minutes(start, midnight),
            end_min=_minutes(stop, midnight), state=state, seats=seats, startable=startable,
            startable_end_min=_minutes(start + shortest, midnight) if startable else None))
        start = stop
    states = {h.state for h in hours}
    if State.FREE in states:
        return hours, State.FREE
    for reason in (State.BEYOND, State.MEMBERS_ONLY, State.NOT_OFFERED, State.FULL,
                   State.TOO_SOON):
        if reason in states:
            return hours, reason
    return hours, State.PAST


def _minutes(instant: datetime, midnight: datetime) -> int:
    return int((instant - midnight).total_seconds() // 60)


# --------------------------------------------------------------------------- pages


def by_hour(unit: Unit) -> bool:
    return unit.price_per == PricePer.HOUR


def for_space(session: Session, space: Space, *, month_of: date | None = None,
              day: date | None = None, member: bool = False,
              kept: Page | None = None) -> SpaceFreeTime:
    """A space page's free time: the month of `month_of` (this month by default) for
    each unit let by the day or night, the hours of `day` (today by default) for each
    unit let by the hour. A members-only unit shows what its campaign slot offers, the
    first offered one that has not ended, when it has one in that month. Two
    availability loads at most (one per view), whatever the number of units; with the
    space page's `kept` data (spaces.page), one query for the bookings of both views
    once it holds their ranges."""
    today = clock.today()
    first = month_start(max(month_of or today, month_start(today)))
    day = max(day or today, today)
    units = list(space.units)
    found = SpaceFreeTime(month=first, day=day, today=today)
    monthly = [u for u in units if not by_hour(u)]
    hourly = [u for u in units if by_hour(u)]
    held = None
    month_range = (at(first, 0), at(next_month(first) + timedelta(days=1), 0))
    day_range = (at(day, 0), at(day + timedelta(days=1), 0))
    if (kept is not None and monthly and hourly and month_range in kept.touches
            and day_range in kept.touches):  # both views' bookings in one query
        held = availability.held_bookings(session, units, min(month_range[0], day_range[0]),
                                          max(month_range[1], day_range[1]))
    if monthly:
        found.calendars = _months(session, [(u, None) for u in monthly], first,
                                  members_through_slot=True, member=member, kept=kept,
                                  held=held)
    if hourly:
        found.grids = _grids(session, [(u, None) for u in hourly], day,
                             members_through_slot=True, member=member, kept=kept, held=held)
    return found


def fingerprint(free: SpaceFreeTime) -> tuple:
    """Everything of a space page's free time that its content shows, as a dictionary key
    (spaces.kept_body): the days and hours with their states and seats, the slots, the
    months and days around; the units and slots themselves are the page's."""
    def month(view: MonthView) -> tuple:
        return (view.unit.id, view.slot.id if view.slot else None, view.first,
                tuple(view.days), view.previous, view.next)

    def grid(view: DayGrid) -> tuple:
        return (view.unit.id, view.slot.id if view.slot else None, view.day, view.state,
                tuple(view.hours), view.step, view.previous, view.next)

    return (free.month, free.day, free.today,
            tuple(month(v) for v in free.calendars.values()),
            tuple(grid(v) for v in free.grids.values()))


def for_booking(session: Session, unit: Unit, slot: CampaignSlot | None, *,
                day: date | None = None, month_of: date | None = None,
                member: bool = False) -> MonthView | DayGrid:
    """The booking form's free time: the hours of the chosen day for a unit let by the
    hour; else the month of the chosen day (or of `month_of`, or this month; for a
    campaign slot not begun yet, its first month)."""
    today = clock.today()
    if by_hour(unit):
        chosen = day if day is not None and day >= today else today
        if slot is not None and day is None:
            chosen = slot.bookable_from(today) or today
        return _grids(session, [(unit, slot)], chosen, member=member)[unit.id]
    first = month_of or (day if day is not None else None)
    if first is None:
        first = (slot.bookable_from(today) if slot is not None else None) or today
    first = month_start(max(first, today))
    return _months(session, [(unit, slot)], first, member=member)[unit.id]


# --------------------------------------------------------------------------- opening hours


@dataclass(frozen=True)
class WeekGroup:
    """Weekdays in a row (Monday = 0) with the same hours; None when closed."""

    weekdays: tuple[int, ...]
    opens_min: int | None
    closes_min: int | None

    @property
    def closed(self) -> bool:
        return self.opens_min is None


def week_groups(space: Space) -> list[WeekGroup]:
    """The week from Monday in runs of days with equal hours, for a summary such as
    「月〜金 09:00–18:00、土日 休み」 instead of seven rows."""
    groups: list[WeekGroup] = []
    for weekday in range(7):
        hours = space.hours_on(weekday)
        key = (hours.opens_min, hours.closes_min) if hours is not None else (None, None)
        if groups and (groups[-1].opens_min, groups[-1].closes_min) == key:
            groups[-1] = WeekGroup((*groups[-1].weekdays, weekday), *key)
        else:
            groups.append(WeekGroup((weekday,), *key))
    return groups
