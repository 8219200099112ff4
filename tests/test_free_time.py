"""The month calendar and the time grid agree with a booking attempt and with search.

On one set of data (bookings, a closure, a capacity override, a campaign slot, a horizon,
a members-only unit), every day or hour the calendar or grid calls free books (as many
seats as it says, and not one more), every one it calls full, closed or past is refused,
and search for that date shows the same free seats.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
import time_machine

from booking import clock
from booking.extensions import db
from booking.models import CapacityOverride, Closure, OpeningHours, PricePer, UnitKind
from booking.services import booking_requests, free_time
from booking.services.availability import at
from booking.services.booking_requests import BookingRequest
from booking.services.errors import DomainError
from booking.services.free_time import State
from booking.services.search import SearchQuery, search
from tests import worlds
from tests.edge import reservations as r

LAT, LON = 34.9738, 138.3866


def _first_of_a_coming_month() -> date:
    """The first day of a month well ahead (whatever the suite's clock): every day of the
    data below lies in it, inside every lead time and the default horizon."""
    return (clock.today() + timedelta(days=45)).replace(day=1)


@pytest.fixture
def w(make):
    w = worlds.world(make, capacity=10)  # desks, open every day 9:00–18:00
    space, org = w["space"], w["org"]
    w["room"] = make.unit(space, name="会議室", kind=UnitKind.MEETING_ROOM, capacity=1,
                          fits_people=6, price_amount=1500, price_per=PricePer.HOUR,
                          max_length=8)
    houses = make.space(org, name="古民家", hours=(range(7), 0, 1440))
    w["house"] = make.unit(houses, name="古民家1棟目", kind=UnitKind.WHOLE_HOUSE, capacity=1,
                           fits_people=6, price_amount=25000, price_per=PricePer.NIGHT)
    base = _first_of_a_coming_month()
    w["day"] = {n: base + timedelta(days=n) for n in range(1, 21)}
    d = w["day"]
    desks = w["desks"]
    # Day 2: 3 seats all day and 4 in the morning: 3 free for the whole day.
    make.booking(desks, at(d[2], 540), at(d[2], 1080), 3, company=w["company"])
    make.booking(desks, at(d[2], 540), at(d[2], 720), 4, company=w["company"])
    # Day 3: full. Day 4: closed. Day 5: only 4 seats (1 booked): 3 free.
    make.booking(desks, at(d[3], 540), at(d[3], 1080), 10, company=w["company"])
    db.session.add(Closure(unit_id=desks.id, start_date=d[4], end_date=d[4]))
    db.session.add(CapacityOverride(unit_id=desks.id, day=d[5], capacity=4))
    make.booking(desks, at(d[5], 540), at(d[5], 1080), 1, company=w["company"])
    # Days 6–7: a campaign slot of 3 seats, 10:00–16:00; 1 of them booked on day 6.
    campaign = make.campaign(starts_on=d[6], ends_on=d[7])
    w["slot"] = make.slot(campaign, desks, start_date=d[6], end_date=d[7],
                          daily_start_min=600, daily_end_min=960, seats=3, price_amount=0)
    make.booking(desks, at(d[6], 600), at(d[6], 960), 1, company=w["company"],
                 campaign_slot_id=w["slot"].id)
    # The room: booked 10:00–12:00 on day 2. The house: the nights of days 2 and 3.
    make.booking(w["room"], at(d[2], 600), at(d[2], 720), company=w["company"])
    make.booking(w["house"], at(d[2], 900), at(d[4], 600), company=w["company"])
    db.session.commit()
    return w


def _place(w, unit, *, seats=1, slot=None, **when):
    """A booking attempt as the form makes it (booking_requests.place), committed."""
    made = booking_requests.place(db.session, w["booker"], BookingRequest(
        unit_id=unit.id, seats=seats, slot_id=slot.id if slot else None, **when))
    db.session.commit()
    return made


def _refused(w, unit, **kw) -> str:
    with pytest.raises(DomainError) as refused:
        _place(w, unit, **kw)
    return refused.value.code


def _days(view) -> dict[date, free_time.FreeDay]:
    return {d.day: d for d in view.days}


def _search(day: date, kind: str, *, start_min=None, end_min=None, campaign=None):
    """{unit id: UnitResult} of a search near the world's spaces on `day`."""
    found = search(db.session, SearchQuery(lat=LAT, lon=LON, radius_km=5, date=day,
                                           kind=kind, start_min=start_min, end_min=end_min,
                                           campaign=campaign))
    return {u.unit.id: u for s in found.results for u in s.units}


def test_desk_days_agree_with_booking_and_search(w):
    d, desks = w["day"], w["desks"]
    view = free_time.month(db.session, desks, d[1].year, d[1].month)
    days = _days(view)
    assert [(days[d[n]].state, days[d[n]].seats) for n in (1, 2, 3, 4, 5)] == [
        (State.FREE, 10), (State.FREE, 3), (State.FULL, 0), (State.CLOSED, 0),
        (State.FREE, 3)]
    # Search shows the same seats on the free days, and not the full or closed ones.
    for n in (1, 2, 5):
        assert _search(d[n], "desk")[desks.id].available_seats == days[d[n]].seats
    for n in (3, 4):
        assert desks.id not in _search(d[n], "desk")
    # As many seats as shown book, one more is refused.
    for n in (2, 5):
        assert _refused(w, desks, first_date=d[n], seats=days[d[n]].seats + 1) == \
            "not_enough_seats"
        assert len(_place(w, desks, first_date=d[n], seats=days[d[n]].seats)) == 1
    assert _refused(w, desks, first_date=d[3]) == "not_enough_seats"
    assert _refused(w, desks, first_date=d[4]) == "closed"
    # Booked since: the calendar says full now, as search does.
    again = _days(free_time.month(db.session, desks, d[1].year, d[1].month))
    assert again[d[2]].state == again[d[5]].state == State.FULL
    assert desks.id not in _search(d[2], "desk")


def test_a_campaign_slot_month_agrees_with_booking_through_it_and_search(w):
    d, desks, slot = w["day"], w["desks"], w["slot"]
    days = _days(free_time.month(db.session, desks, d[1].year, d[1].month, slot=slot))
    assert days[d[5]].state == State.NOT_OFFERED
    assert (days[d[6]].state, days[d[6]].seats) == (State.FREE, 2)
    assert (days[d[7]].state, days[d[7]].seats) == (State.FREE, 3)
    assert (days[d[6]].start, days[d[6]].end) == (at(d[6], 600), at(d[6], 960))
    for n in (6, 7):
        offer = _search(d[n], "desk", campaign=slot.campaign.slug)[desks.id].campaign
        assert offer is not None and offer.seats_left == days[d[n]].seats
    assert _refused(w, desks, first_date=d[6], seats=3, slot=slot) == "not_enough_seats"
    _place(w, desks, first_date=d[6], seats=2, slot=slot)
    assert _days(free_time.month(db.session, desks, d[1].year, d[1].month, slot=slot))[
        d[6]].state == State.FULL
    # The unit's own offer those days is not the slot's.
    assert _days(free_time.month(db.session, desks, d[1].year, d[1].month))[d[6]].seats == 7


def test_room_hours_agree_with_booking_and_search(w):
    d, room = w["day"], w["room"]
    grid = free_time.day_grid(db.session, room, d[2])
    assert [(h.start_min, h.state) for h in grid.hours] == [
        (540, State.FREE), (600, State.FULL), (660, State.FULL)] + [
        (m, State.FREE) for m in range(720, 1080, 60)]
    assert grid.state == State.FREE
    assert all(h.end_min - h.start_min == 60 for h in grid.hours)
    for hour in grid.hours:
        listed = room.id in _search(d[2], "meeting_room", start_min=hour.start_min,
                                    end_min=hour.end_min)
        assert listed == hour.bookable, hour
    # A date-only search offers the room with the same free hours, run together.
    runs: list[tuple[int, int]] = []
    for hour in (h for h in grid.hours if h.bookable):
        if runs and runs[-1][1] == hour.start_min:
            runs[-1] = (runs[-1][0], hour.end_min)
        else:
            runs.append((hour.start_min, hour.end_min))
    assert [tuple(w) for w in _search(d[2], "meeting_room")[room.id].free_hours] == runs
    assert _refused(w, room, start=at(d[2], 660), end=at(d[2], 720)) == "not_enough_seats"
    free = [h for h in grid.hours if h.bookable]
    for hour in free[:2]:
        _place(w, room, start=at(d[2], hour.start_min), end=at(d[2], hour.end_min))
    after = free_time.day_grid(db.session, room, d[2])
    assert [h.state for h in after.hours][:3] == [State.FULL] * 3


def test_nights_agree_with_booking_and_search(w):
    d, house = w["day"], w["house"]
    days = _days(free_time.month(db.session, house, d[1].year, d[1].month))
    # The stay holds the nights starting days 2 and 3; the nights of days 1 and 4 are free.
    assert [days[d[n]].state for n in (1, 2, 3, 4)] == [
        State.FREE, State.FULL, State.FULL, State.FREE]
    assert (days[d[4]].start, days[d[4]].end) == (at(d[4], 900), at(d[5], 600))
    for n in (1, 2, 3, 4):
        assert (house.id in _search(d[n], "whole_house")) == days[d[n]].bookable
    # Through reservations.book too (tests.edge commits what it decides).
    with pytest.raises(DomainError, match="not_enough_seats"):
        r.book(db.session, house, w["booker"], [r.nights_period(house, d[3], 1)], 1)
    for n in (1, 4):
        r.book(db.session, house, w["booker"], [r.nights_period(house, d[n], 1)], 1)
    assert _refused(w, house, first_date=d[2], nights=1) == "not_enough_seats"


def test_past_days_and_hours_read_as_past_and_are_refused(w):
    today = clock.today()
    desks, room = w["desks"], w["room"]
    view = free_time.month(db.session, desks, today.year, today.month)
    days = _days(view)
    assert all(day.state == State.PAST for when, day in days.items() if when < today)
    assert view.previous is None and view.next is not None
    yesterday = today - timedelta(days=1)
    if yesterday.month == today.month:
        assert _refused(w, desks, first_date=yesterday) == "in_past"
    # At 10:30 on a day, the hours begun are past, the rest free (and book).
    day = w["day"][8]
    with time_machine.travel(datetime.combine(day, datetime.min.time(), clock.TOKYO)
                             + timedelta(hours=10, minutes=30), tick=False):
        grid = free_time.day_grid(db.session, room, day)
        assert [h.state for h in grid.hours][:3] == [State.PAST, State.PAST, State.FREE]
        assert _refused(w, room, start=at(day, 600), end=at(day, 660)) == "in_past"
        _place(w, room, start=at(day, 660), end=at(day, 720))
        # A desk's day, open already, counts the rest of the day.
        today_view = _days(free_time.month(db.session, w["desks"], day.year, day.month))
        assert today_view[day].start == at(day, 635) and today_view[day].seats == 10
        _place(w, w["desks"], first_date=day, seats=10)  # a drop-in, all of them
        assert today_view[day - timedelta(days=1)].state == State.PAST
    # After closing time the day is past.
    with time_machine.travel(at(day, 1081), tick=False):
        assert _days(free_time.month(db.session, desks, day.year, day.month))[day].state \
            == State.PAST
        assert free_time.day_grid(db.session, room, day).state == State.PAST


def test_horizon_members_only_and_lead_time(w, make):
    d, desks = w["day"], w["desks"]
    desks.max_days_ahead = (d[3] - clock.today()).days
    db.session.commit()
    days = _days(free_time.month(db.session, desks, d[1].year, d[1].month))
    assert days[d[3]].state == State.FULL and days[d[5]].state == State.BEYOND
    assert _refused(w, desks, first_date=d[5]) == "too_far_ahead"
    view = free_time.month(db.session, desks, d[1].year, d[1].month)
    assert view.next is None  # the next month is beyond the horizon

    members = make.unit(w["space"], name="会員席", members_only=True)
    days = _days(free_time.month(db.session, members, d[1].year, d[1].month))
    assert days[d[1]].state == State.MEMBERS_ONLY
    assert _refused(w, members, first_date=d[1]) == "members_only"

    room = w["room"]
    with time_machine.travel(clock.now(), tick=False):
        # A lead time that ends between 11:00 and 12:00 of day 9.
        room.lead_time_hours = int((at(d[9], 720) - clock.now()).total_seconds() // 3600)
        db.session.commit()
        grid = free_time.day_grid(db.session, room, d[9])
        assert [h.state for h in grid.hours][:4] == [State.TOO_SOON] * 3 + [State.FREE]
        assert _refused(w, room, start=at(d[9], 660), end=at(d[9], 720)) == "lead_time"
        _place(w, room, start=at(d[9], 720), end=at(d[9], 780))


def test_one_availability_load_per_view(w, count_queries):
    d = w["day"]
    desks, room = w["desks"], w["room"]
    for unit in (desks, room):
        unit.space.opening_hours  # noqa: B018 — loaded as the pages load it
    with count_queries() as month_statements:
        free_time.month(db.session, desks, d[1].year, d[1].month)
    with count_queries() as grid_statements:
        free_time.day_grid(db.session, room, d[2])
    # availability.timelines' load (3) and the closures that say "closed" (1).
    assert len(month_statements) <= 4, month_statements
    assert len(grid_statements) <= 4, grid_statements


def test_space_page_view_of_a_members_only_unit_shows_its_campaign_slot(w, make):
    d = w["day"]
    members = make.unit(w["space"], name="会員席", members_only=True)
    campaign = make.campaign(starts_on=d[10], ends_on=d[12])
    slot = make.slot(campaign, members, start_date=d[10], end_date=d[12], seats=4)
    db.session.refresh(w["space"])
    view = free_time.for_space(db.session, w["space"], month_of=d[1], day=d[2])
    calendar = view.calendars[members.id]
    assert calendar.slot is not None and calendar.slot.id == slot.id
    days = _days(calendar)
    assert days[d[9]].state == State.NOT_OFFERED and days[d[10]].seats == 4
    assert set(view.calendars) == {w["desks"].id, members.id}
    assert set(view.grids) == {w["room"].id}
    assert view.grids[w["room"].id].day == d[2]


def test_month_in_rows_of_a_week_from_sunday_and_month_parameters(w):
    d = w["day"]
    view = free_time.month(db.session, w["desks"], d[1].year, d[1].month)
    weeks = view.weeks()
    assert all(len(week) == 7 for week in weeks)
    cells = [c for week in weeks for c in week]
    first = cells.index(next(c for c in cells if c is not None))
    assert first == (view.first.isoweekday() % 7)  # Sunday 0, Monday 1, …
    assert [c.day for c in cells if c is not None] == [x.day for x in view.days]
    assert free_time.parse_month("2027-07") == date(2027, 7, 1)
    for bad in ("2027-13", "x", "", None, "0001-01", "9999-12"):
        assert free_time.parse_month(bad) is None


def test_the_space_page_and_the_booking_form_state_the_hours_in_the_same_line(
        client, make, login):
    """One summary of the week (free_time.week_groups, _free_time.html hours_summary):
    runs of days with the same hours, not seven rows."""
    w = worlds.world(make, hours=(range(5), 540, 1080))  # Monday to Friday, 09:00–18:00
    db.session.add(OpeningHours(space_id=w["space"].id, weekday=5, opens_min=600,
                                closes_min=960))
    db.session.commit()
    login(w["booker"])

    def summary(url: str) -> str:
        page = client.get(url).get_data(as_text=True)
        return re.search(r'<(p|span) class="hours-summary">(.*?)</\1>', page, flags=re.S).group(2)

    space_page, form = f"/spaces/{w['space'].slug}", f"/bookings/new?unit_id={w['desks'].id}"
    said = summary(space_page)
    assert said.startswith("月〜金 09:00–18:00、土 10:00–16:00、日 休み。")
    assert summary(form) == said
    client.post("/language", data={"lang": "en", "next": "/"})
    assert summary(form) == summary(space_page) != said
