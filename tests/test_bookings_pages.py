"""The booking pages: book, confirmation, my bookings, change and cancel, feeds."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import Booking, BookingStatus, OrgKind, PricePer, UnitKind
from booking.services.availability import TOKYO, at
from tests import worlds
from tests.edge import reservations as r
from tests.worlds import future_day


def count() -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Booking))


@pytest.fixture
def world(make, login):
    w = worlds.world(make, capacity=5, hours=(range(5), 540, 1080))  # Mon–Fri
    login(w["booker"])
    return w


def token(client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200
    return re.search(r'name="submission" type="hidden" value="([^"]+)"',
                     page.get_data(as_text=True)).group(1)


def weekday(days: int = 10, wanted: int = 2):
    day = future_day(days)
    while day.weekday() != wanted:
        day += timedelta(days=1)
    return day


def test_booking_needs_a_login(client, make):
    unit = make.unit()
    res = client.get(f"/bookings/new?unit_id={unit.id}")
    assert res.status_code == 302 and "/account/login" in res.headers["Location"]


def test_book_and_see_the_confirmation(client, world):
    unit, day = world["desks"], weekday()
    url = f"/bookings/new?unit_id={unit.id}"
    page = client.get(url).get_data(as_text=True)
    assert "フリーデスク" in page and 'name="seats"' in page
    res = client.post(url, data={"first_date": day.isoformat(), "seats": "2",
                                 "attendees": "hanako@example.jp\nken@example.jp",
                                 "submission": token(client, url)})
    assert res.status_code == 302, res.get_data(as_text=True)
    booking = db.session.scalar(sa.select(Booking))
    assert res.headers["Location"].endswith(f"/bookings/{booking.reference}")
    assert booking.starts_at == at(day, 540) and booking.seats == 2
    shown = client.get(res.headers["Location"]).get_data(as_text=True)
    assert booking.reference in shown
    assert f"/bookings/{booking.reference}.ics" in shown  # add to calendar
    assert "hanako@example.jp" in shown and "ken@example.jp" in shown
    mine = client.get("/bookings").get_data(as_text=True)
    assert booking.reference in mine


def test_double_submission_books_once(client, world):
    unit, day = world["desks"], weekday()
    url = f"/bookings/new?unit_id={unit.id}"
    data = {"first_date": day.isoformat(), "seats": "1", "submission": token(client, url)}
    first = client.post(url, data=data)
    second = client.post(url, data=data)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert count() == 1
    # A new form (a new token) books again.
    data["submission"] = token(client, url)
    assert client.post(url, data=data).status_code == 302
    assert count() == 2


@pytest.mark.parametrize("seats", ["0", "1000", "x"])
def test_bad_seats_redisplay_with_the_error_beside_the_field(client, world, seats):
    unit, day = world["desks"], weekday()
    url = f"/bookings/new?unit_id={unit.id}"
    res = client.post(url, data={"first_date": day.isoformat(), "seats": seats,
                                 "submission": token(client, url)})
    assert res.status_code == 422
    html = res.get_data(as_text=True)
    assert 'id="seats-error"' in html and 'aria-describedby="seats-error"' in html
    assert count() == 0


def test_not_enough_seats_says_how_many_are_left(client, world, make):
    unit, day = world["desks"], weekday()
    make.booking(unit, at(day, 540), at(day, 1080), seats=4)
    url = f"/bookings/new?unit_id={unit.id}"
    res = client.post(url, data={"first_date": day.isoformat(), "seats": "2",
                                 "submission": token(client, url)})
    assert res.status_code == 409
    assert "残り1席" in res.get_data(as_text=True)
    assert count() == 1


def test_closed_day_and_hours_outside_opening(client, world, make):
    unit = world["desks"]
    url = f"/bookings/new?unit_id={unit.id}"
    sunday = weekday(wanted=6)
    res = client.post(url, data={"first_date": sunday.isoformat(), "seats": "1",
                                 "submission": token(client, url)})
    assert res.status_code == 422 and "営業していません" in res.get_data(as_text=True)
    room = make.unit(world["space"], kind=UnitKind.MEETING_ROOM, capacity=1, fits_people=4,
                     price_amount=500, price_per=PricePer.HOUR)
    url = f"/bookings/new?unit_id={room.id}"
    day = weekday()
    res = client.post(url, data={"first_date": day.isoformat(), "start_time": "19:00",
                                 "end_time": "20:00", "seats": "1",
                                 "submission": token(client, url)})
    assert res.status_code == 422 and "営業時間外" in res.get_data(as_text=True)
    res = client.post(url, data={"first_date": day.isoformat(), "start_time": "12:00",
                                 "end_time": "11:00", "seats": "1",
                                 "submission": token(client, url)})
    assert res.status_code == 422 and "終了は開始より後" in res.get_data(as_text=True)
    res = client.post(url, data={"first_date": day.isoformat(), "start_time": "10:00",
                                 "end_time": "12:00", "seats": "1",
                                 "submission": token(client, url)})
    assert res.status_code == 302
    assert count() == 1


def test_a_range_of_days_books_each_open_day(client, world):
    unit = world["desks"]
    monday = weekday(wanted=0)
    url = f"/bookings/new?unit_id={unit.id}"
    res = client.post(url, data={"first_date": monday.isoformat(),
                                 "last_date": (monday + timedelta(days=6)).isoformat(),
                                 "seats": "1", "submission": token(client, url)})
    assert res.status_code == 302
    days = sorted(b.starts_at.astimezone(TOKYO).date()
                  for b in db.session.scalars(sa.select(Booking)))
    assert days == [monday + timedelta(days=i) for i in range(5)]  # weekend left out


def test_unapproved_space_and_someone_elses_booking_are_404(client, world, make):
    hidden = make.unit(make.space(make.organisation(OrgKind.OPERATOR, approved=False)))
    assert client.get(f"/bookings/new?unit_id={hidden.id}").status_code == 404
    other = make.booking(world["desks"], at(weekday(), 540), at(weekday(), 1080),
                         company=make.company())
    for path in ("", ".ics", "/cancel", "/change"):
        assert client.get(f"/bookings/{other.reference}{path}").status_code == 404
    assert client.post(f"/bookings/{other.reference}/cancel").status_code == 404
    assert other.status == BookingStatus.CONFIRMED


def test_cancel_has_a_confirmation_step(client, world):
    unit, user = world["desks"], world["booker"]
    [b] = r.book(db.session, unit, user, [r.day_period(unit, weekday())], 1)
    page = client.get(f"/bookings/{b.reference}/cancel")
    assert page.status_code == 200 and "キャンセルを確定する" in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Booking, b.id).status == BookingStatus.CONFIRMED
    res = client.post(f"/bookings/{b.reference}/cancel", data={"reason": "予定変更"})
    assert res.status_code == 302
    db.session.expire_all()
    done = db.session.get(Booking, b.id)
    assert done.status == BookingStatus.CANCELLED and done.cancel_reason == "予定変更"
    again = client.post(f"/bookings/{b.reference}/cancel", data={})
    assert again.status_code == 409


def test_change_has_a_confirmation_step(client, world):
    unit, user = world["desks"], world["booker"]
    day = weekday()
    [b] = r.book(db.session, unit, user, [r.day_period(unit, day)], 1)
    url = f"/bookings/{b.reference}/change"
    assert client.get(url).status_code == 200
    new_day = day + timedelta(days=1)
    preview = client.post(url, data={"first_date": new_day.isoformat(), "seats": "3"})
    assert preview.status_code == 200 and "変更を確定する" in preview.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Booking, b.id).seats == 1
    done = client.post(url, data={"first_date": new_day.isoformat(), "seats": "3",
                                  "confirm": "yes"})
    assert done.status_code == 302
    db.session.expire_all()
    changed = db.session.get(Booking, b.id)
    assert changed.seats == 3 and changed.sequence == 1
    assert changed.starts_at == at(new_day, 540)
    too_many = client.post(url, data={"first_date": new_day.isoformat(), "seats": "9",
                                      "confirm": "yes"})
    assert too_many.status_code == 409


def test_feed_links_renew_and_revoke(client, world):
    page = client.get("/bookings").get_data(as_text=True)
    assert "webcal://" not in page
    assert client.post("/bookings/feeds/company/renew").status_code == 302
    page = client.get("/bookings").get_data(as_text=True)
    secret = re.search(r"webcal://[^\"]+/calendar/([^\"/]+)\.ics", page).group(1)
    assert client.get(f"/calendar/{secret}.ics").status_code == 200
    assert client.post("/bookings/feeds/company/renew").status_code == 302
    assert client.get(f"/calendar/{secret}.ics").status_code == 404  # the old one stops
    client.post("/bookings/feeds/user/renew")
    client.post("/bookings/feeds/user/revoke")
    db.session.expire_all()
    assert world["booker"].calendar_secret is None


def test_book_through_a_campaign_slot_from_the_space_page(client, world, make):
    unit = world["desks"]
    campaign = make.campaign(starts_on=future_day(1), ends_on=future_day(60))
    slot = make.slot(campaign, unit, seats=2, price_amount=0)
    url = f"/bookings/new?unit_id={unit.id}&slot={slot.id}"
    page = client.get(url).get_data(as_text=True)
    assert campaign.name in page
    res = client.post(url, data={"first_date": weekday().isoformat(), "seats": "1",
                                 "submission": token(client, url)})
    assert res.status_code == 302
    b = db.session.scalar(sa.select(Booking))
    assert b.campaign_slot_id == slot.id and b.price_amount == 0


def test_a_searched_range_fills_the_last_day_or_the_nights(client, world, make):
    """Search's book link carries end_date: a day unit's last day, a house's nights (the
    last night is end_date: check-out the day after)."""
    first, last = weekday(), weekday() + timedelta(days=3)
    wish = f"date={first.isoformat()}&end_date={last.isoformat()}&seats=2"
    page = client.get(f"/bookings/new?unit_id={world['desks'].id}&{wish}").get_data(as_text=True)
    assert re.search(rf'id="last_date"[^>]*value="{last.isoformat()}"', page), page
    house = make.unit(space=world["desks"].space, kind=UnitKind.WHOLE_HOUSE, capacity=1,
                      price_per=PricePer.NIGHT)
    page = client.get(f"/bookings/new?unit_id={house.id}&{wish}").get_data(as_text=True)
    assert re.search(r'id="nights"[^>]*value="4"', page), page
    # An end before the start fills nothing.
    back = f"date={last.isoformat()}&end_date={first.isoformat()}"
    page = client.get(f"/bookings/new?unit_id={world['desks'].id}&{back}").get_data(as_text=True)
    assert not re.search(r'id="last_date"[^>]*value="\d', page)
