"""Money as the law asks it to be shown (総額表示): every price tax-included with the rate
stated, and the breakdown (base, campaign discount, the municipality's share, what the
company pays, the tax inside it) on the booking form, the booking page, the mail and the
API — the same figures the booking stored."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import Booking, Eligibility, OutboxMessage, PricePer, UnitKind
from booking.services import mail, pricing
from booking.services.availability import TOKYO, at
from tests import worlds
from tests.edge import reservations as r
from tests.worlds import future_day


def weekday(days: int = 10):
    """A Wednesday about `days` ahead (the test spaces open every day)."""
    day = future_day(days)
    while day.weekday() != 2:
        day += timedelta(days=1)
    return day


@pytest.fixture
def world(make, login):
    w = worlds.world(make, price=1100)
    w["room"] = make.unit(w["space"], name="会議室", kind=UnitKind.MEETING_ROOM, capacity=1,
                          fits_people=6, price_amount=1500, price_per=PricePer.HOUR)
    login(w["booker"])
    return w


def _book_desk(w, seats=2, **kw) -> Booking:
    unit = w["desks"]
    return r.book(db.session, unit, w["booker"], [r.day_period(unit, weekday())], seats,
                  **kw)[0]


def _shizuoka_trial(make, unit):
    """As the demo's Shizuoka trial: the unit's own price, the city pays up to ¥1,000 a
    booking, for companies from outside the prefecture."""
    campaign = make.campaign(starts_on=future_day(1), ends_on=future_day(60))
    return make.slot(campaign, unit, price_amount=None, subsidy_cap=1000,
                     eligibility=Eligibility.OUTSIDE_PREFECTURE)


# --------------------------------------------------------------------------- figures


def test_tax_inside_a_tax_included_amount_is_rounded_down():
    assert pricing.tax_included_in(1100) == 100
    assert pricing.tax_included_in(1000) == 90  # 90.9…
    assert pricing.tax_included_in(4500) == 409
    assert pricing.tax_included_in(0) == 0


def test_a_regular_booking_breaks_down_into_base_and_tax(world):
    booking = _book_desk(world, seats=2)
    money = pricing.of_booking(booking)
    assert (money.unit_price, money.length, money.seats, money.base) == (1100, 1, 2, 2200)
    assert (money.discount, money.subsidy, money.company_pays) == (0, 0, 2200)
    assert (money.tax, money.tax_percent) == (200, 10) and money.itemised
    assert booking.price_amount == money.company_pays  # what was stored
    # The same arithmetic before booking (the form's estimate) and after.
    assert pricing.quote(booking.unit, None, booking.starts_at, booking.ends_at, 2) == money


def test_an_hourly_room_is_priced_per_hour(world):
    room, day = world["room"], weekday()
    booking = r.book(db.session, room, world["booker"],
                     [r.hours_period(day, 600, 780)], 1)[0]
    money = pricing.of_booking(booking)
    assert (money.length, money.base, money.company_pays, money.tax) == (3, 4500, 4500, 409)


def test_a_free_campaign_slot_is_a_full_discount(world, make):
    unit = world["desks"]
    campaign = make.campaign(starts_on=future_day(1), ends_on=future_day(60))
    slot = make.slot(campaign, unit, price_amount=0)
    booking = _book_desk(world, seats=1, slot=slot)
    money = pricing.of_booking(booking)
    assert (money.base, money.discount, money.subsidy, money.company_pays, money.tax) == (
        1100, 1100, 0, 0, 0)
    assert booking.price_amount == 0 and booking.subsidy_amount == 0


def test_a_subsidised_slot_splits_the_price_at_the_cap(world, make):
    slot = _shizuoka_trial(make, world["desks"])
    two = _book_desk(world, seats=2, slot=slot)  # ¥2,200: the city pays ¥1,000
    money = pricing.of_booking(two)
    assert (money.base, money.discount, money.subsidy, money.company_pays) == (2200, 0, 1000, 1200)
    assert money.tax == 109  # 1200 × 10/110, rounded down
    assert (two.price_amount, two.subsidy_amount) == (1200, 1000)
    one = _book_desk(world, seats=1, slot=slot)  # ¥1,100: the city pays ¥1,000 of it
    assert (one.price_amount, one.subsidy_amount) == (100, 1000)
    assert pricing.of_booking(one).tax == 9


def test_several_days_add_up(world):
    unit, first = world["desks"], weekday()
    periods = [r.day_period(unit, first + timedelta(days=i)) for i in range(3)]
    total = pricing.quote_all(unit, None, periods, 1)
    assert (total.length, total.base, total.company_pays) == (3, 3300, 3300)


# --------------------------------------------------------------------------- pages


def _token(page: str) -> str:
    return re.search(r'name="submission" type="hidden" value="([^"]+)"', page).group(1)


def test_the_form_shows_the_estimate_of_what_is_asked_for(client, world):
    unit, day = world["desks"], weekday()
    page = client.get(f"/bookings/new?unit_id={unit.id}&date={day}&seats=2").get_data(
        as_text=True)
    assert "¥1,100(税込) / 1日" in page  # the unit's price, tax stated
    assert "基本料金" in page and "¥2,200(税込)" in page and "うち消費税(10%)" in page
    assert "¥200" in page
    # Without a date: no figures yet, a word on how to get them.
    page = client.get(f"/bookings/new?unit_id={unit.id}").get_data(as_text=True)
    assert "基本料金" not in page and "料金を確認する" in page


def test_checking_the_price_books_nothing(client, world):
    unit, day = world["room"], weekday()
    url = f"/bookings/new?unit_id={unit.id}"
    res = client.post(url, data={"first_date": day.isoformat(), "start_time": "10:00",
                                 "end_time": "12:00", "preview": "1",
                                 "submission": _token(client.get(url).get_data(as_text=True))})
    assert res.status_code == 200
    page = res.get_data(as_text=True)
    assert "¥1,500 × 2時間" in page and "¥3,000(税込)" in page and "¥272" in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0


def test_the_form_estimates_a_subsidised_slot(client, world, make):
    slot = _shizuoka_trial(make, world["desks"])
    url = f"/bookings/new?unit_id={world['desks'].id}&slot={slot.id}&date={weekday()}"
    page = client.get(url).get_data(as_text=True)
    assert "自治体の負担" in page and "−¥1,000" in page and "¥100(税込)" in page


def test_the_booking_page_shows_the_breakdown(client, world, make):
    slot = _shizuoka_trial(make, world["desks"])
    booking = _book_desk(world, seats=2, slot=slot)
    page = client.get(f"/bookings/{booking.reference}").get_data(as_text=True)
    assert "料金の内訳" in page and "¥1,200(税込)" in page
    assert "基本料金" in page and "¥2,200" in page and "−¥1,000" in page
    assert "うち消費税(10%)" in page and "¥109" in page
    page = client.get(f"/bookings/{booking.reference}?lang=en").get_data(as_text=True)
    assert "Price breakdown" in page and "¥1,200 (incl. tax)" in page
    assert "of which consumption tax (10%)" in page


def test_a_free_booking_says_free_and_shows_the_discount(client, world, make):
    campaign = make.campaign(starts_on=future_day(1), ends_on=future_day(60))
    slot = make.slot(campaign, world["desks"], price_amount=0)
    booking = _book_desk(world, seats=1, slot=slot)
    page = client.get(f"/bookings/{booking.reference}").get_data(as_text=True)
    assert "キャンペーン割引" in page and "−¥1,100" in page and "無料" in page
    assert "うち消費税" not in page  # nothing paid, no tax inside it


# --------------------------------------------------------------------------- mail and API


def _mail_parts(booking: Booking) -> tuple[str, str]:
    row = db.session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.booking_id == booking.id, OutboxMessage.kind == "confirmation")).first()
    msg = message_from_bytes(mail.message_of(row), policy=default_policy)  # as it will be sent
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    return text, html


def test_the_confirmation_mail_shows_the_breakdown(world, make):
    slot = _shizuoka_trial(make, world["desks"])
    booking = _book_desk(world, seats=2, slot=slot)
    text, html = _mail_parts(booking)
    for part in (text, html):
        assert "¥1,200(税込)" in part
        assert "基本料金" in part and "¥2,200" in part
        assert "自治体の負担" in part and "¥1,000" in part
        assert "うち消費税(10%)" in part and "¥109" in part
        assert "キャンセル・変更の期限" in part


def test_the_mail_of_a_regular_booking_states_the_tax(world):
    booking = _book_desk(world, seats=1)
    text, _html = _mail_parts(booking)
    assert "¥1,100(税込)" in text and "うち消費税(10%): ¥100" in text
    assert "自治体の負担" not in text and "キャンペーン割引" not in text


def test_the_api_booking_has_the_breakdown_and_the_deadline(client, make):
    w = worlds.world(make, price=1100, token=True)
    day = weekday()
    res = client.post("/api/v1/bookings", headers=w["headers"], json={
        "unit_id": w["desks"].id, "date": day.isoformat(), "seats": 2})
    assert res.status_code == 201, res.get_json()
    body = res.get_json()
    assert body["price_breakdown"] == {
        "base": 2200, "campaign_discount": 0, "municipality_pays": 0, "company_pays": 2200,
        "consumption_tax": 200, "tax_rate_percent": 10}
    # The space opens at 09:00; the unit's deadline is 24 hours before.
    assert body["cancel_deadline"] == (at(day, 540) - timedelta(hours=24)).astimezone(
        TOKYO).isoformat()


def test_no_estimate_for_a_refused_field(client, world):
    """A price for 1,000 seats (more than may be booked) would only mislead."""
    unit, day = world["desks"], weekday()
    url = f"/bookings/new?unit_id={unit.id}"
    res = client.post(url, data={"first_date": day.isoformat(), "seats": "1000", "preview": "1",
                                 "submission": _token(client.get(url).get_data(as_text=True))})
    assert res.status_code == 422
    page = res.get_data(as_text=True)
    assert 'id="seats-error"' in page and "基本料金" not in page and "¥1,100,000" not in page
