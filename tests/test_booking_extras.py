"""Campaign extras (pocket Wi-Fi lent in limited numbers) offered where people book: the
booking form shows each extra with how many are left and a quantity field, POST
/api/v1/bookings takes `"extras": {"<extra id>": quantity}`, the booking's JSON, receipt
page and confirmation mail show what it holds, and a refusal writes nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import Booking, BookingExtra, CampaignExtra, OutboxMessage
from booking.services import mail as mail_service
from tests import worlds
from tests.worlds import future_day


def count(model=Booking) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.fixture
def world(make):
    """A desk offered by a campaign that lends 2 pocket Wi-Fi (at most 2 per booking)."""
    w = worlds.world(make, token=True)
    today = future_day(0)
    w["campaign"] = make.campaign(starts_on=today, ends_on=today + timedelta(days=60))
    w["slot"] = make.slot(w["campaign"], w["desks"], seats=10)
    w["wifi"] = CampaignExtra(campaign_id=w["campaign"].id, name="ポケットWi-Fi",
                              name_en="Pocket Wi-Fi", description="期間中お貸しします",
                              quantity=2, max_per_booking=2)
    other = make.campaign(starts_on=today, ends_on=today + timedelta(days=60))
    w["foreign"] = CampaignExtra(campaign_id=other.id, name="プロジェクター", quantity=5)
    db.session.add_all([w["wifi"], w["foreign"]])
    db.session.commit()
    return w


def _lend_all_wifi(make, w, day) -> None:
    """Another company's booking holds both routers on `day`."""
    from booking.services.availability import at

    held = make.booking(w["desks"], at(day, 540), at(day, 1080), campaign_slot_id=w["slot"].id,
                        company=make.company())
    db.session.add(BookingExtra(booking_id=held.id, extra_id=w["wifi"].id, quantity=2))
    db.session.commit()


# --------------------------------------------------------------------------- API


def post(client, w, **body):
    full = {"unit_id": w["desks"].id, "date": future_day().isoformat(),
            "campaign": w["campaign"].slug, **body}
    return client.post("/api/v1/bookings", json=full, headers=w["headers"])


def test_api_books_extras_and_returns_them(client, world):
    wifi = world["wifi"]
    res = post(client, world, extras={str(wifi.id): 2})
    assert res.status_code == 201, res.json
    assert res.json["extras"] == [{"id": wifi.id, "name": "ポケットWi-Fi", "quantity": 2}]
    again = client.get(f"/api/v1/bookings/{res.json['reference']}", headers=world["headers"])
    assert again.json["extras"] == res.json["extras"]
    # Zero means none; a booking without extras says so with an empty list.
    none = post(client, world, date=future_day(11).isoformat(), extras={str(wifi.id): 0})
    assert none.status_code == 201 and none.json["extras"] == []
    assert count(BookingExtra) == 1


@pytest.mark.parametrize("extras, code", [
    ("too_many", "extra_too_many"),
    ("foreign", "extra_not_offered"),
    ("no_campaign", "extra_not_offered"),
])
def test_api_refuses_extras_not_offered_or_too_many_with_422(client, world, extras, code):
    wifi, foreign = world["wifi"], world["foreign"]
    body = {"too_many": {"extras": {str(wifi.id): 3}},
            "foreign": {"extras": {str(foreign.id): 1}},
            "no_campaign": {"extras": {str(wifi.id): 1}, "campaign": None}}[extras]
    res = post(client, world, **body)
    assert res.status_code == 422 and res.mimetype == "application/problem+json", res.json
    assert res.json["code"] == code
    assert count() == 0 and count(BookingExtra) == 0 and count(OutboxMessage) == 0


@pytest.mark.parametrize("extras", [{"abc": 1}, {"0": 1}, {"99999999999": 1}, {"1": -1},
                                    {"1": "many"}, ["1"]])
def test_api_refuses_malformed_extras_with_422_errors(client, world, extras):
    res = post(client, world, extras=extras)
    assert res.status_code == 422 and any(k.startswith("extras") for k in res.json["errors"])
    assert count() == 0


def test_api_sold_out_is_409_with_available_and_writes_nothing(client, world, make):
    """Two days in one request, the second one's routers all lent: the first day's booking
    and its extras line (already flushed in the transaction) are rolled back too."""
    wifi, first, second = world["wifi"], future_day(10), future_day(11)
    _lend_all_wifi(make, world, second)
    before = (count(), count(BookingExtra), count(OutboxMessage))
    res = post(client, world, date=None, dates=[first.isoformat(), second.isoformat()],
               extras={str(wifi.id): 1})
    assert res.status_code == 409 and res.mimetype == "application/problem+json", res.json
    assert res.json["code"] == "extra_sold_out" and res.json["available"] == 0
    assert res.json["extra"] == wifi.id
    assert (count(), count(BookingExtra), count(OutboxMessage)) == before
    # The first day alone still has both routers.
    ok = post(client, world, extras={str(wifi.id): 2})
    assert ok.status_code == 201 and ok.json["extras"][0]["quantity"] == 2


def test_openapi_documents_extras(client):
    document = client.get("/api/v1/openapi.json").json
    extras_in = document["components"]["schemas"]["BookingIn"]["properties"]["extras"]
    assert extras_in["type"] == "object" and "<extra id>" in extras_in["description"]
    assert document["components"]["schemas"]["Booking"]["properties"]["extras"]["type"] == "array"


# --------------------------------------------------------------------------- booking form


def _form_url(w, day=None) -> str:
    url = f"/bookings/new?unit_id={w['desks'].id}&slot={w['slot'].id}"
    return f"{url}&date={day.isoformat()}" if day else url


def _token(page: str) -> str:
    return re.search(r'name="submission" type="hidden" value="([^"]+)"', page).group(1)


def test_form_shows_each_extra_with_how_many_are_left(client, world, make, login):
    login(world["booker"])
    wifi, day = world["wifi"], future_day()
    page = client.get(_form_url(world, day)).get_data(as_text=True)
    field = re.search(rf'<input[^>]*name="extra_{wifi.id}"[^>]*>', page).group(0)
    assert 'type="number"' in field and 'value="0"' in field and 'max="2"' in field
    assert "ポケットWi-Fi" in page and "残り2個(1予約につき2個まで)" in page
    english = client.get(_form_url(world, day) + "&lang=en").get_data(as_text=True)
    assert "Pocket Wi-Fi" in english and "2 left (at most 2 per booking)" in english
    _lend_all_wifi(make, world, day)
    assert "残り0個" in client.get(_form_url(world, day)).get_data(as_text=True)
    # Without a campaign slot there is nothing to lend.
    plain = client.get(f"/bookings/new?unit_id={world['desks'].id}").get_data(as_text=True)
    assert "extra_" not in plain and "貸出品" not in plain


def test_form_books_extras_and_the_receipt_and_mail_show_them(client, world, login, app):
    login(world["booker"])
    wifi, day = world["wifi"], future_day()
    url = _form_url(world)
    res = client.post(url, data={"first_date": day.isoformat(), "seats": "1",
                                 f"extra_{wifi.id}": "1",
                                 "submission": _token(client.get(url).get_data(as_text=True))})
    assert res.status_code == 302, res.get_data(as_text=True)
    booking = db.session.scalar(sa.select(Booking))
    lines = db.session.scalars(sa.select(BookingExtra)).all()
    assert [(x.booking_id, x.extra_id, x.quantity) for x in lines] == [(booking.id, wifi.id, 1)]
    receipt = client.get(res.headers["Location"]).get_data(as_text=True)
    assert "貸出品" in receipt and "ポケットWi-Fi × 1" in receipt
    # As the worker will send it: rendered from the facts stored with the row.
    mail = mail_service.message_of(db.session.scalar(
        sa.select(OutboxMessage).order_by(OutboxMessage.id))).decode()
    import email

    parts = [p.get_content() for p in email.message_from_string(
        mail, policy=email.policy.default).walk() if p.get_content_type() == "text/plain"]
    assert "貸出品: ポケットWi-Fi × 1" in parts[0]


def test_form_too_many_or_sold_out_is_shown_beside_the_extra_and_books_nothing(
        client, world, make, login):
    login(world["booker"])
    wifi, day = world["wifi"], future_day()
    url = _form_url(world)
    data = {"first_date": day.isoformat(), "seats": "1", f"extra_{wifi.id}": "3",
            "submission": _token(client.get(url).get_data(as_text=True))}
    too_many = client.post(url, data=data)
    assert too_many.status_code == 422
    page = too_many.get_data(as_text=True)
    assert f'id="extra_{wifi.id}-error"' in page and 'aria-invalid="true"' in page
    _lend_all_wifi(make, world, day)
    before = (count(), count(BookingExtra), count(OutboxMessage))
    sold_out = client.post(url, data=dict(data, **{f"extra_{wifi.id}": "1"}))
    assert sold_out.status_code == 409
    page = sold_out.get_data(as_text=True)
    assert "貸出品の在庫が足りません(残り0個)。" in page
    assert re.search(rf'id="extra_{wifi.id}-error"', page)
    assert (count(), count(BookingExtra), count(OutboxMessage)) == before
