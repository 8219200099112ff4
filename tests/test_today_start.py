"""One "today starts at" rule (reservations.first_start) for the booking, the free-time
views and search: today a day unit is offered from the drop-in's start to closing (its
seats counted there), and an hourly room's hours from the first start of its hour grid
at or after the drop-in's start. So in the last half hour of a day like エニシア's
(09:00–21:00) a desk is still found, shown free and booked; and what search and the
hour grid offer a room, the booking takes.

Every test moves the clock to a day after the suite's today, so it passes at any
TEST_CLOCK.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from booking.extensions import db
from booking.models import CapacityOverride, PricePer, UnitKind
from booking.services import booking_requests, free_time
from booking.services.availability import at
from booking.services.booking_requests import BookingRequest
from booking.services.errors import DomainError
from booking.services.free_time import State
from booking.services.search import SearchQuery, search
from tests import worlds
from tests.worlds import future_day

LAT, LON = 34.9738, 138.3866  # the factories' spaces
OPENS, CLOSES = 9 * 60, 21 * 60  # every day, as エニシア静岡
SEATS = 5


@pytest.fixture
def w(make):
    w = worlds.world(make, capacity=SEATS, price=1500, hours=(range(7), OPENS, CLOSES))
    w["room"] = make.unit(w["space"], name="会議室", kind=UnitKind.MEETING_ROOM, capacity=1,
                          fits_people=6, price_amount=1500, price_per=PricePer.HOUR,
                          max_length=8)
    w["day"] = future_day(3)
    db.session.commit()
    return w


def _touch(unit, day) -> None:
    """A capacity override (the same capacity): the unit goes through search's exact rule
    (availability.timelines) instead of the unit loads."""
    db.session.add(CapacityOverride(unit_id=unit.id, day=day, capacity=unit.capacity))
    db.session.commit()


def at_clock(day, minutes: int, seconds: int = 0):
    return time_machine.travel(at(day, minutes) + timedelta(seconds=seconds), tick=False)


def _found(day, kind: str, **kw) -> dict:
    """{unit id: UnitResult} of a search near the space on `day`."""
    found = search(db.session, SearchQuery(lat=LAT, lon=LON, radius_km=5, date=day,
                                           kind=kind, **kw))
    return {u.unit.id: u for s in found.results for u in s.units}


def _place(w, unit, **when):
    made = booking_requests.place(db.session, w["booker"],
                                  BookingRequest(unit_id=unit.id, **when))
    db.session.commit()
    return made


def _refused(w, unit, **when) -> str:
    with pytest.raises(DomainError) as refused:
        _place(w, unit, **when)
    return refused.value.code


@pytest.mark.parametrize("touched", [False, True], ids=["loads", "timelines"])
def test_at_20_40_a_desk_is_found_shown_free_and_booked(w, make, touched):
    day, desks = w["day"], w["desks"]
    # The morning is full; the evening is free: today counts from the drop-in's start.
    make.booking(desks, at(day, OPENS), at(day, 12 * 60), SEATS, company=w["company"])
    if touched:
        _touch(desks, day)
    with at_clock(day, 20 * 60 + 40):
        found = _found(day, "desk")
        assert desks.id in found and found[desks.id].available_seats == SEATS
        shown = {d.day: d for d in free_time.month(db.session, desks, day.year,
                                                    day.month).days}[day]
        assert (shown.state, shown.seats) == (State.FREE, SEATS)
        assert (shown.start, shown.end) == (at(day, 20 * 60 + 45), at(day, CLOSES))
        [booking] = _place(w, desks, first_date=day, seats=SEATS)
        assert (booking.starts_at, booking.ends_at) == (shown.start, shown.end)


@pytest.mark.parametrize("touched", [False, True], ids=["loads", "timelines"])
def test_once_the_last_drop_in_is_past_no_one_offers_the_day(w, touched):
    day, desks = w["day"], w["desks"]
    if touched:
        _touch(desks, day)
    # 20:55:30: the drop-in would start at 21:00, closing time.
    with at_clock(day, 20 * 60 + 55, 30):
        assert desks.id not in _found(day, "desk")
        assert desks.id not in _found(day, "desk", end_date=day + timedelta(days=1))
        shown = {d.day: d for d in free_time.month(db.session, desks, day.year,
                                                    day.month).days}[day]
        assert shown.state == State.PAST
        assert _refused(w, desks, first_date=day) == "closed"
        assert _refused(w, desks, first_date=day, last_date=day + timedelta(days=1)) == "closed"


@pytest.mark.parametrize("touched", [False, True], ids=["loads", "timelines"])
def test_a_room_today_offers_its_hours_from_the_next_start_of_its_grid(w, touched):
    day, room = w["day"], w["room"]
    if touched:
        _touch(room, day)
    for now, seconds, first in ((10 * 60 + 10, 0, 11 * 60), (10 * 60 + 59, 0, 11 * 60),
                                (10 * 60 + 59, 30, 12 * 60)):  # the drop-in's start: 11:05
        with at_clock(day, now, seconds):
            grid = free_time.day_grid(db.session, room, day)
            free = [h.start_min for h in grid.hours if h.bookable]
            assert free[0] == first
            assert all(h.state == State.PAST for h in grid.hours if h.start_min < first)
            assert [tuple(x) for x in _found(day, "meeting_room")[room.id].free_hours] == [
                (first, CLOSES)]
            # A time asked for: listed exactly when the grid offers that hour.
            for hour in grid.hours[:4]:
                listed = room.id in _found(day, "meeting_room", start_min=hour.start_min,
                                           end_min=hour.end_min)
                assert listed == hour.bookable, (now, hour)
    with at_clock(day, 10 * 60 + 10):
        [booking] = _place(w, room, start=at(day, 11 * 60), end=at(day, 12 * 60))
        assert booking.starts_at == at(day, 11 * 60)


def test_at_20_40_a_room_has_no_hour_left(w):
    day, room = w["day"], w["room"]
    with at_clock(day, 20 * 60 + 40):
        assert room.id not in _found(day, "meeting_room")
        assert free_time.day_grid(db.session, room, day).state == State.PAST


@pytest.mark.parametrize("touched", [False, True], ids=["loads", "timelines"])
def test_a_house_is_offered_for_tonight_only_until_its_check_in(w, make, touched):
    """A stay starts at check-in (15:00): before it search lists the house for tonight and
    booking takes it; once it has begun, search lists nothing that booking would refuse."""
    day = w["day"]
    houses = make.space(w["space"].organisation, hours=(range(7), 0, 1440))  # open all day
    house = make.unit(houses, name="一棟貸し", kind=UnitKind.WHOLE_HOUSE, capacity=1,
                      fits_people=6, price_amount=25000, price_per=PricePer.NIGHT,
                      checkin_min=15 * 60, checkout_min=10 * 60)
    db.session.commit()
    if touched:
        _touch(house, day)
    with at_clock(day, 15 * 60 + 10):
        assert house.id not in _found(day, "whole_house")
        assert _refused(w, house, first_date=day, nights=1) == "in_past"
    with at_clock(day, 14 * 60):
        assert house.id in _found(day, "whole_house")
        assert _place(w, house, first_date=day, nights=1)
