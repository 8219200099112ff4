"""Property tests: availability.timelines against a brute-force, minute-by-minute count.

Random opening hours (some weekdays closed, holidays closed or not), closures, capacity
overrides, campaign slots (members-only units too) and bookings (some cancelled, some
through a slot) over a few days around a public holiday (2019-07-15, 海の日). For random
ranges, Timeline.min_free / max_free must equal the minimum / maximum of the per-minute
count, for the regular offer and for every slot.

The pure sweep runs on in-memory rows (many examples); a smaller test inserts the same
kind of data into the database (SQLite and PostgreSQL) to check what `load` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking.extensions import db
from booking.models import (
    Booking,
    BookingStatus,
    CampaignSlot,
    CapacityOverride,
    Closure,
    OpeningHours,
    PricePer,
    Space,
    Unit,
    UnitKind,
)
from booking.services import availability
from booking.services.availability import TOKYO, at, is_holiday

FIRST_DAY = date(2019, 7, 13)  # Sat; Mon 7/15 is 海の日
N_DAYS = 4
RANGE_START = at(FIRST_DAY, 0)
RANGE_END = at(FIRST_DAY + timedelta(days=N_DAYS), 0)
MINUTES = N_DAYS * 1440
STEP = 30  # data on a 30-minute grid; queries and the count at every minute


@dataclass
class World:
    capacity: int
    members_only: bool
    closed_on_holidays: bool
    hours: dict[int, tuple[int, int]]
    closures: list[tuple[int, int]]  # day offsets, inclusive
    overrides: dict[int, int]  # day offset -> capacity
    slots: list[dict]
    bookings: list[dict] = field(default_factory=list)


def _grid(lo: int, hi: int):
    return st.integers(lo // STEP, hi // STEP).map(lambda n: n * STEP)


@st.composite
def worlds(draw) -> World:
    capacity = draw(st.integers(0, 6))
    hours = {}
    for weekday in range(7):
        if draw(st.booleans()) or weekday == 0:
            opens = draw(_grid(0, 1380))
            closes = draw(_grid(opens + STEP, 1440))
            hours[weekday] = (opens, closes)
    closures = []
    for _ in range(draw(st.integers(0, 2))):
        a = draw(st.integers(0, N_DAYS - 1))
        closures.append((a, draw(st.integers(a, N_DAYS - 1))))
    overrides = {draw(st.integers(0, N_DAYS - 1)): draw(st.integers(0, 8))
                 for _ in range(draw(st.integers(0, 2)))}
    slots = []
    for i in range(draw(st.integers(0, 2))):
        a = draw(st.integers(0, N_DAYS - 1))
        s = draw(_grid(0, 1380))
        slots.append({"id": i + 1, "start": a, "end": draw(st.integers(a, N_DAYS - 1)),
                      "from": s, "to": draw(_grid(s + STEP, 1440)), "seats": draw(st.integers(0, 5))})
    bookings = []
    for _ in range(draw(st.integers(0, 8))):
        start = draw(_grid(-600, MINUTES - STEP))
        end = draw(_grid(start + STEP, min(start + 2880, MINUTES + 600)))
        bookings.append({
            "start": start, "end": end, "seats": draw(st.integers(1, 3)),
            "status": draw(st.sampled_from([BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN,
                                            BookingStatus.NO_SHOW, BookingStatus.CANCELLED])),
            "slot": draw(st.sampled_from([None] + [s["id"] for s in slots])),
        })
    return World(capacity, draw(st.booleans()), draw(st.booleans()), hours, closures, overrides,
                 slots, bookings)


def _minute(m: int) -> datetime:
    return RANGE_START + timedelta(minutes=m)


def _day(offset: int) -> date:
    return FIRST_DAY + timedelta(days=offset)


def brute_force(w: World) -> tuple[list[int], dict[int, list[int]]]:
    """Free seats at each minute of the range: regular, and per slot."""
    regular, per_slot = [], {s["id"]: [] for s in w.slots}
    for m in range(MINUTES):
        d, minute = divmod(m, 1440)
        day = _day(d)
        closed = any(a <= d <= b for a, b in w.closures)
        holding = [b for b in w.bookings if b["status"] != BookingStatus.CANCELLED
                   and b["start"] <= m < b["end"]]
        physical = 0 if closed else w.overrides.get(d, w.capacity) - sum(b["seats"] for b in holding)
        hours = w.hours.get(day.weekday())
        space_open = (hours is not None and hours[0] <= minute < hours[1]
                      and not (w.closed_on_holidays and is_holiday(day)))
        # A members-only unit's own offer is counted too: its members take it (who may is
        # reservations' and space_members' question, not the timeline's).
        regular.append(max(physical, 0) if space_open and not closed else 0)
        for s in w.slots:
            inside = (space_open and not closed and s["start"] <= d <= s["end"]
                      and s["from"] <= minute < s["to"])
            used = sum(b["seats"] for b in holding if b["slot"] == s["id"])
            per_slot[s["id"]].append(max(min(physical, s["seats"] - used), 0) if inside else 0)
    return regular, per_slot


def build(w: World) -> tuple[Unit, list[CampaignSlot], list]:
    """Transient rows of the world (ids set by hand; nothing is added to a session)."""
    space = Space(id=1, closed_on_holidays=w.closed_on_holidays, opening_hours=[
        OpeningHours(weekday=k, opens_min=a, closes_min=b) for k, (a, b) in sorted(w.hours.items())])
    unit = Unit(id=1, space=space, capacity=w.capacity, members_only=w.members_only,
                kind=UnitKind.DESK, price_per=PricePer.DAY, price_amount=0)
    slots = [CampaignSlot(id=s["id"], unit_id=1, unit=unit, start_date=_day(s["start"]),
                          end_date=_day(s["end"]), daily_start_min=s["from"], daily_end_min=s["to"],
                          seats=s["seats"]) for s in w.slots]
    bookings = [Booking(id=i + 1, unit_id=1, starts_at=_minute(b["start"]), ends_at=_minute(b["end"]),
                        seats=b["seats"], status=b["status"], campaign_slot_id=b["slot"])
                for i, b in enumerate(w.bookings)]
    return unit, slots, bookings


def check(w: World, line: availability.Timeline, queries: list[tuple[int, int]]) -> None:
    regular, per_slot = brute_force(w)
    for a, b in queries:
        start, end = _minute(a), _minute(b)
        assert line.min_free(start, end) == min(regular[a:b]), (a, b)
        assert line.max_free(start, end) == max(regular[a:b]), (a, b)
        for sid, counts in per_slot.items():
            assert line.min_free(start, end, sid) == min(counts[a:b]), (sid, a, b)
            assert line.max_free(start, end, sid) == max(counts[a:b]), (sid, a, b)


ranges = st.lists(
    st.integers(0, MINUTES - 1).flatmap(lambda a: st.tuples(st.just(a), st.integers(a + 1, MINUTES))),
    min_size=1, max_size=12,
)


@settings(max_examples=120, deadline=None)
@given(w=worlds(), queries=ranges)
def test_timeline_matches_minute_by_minute_count(w: World, queries):
    unit, slots, bookings = build(w)
    data = availability.UnitData(
        closures=[Closure(unit_id=1, start_date=_day(a), end_date=_day(b)) for a, b in w.closures],
        overrides={_day(d): c for d, c in w.overrides.items()},
        slots=slots,
        bookings=[b for b in bookings if b.status in availability.HOLDING_STATUSES
                  and b.starts_at < RANGE_END and b.ends_at > RANGE_START],
    )
    line = availability.timeline_of(unit, data, RANGE_START, RANGE_END)
    check(w, line, queries)


@settings(max_examples=120, deadline=None)
@given(w=worlds(), window=ranges)
def test_timeline_of_a_sub_range_matches_too(w: World, window):
    """A timeline computed for a narrower range (bookings starting before it) agrees too."""
    a, b = window[0]
    unit, slots, bookings = build(w)
    start, end = _minute(a), _minute(b)
    data = availability.UnitData(
        closures=[Closure(unit_id=1, start_date=_day(x), end_date=_day(y)) for x, y in w.closures],
        overrides={_day(d): c for d, c in w.overrides.items()},
        slots=slots,
        bookings=[bk for bk in bookings if bk.status in availability.HOLDING_STATUSES
                  and bk.starts_at < end and bk.ends_at > start],
    )
    line = availability.timeline_of(unit, data, start, end)
    check(w, line, [(a, b)] + [(max(a, x), min(b, y)) for x, y in window[1:] if max(a, x) < min(b, y)])


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(w=worlds(), queries=ranges)
def test_timelines_from_the_database_match(app, make, w: World, queries):
    """The same, with the rows in the database: load() reads what the sweep needs."""
    org = make.organisation()
    space = make.space(org, hours=(range(0), 0, 0), closed_on_holidays=w.closed_on_holidays)
    for weekday, (a, b) in w.hours.items():
        db.session.add(OpeningHours(space_id=space.id, weekday=weekday, opens_min=a, closes_min=b))
    unit = make.unit(space, capacity=w.capacity, members_only=w.members_only)
    other = make.unit(space, capacity=w.capacity)  # its bookings must not count
    for a, b in w.closures:
        db.session.add(Closure(unit_id=unit.id, start_date=_day(a), end_date=_day(b)))
    for d, c in w.overrides.items():
        db.session.add(CapacityOverride(unit_id=unit.id, day=_day(d), capacity=c))
    campaign = make.campaign(starts_on=_day(0), ends_on=_day(N_DAYS))
    slot_ids = {}
    for s in w.slots:
        slot = make.slot(campaign, unit, start_date=_day(s["start"]), end_date=_day(s["end"]),
                         daily_start_min=s["from"], daily_end_min=s["to"], seats=s["seats"])
        slot_ids[s["id"]] = slot.id
    for b in w.bookings:
        make.booking(unit, _minute(b["start"]), _minute(b["end"]), b["seats"], status=b["status"],
                     campaign_slot_id=slot_ids.get(b["slot"]))
        make.booking(other, _minute(b["start"]), _minute(b["end"]), 5)
    db.session.commit()
    unit_id = unit.id
    db.session.expunge_all()
    unit = db.session.get(Unit, unit_id)
    line = availability.timelines(db.session, [unit], RANGE_START, RANGE_END)[unit.id]
    # Renumber the world's slots to the database ids.
    w.slots = [dict(s, id=slot_ids[s["id"]]) for s in w.slots]
    for b in w.bookings:
        b["slot"] = slot_ids.get(b["slot"])
    try:
        check(w, line, queries)
    finally:
        db.session.rollback()
        from tests.conftest import _empty_tables

        db.session.remove()
        _empty_tables()


def test_tokyo_day_boundaries():
    """Sanity of the helpers the tests rely on."""
    assert at(date(2019, 7, 24), 540).astimezone(TOKYO).hour == 9
    assert availability.tokyo_days(at(date(2019, 7, 24), 0), at(date(2019, 7, 25), 0)) == [date(2019, 7, 24)]


@pytest.mark.parametrize("n", [1])
def test_many_units_load_in_constant_queries(app, make, count_queries, n):
    space = make.space()
    units = [make.unit(space) for _ in range(6)]
    for u in units:
        make.booking(u, at(date(2027, 7, 26), 540), at(date(2027, 7, 26), 600))
    db.session.expunge_all()
    units = db.session.query(Unit).all()
    for u in units:
        assert u.space.opening_hours is not None
    with count_queries() as statements:
        availability.timelines(db.session, units, at(date(2027, 7, 26), 0), at(date(2027, 7, 27), 0))
    # Closures, overrides, offered slots' ids and bookings in one UNION ALL; a second
    # query only when a slot is offered then (none here).
    assert len(statements) == 1, statements
