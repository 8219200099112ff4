"""Drop-in today: a day unit booked for the rest of today while its space is open.

A day booking for today, once the space has opened, starts at the next whole five minutes
at least a minute from now (reservations.drop_in_start) and ends at closing; it costs a
full day. After closing, on a closed day, or inside the unit's lead time it is refused
with a clear message; the booking page and the API give the same answers; an idempotent
retry gets its first answer even when the clock has moved past closing. Every test moves
the clock to an open weekday after the suite's today, so it passes at any TEST_CLOCK.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking import clock
from booking.extensions import db
from booking.models import Booking
from booking.services import booking_requests, reservations, tokens
from booking.services.availability import TOKYO, at
from tests import worlds

OPENS, CLOSES = 9 * 60, 18 * 60  # the world's space: Monday to Friday, 09:00–18:00
PRICE = 1500


def open_weekday(after: date | None = None, wanted: int | None = None) -> date:
    """The first weekday (or day of week `wanted`) after `after` (Tokyo's today)."""
    day = (after or clock.today()) + timedelta(days=1)
    while (day.weekday() >= 5) if wanted is None else (day.weekday() != wanted):
        day += timedelta(days=1)
    return day


@pytest.fixture
def world(make):
    w = worlds.world(make, capacity=5, price=PRICE, hours=(range(5), OPENS, CLOSES))
    secret, _ = tokens.issue(db.session, w["booker"], 24 * 30)  # the clock moves days on
    db.session.commit()
    return dict(w, headers={"Authorization": f"Bearer {secret}"})


def travel(day: date, minutes: int, seconds: float = 0):
    """The clock at `minutes` after midnight of `day` in Tokyo (then ticking)."""
    return time_machine.travel(at(day, minutes) + timedelta(seconds=seconds), tick=True)


def api_book(client, world, day: date, key: str | None = None, **more):
    headers = dict(world["headers"])
    if key:
        headers["Idempotency-Key"] = key
    body = {"unit_id": world["desks"].id, "date": day.isoformat(), "seats": 1, **more}
    return client.post("/api/v1/bookings", json=body, headers=headers)


def page_book(client, unit_id: int, day: date, *, slot: int | None = None, seats: int = 1):
    """Open the booking form and send it for `day` (ticking the box that says a booking
    this close to its start cannot be cancelled, when the form has one)."""
    url = f"/bookings/new?unit_id={unit_id}" + (f"&slot={slot}" if slot else "")
    page = client.get(url).get_data(as_text=True)
    token = re.search(r'name="submission" type="hidden" value="([^"]+)"', page).group(1)
    data = {"first_date": day.isoformat(), "seats": str(seats), "submission": token,
            "accept_late": "y"}
    return client.post(url, data=data)


def free_today(client, world, day: date) -> tuple[int, int]:
    """(the unit's free seats for `day` by the availability API, by search)."""
    unit = world["desks"]
    line = client.get(f"/api/v1/units/{unit.id}/availability?from={day}&to={day}").json
    found = client.get(f"/api/v1/spaces?lat={world['space'].lat}&lon={world['space'].lon}"
                       f"&date={day}").json
    seats = [u["available_seats"] for s in found["results"] for u in s["units"]
             if u["id"] == unit.id]
    return line["days"][0]["available_seats"], seats[0] if seats else 0


def bookings() -> list[Booking]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Booking).order_by(Booking.id)))


# --------------------------------------------------------------------------- the start


@pytest.mark.parametrize(("now", "start"), [
    ("10:59:59.900000", "11:05"),  # never less than a minute ahead
    ("11:00:00", "11:05"),
    ("11:03:59", "11:05"),
    ("11:04:00", "11:05"),
    ("11:04:01", "11:10"),
    ("23:59:30", "00:05"),  # the next day's first step
])
def test_a_drop_in_starts_at_the_next_whole_five_minutes_a_minute_ahead(now, start):
    day = date(2027, 3, 2)
    moment = datetime.combine(day, time.fromisoformat(now), TOKYO)
    begins = reservations.drop_in_start(moment.astimezone(UTC))
    assert begins.astimezone(TOKYO).strftime("%H:%M") == start
    assert begins - moment >= timedelta(minutes=1)
    assert begins.second == begins.microsecond == 0


# --------------------------------------------------------------------------- booking


def test_a_desk_at_11_books_the_rest_of_today_at_a_full_day_and_holds_the_seat(
        client, world, login):
    day = open_weekday()
    with travel(day, 11 * 60):
        login(world["booker"])
        assert free_today(client, world, day) == (5, 5)
        # The form's estimate says what today's booking holds, before it is made.
        url = f"/bookings/new?unit_id={world['desks'].id}"
        page = client.get(url).get_data(as_text=True)
        token = re.search(r'name="submission" type="hidden" value="([^"]+)"', page).group(1)
        estimate = client.post(url, data={"first_date": day.isoformat(), "seats": "1",
                                          "submission": token, "preview": "1"})
        assert "本日11:05〜18:00のご利用です。" in estimate.get_data(as_text=True)
        assert bookings() == []
        res = page_book(client, world["desks"].id, day)
        assert res.status_code == 302, res.get_data(as_text=True)
        [booking] = bookings()
        assert booking.starts_at == at(day, 11 * 60 + 5) and booking.ends_at == at(day, CLOSES)
        assert booking.price_amount == PRICE  # a day unit is priced per day
        shown = client.get(res.headers["Location"]).get_data(as_text=True)
        assert "11:05" in shown and "18:00" in shown
        # Availability and search count the seat from now to closing.
        assert free_today(client, world, day) == (4, 4)
        line = reservations.timelines(db.session, [world["desks"]], at(day, 0),
                                      at(day, 1440))[world["desks"].id]
        assert line.min_free(*reservations.day_period(world["desks"], day)) == 4


def test_before_opening_today_books_the_whole_day(client, world):
    day = open_weekday()
    with travel(day, 7 * 60):
        res = api_book(client, world, day)
        assert res.status_code == 201, res.json
        assert res.json["start"] == at(day, OPENS).isoformat()
        assert res.json["end"] == at(day, CLOSES).isoformat()
    with travel(day, 7 * 60):  # the form says no "today from now" before opening
        unit = world["desks"]
        assert booking_requests.drop_in_hours(unit, None, at(day, OPENS)) is None
    with travel(day, 12 * 60):
        assert booking_requests.drop_in_hours(unit, None, at(day, 12 * 60 + 5)) == (
            12 * 60 + 5, CLOSES)
        assert booking_requests.drop_in_hours(unit, None, at(open_weekday(day), OPENS)) is None
    # Four minutes before opening the start is already the drop-in's (09:05), never a
    # start that would be in the past by the time the booking is decided.
    with travel(day, OPENS - 1, seconds=30):
        assert reservations.day_period(world["desks"], day)[0] == at(day, OPENS + 5)


def test_the_last_seat_is_the_last_seat(client, world, make):
    day = open_weekday()
    make.booking(world["desks"], at(day, OPENS), at(day, CLOSES), 4,
                 company=world["company"])
    with travel(day, 15 * 60):
        assert api_book(client, world, day).status_code == 201
        full = api_book(client, world, day)
        assert full.status_code == 409 and full.json["code"] == "not_enough_seats"
        assert full.json["available"] == 0


# --------------------------------------------------------------------------- refusals


def test_after_closing_today_is_refused_clearly_by_page_and_api(client, world, login):
    day = open_weekday()
    with travel(day, CLOSES + 30):
        login(world["booker"])
        api = api_book(client, world, day)
        assert api.status_code == 422 and api.json["code"] == "closed"
        assert api.json["detail"] == "本日の営業は終了しました。別の日付を選んでください。"
        page = page_book(client, world["desks"].id, day)
        assert page.status_code == 422
        assert "本日の営業は終了しました。" in page.get_data(as_text=True)
    # Four minutes before closing there is no five-minute step left either.
    with travel(day, CLOSES - 4):
        assert api_book(client, world, day).json["code"] == "closed"
    assert bookings() == []


def test_a_closed_day_today_says_closed(client, world, login):
    saturday = open_weekday(wanted=5)
    with travel(saturday, 11 * 60):
        login(world["booker"])
        api = api_book(client, world, saturday)
        assert api.status_code == 422 and api.json["code"] == "closed"
        assert api.json["detail"] == "その日時は営業していません。"
        page = page_book(client, world["desks"].id, saturday)
        assert page.status_code == 422
        assert "その日時は営業していません。" in page.get_data(as_text=True)
    assert bookings() == []


def test_a_lead_time_is_respected(client, world, login):
    unit = world["desks"]
    unit.lead_time_hours = 2
    db.session.commit()
    day = open_weekday()
    with travel(day, 11 * 60):
        login(world["booker"])
        api = api_book(client, world, day)
        assert api.status_code == 422 and api.json["code"] == "lead_time"
        page = page_book(client, unit.id, day)
        assert page.status_code == 422
        assert "予約の受付期限を過ぎています。" in page.get_data(as_text=True)
        assert api_book(client, world, open_weekday(day)).status_code == 201  # another day
    with travel(day, 6 * 60):  # before opening, and more than two hours before it
        assert api_book(client, world, day).status_code == 201
    assert len(bookings()) == 2


def test_page_and_api_give_the_same_booking(client, world, login):
    day = open_weekday()
    with travel(day, 13 * 60 + 2):
        login(world["booker"])
        assert page_book(client, world["desks"].id, day).status_code == 302
        assert api_book(client, world, day).status_code == 201
    first, second = bookings()
    assert (first.starts_at, first.ends_at, first.price_amount) == (
        second.starts_at, second.ends_at, second.price_amount) == (
        at(day, 13 * 60 + 5), at(day, CLOSES), PRICE)


def test_a_range_from_today_starts_today_now(client, world):
    day = open_weekday(wanted=1)  # a Tuesday: the range runs to Thursday
    with travel(day, 10 * 60):
        res = api_book(client, world, day, date=None,
                       dates=[day.isoformat(), (day + timedelta(days=2)).isoformat()])
        assert res.status_code == 201, res.json
    first, last = bookings()
    assert first.starts_at == at(day, 10 * 60 + 5)
    assert last.starts_at == at(day + timedelta(days=2), OPENS)


# --------------------------------------------------------------------------- retries


def test_an_api_retry_gets_its_first_answer_when_now_has_moved(client, world):
    day = open_weekday()
    with travel(day, 17 * 60 + 50):
        first = api_book(client, world, day, key="drop-in-1")
        assert first.status_code == 201
        assert first.json["start"] == at(day, 17 * 60 + 55).isoformat()
    with travel(day, 17 * 60 + 53):  # a minute on: the same request would start later
        again = api_book(client, world, day, key="drop-in-1")
        assert again.status_code == 201 and again.json == first.json
        assert again.headers["Idempotent-Replayed"] == "true"
    with travel(day, CLOSES + 10):  # after closing: it would now be refused
        late = api_book(client, world, day, key="drop-in-1")
        assert late.status_code == 201 and late.json == first.json
        other = api_book(client, world, day, key="drop-in-1", seats=2)
        assert other.status_code == 422 and other.json["code"] == "idempotency_mismatch"
    assert len(bookings()) == 1


def test_the_same_form_sent_twice_across_closing_books_once(client, world, login):
    day = open_weekday()
    unit = world["desks"]
    with travel(day, 17 * 60 + 40):
        login(world["booker"])
        url = f"/bookings/new?unit_id={unit.id}"
        page = client.get(url).get_data(as_text=True)
        token = re.search(r'name="submission" type="hidden" value="([^"]+)"', page).group(1)
        data = {"first_date": day.isoformat(), "seats": "1", "submission": token,
                "accept_late": "y"}
        first = client.post(url, data=data)
        assert first.status_code == 302
    with travel(day, CLOSES + 5):
        second = client.post(url, data=data)
        assert second.status_code == 302
        assert second.headers["Location"] == first.headers["Location"]
    assert len(bookings()) == 1


# --------------------------------------------------------------------------- campaign slots


@pytest.fixture
def slot(make, world):
    day = open_weekday()
    campaign = make.campaign(starts_on=day, ends_on=day + timedelta(days=7), slug="drop-in-days")
    return make.slot(campaign, world["desks"], daily_start_min=10 * 60, daily_end_min=16 * 60,
                     seats=3, price_amount=0)


def test_a_campaign_slot_open_today_takes_a_drop_in(client, world, slot, login):
    day = slot.start_date
    with travel(day, 11 * 60):
        login(world["booker"])
        res = page_book(client, world["desks"].id, day, slot=slot.id)
        assert res.status_code == 302, res.get_data(as_text=True)
        api = api_book(client, world, day, campaign="drop-in-days")
        assert api.status_code == 201, api.json
        assert api.json["campaign"] == "drop-in-days"
    first, second = bookings()
    for booking in (first, second):
        assert booking.campaign_slot_id == slot.id and booking.price_amount == 0
        assert booking.starts_at == at(day, 11 * 60 + 5) and booking.ends_at == at(day, 16 * 60)


def test_after_the_slots_hours_today_it_says_so_and_a_plain_booking_is_made(
        client, world, slot, login):
    day = slot.start_date
    with travel(day, 16 * 60 + 30):  # the slot has closed for today; the space has not
        login(world["booker"])
        named = api_book(client, world, day, campaign="drop-in-days")
        assert named.status_code == 422 and named.json["code"] == "campaign_closed"
        assert "本日の提供時間は終了しました" in named.json["detail"]
        page = page_book(client, world["desks"].id, day, slot=slot.id)
        assert page.status_code == 422
        assert "本日の提供時間は終了しました" in page.get_data(as_text=True)
        # Not naming the slot: the drop-in at the unit's price, until closing.
        plain = api_book(client, world, day)
        assert plain.status_code == 201 and plain.json["campaign"] is None
        assert plain.json["start"] == at(day, 16 * 60 + 35).isoformat()
        assert plain.json["price"]["amount"] == PRICE
