"""The waitlist through the JSON API (/api/v1/waitlist): join with a booking's fields, list
and read, leave, and answer an offer (confirm: the booking, with Idempotency-Key as POST
/bookings; decline). Real databases, the offer and confirmation mails through the real
SMTP path (tests/mailbox.py), the offer's deadline passed with the clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking import clock
from booking.extensions import db
from booking.models import Booking, BookingStatus, IdempotencyRecord, User, WaitlistEntry
from booking.services import mail, tokens
from tests.edge import reservations as r
from tests.worlds import future_day


@pytest.fixture
def app_config(smtp_port):
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}", "WAITLIST_HOLD_MINUTES": 120}


def _headers(user: User) -> dict:
    secret, _ = tokens.issue(db.session, user, 24)  # outlives the offer's two hours
    db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def w(make):
    """A desk pool of 2 seats, full on DAY (two other companies' bookings), and two
    companies that would like a seat, each with a token."""
    operator = make.organisation(name="運営")
    space = make.space(operator, name="駅前オフィス")
    unit = make.unit(space, capacity=2, name="フリー席", price_amount=1500)
    people = {}
    for key in ("holder1", "holder2", "first", "second"):
        people[key] = make.user(f"{key}@example.jp", organisation=make.company(name=f"{key}社"))
    day = future_day(7)
    held = [r.book(db.session, unit, people[k], [r.day_period(unit, day)], 1)[0]
            for k in ("holder1", "holder2")]
    return {"unit": unit, "day": day, "held": held, **people,
            "h1": _headers(people["first"]), "h2": _headers(people["second"])}


def _join(client, w, headers, **body):
    return client.post("/api/v1/waitlist", headers=headers,
                       json={"unit_id": w["unit"].id, "date": w["day"].isoformat(), **body})


def _free_a_seat(w) -> None:
    booking = db.session.get(Booking, w["held"][0].id)
    r.cancel(db.session, booking, db.session.get(User, booking.user_id))


def _entries() -> int:
    return db.session.scalar(sa.select(sa.func.count(WaitlistEntry.id)))


# --------------------------------------------------------------------------- join, read


def test_join_list_and_read_an_entry(client, w):
    joined = _join(client, w, w["h1"], seats=1, note="窓際希望")
    assert joined.status_code == 201, joined.json
    entry = joined.json
    assert joined.headers["Location"] == f"/api/v1/waitlist/{entry['id']}"
    assert entry["status"] == "waiting" and entry["seats"] == 1 and entry["note"] == "窓際希望"
    assert entry["unit_id"] == w["unit"].id and entry["offer"] is None
    assert entry["start"].startswith(w["day"].isoformat()) and entry["start"].endswith("+09:00")
    assert entry["url"].endswith(f"/waitlist/{entry['id']}")
    listed = client.get("/api/v1/waitlist", headers=w["h1"])
    assert listed.status_code == 200 and [e["id"] for e in listed.json["results"]] == [entry["id"]]
    one = client.get(f"/api/v1/waitlist/{entry['id']}", headers=w["h1"])
    assert one.status_code == 200 and one.json == entry
    # The other company's list does not show it.
    assert client.get("/api/v1/waitlist", headers=w["h2"]).json["results"] == []


def test_join_refusals_write_nothing(client, w):
    assert _join(client, w, w["h1"]).status_code == 201
    cases = [
        ({}, 409, "waitlist_duplicate"),  # the same period twice
        ({"date": (w["day"] + timedelta(days=1)).isoformat()}, 409, "waitlist_seats_free"),
        ({"date": (clock.today() - timedelta(days=2)).isoformat()}, 422, "in_past"),
        ({"seats": 3}, 422, "bad_seats"),  # more than the unit has
        ({"seats": 1000}, 422, "invalid_input"),
        ({"unit_id": 999_999}, 404, "unavailable"),
        ({"campaign": "no-such-campaign"}, 422, "campaign_closed"),
        ({"start": f"{w['day']}T10:00:00+09:00"}, 422, "invalid_input"),  # date and start
    ]
    for change, status, code in cases:
        refused = _join(client, w, w["h1"], **change)
        assert refused.status_code == status, (change, refused.json)
        assert refused.mimetype == "application/problem+json"
        assert refused.json["code"] == code, (change, refused.json)
    assert _entries() == 1
    # No token: 401.
    assert client.post("/api/v1/waitlist", json={}).status_code == 401


def test_someone_elses_entry_is_answered_as_one_that_does_not_exist(client, w):
    entry_id = _join(client, w, w["h1"]).json["id"]
    _free_a_seat(w)  # an offer, so that every action would have something to act on
    for method, suffix in (("get", ""), ("delete", ""), ("post", "/confirmation"),
                           ("delete", "/offer")):
        theirs = getattr(client, method)(f"/api/v1/waitlist/{entry_id}{suffix}",
                                         headers=w["h2"])
        missing = getattr(client, method)(f"/api/v1/waitlist/{entry_id + 1000}{suffix}",
                                          headers=w["h2"])
        assert theirs.status_code == missing.status_code == 404, (method, suffix)
        assert theirs.json == missing.json and theirs.json["code"] == "not_found"
    db.session.expire_all()
    assert db.session.get(WaitlistEntry, entry_id).status.value == "offered"


# --------------------------------------------------------------------------- offers


def test_confirm_an_offer_books_it_once_with_the_same_key(client, w, smtp_server):
    entry_id = _join(client, w, w["h1"]).json["id"]
    _free_a_seat(w)
    smtp_server.messages.clear()
    mail.run_once(db.session)
    [offer_mail] = [m for m in smtp_server.parsed() if m["To"] == "first@example.jp"]
    assert f"/waitlist/{entry_id}" in offer_mail.get_body(("plain",)).get_content()
    offered = client.get(f"/api/v1/waitlist/{entry_id}", headers=w["h1"]).json
    assert offered["status"] == "offered"
    offer = offered["offer"]
    assert offer["live"] is True and offer["status"] == "offered"
    assert offer["price"] == {"amount": 1500, "currency": "JPY", "subsidy": 0}
    assert offer["price_breakdown"]["company_pays"] == 1500

    path = f"/api/v1/waitlist/{entry_id}/confirmation"
    keyed = dict(w["h1"], **{"Idempotency-Key": "take-it-1"})
    booked = client.post(path, headers=keyed)
    assert booked.status_code == 201, booked.json
    assert booked.json["reference"] == offer["reference"]
    assert booked.json["status"] == "confirmed"
    assert booked.headers["Location"] == f"/api/v1/bookings/{offer['reference']}"
    again = client.post(path, headers=keyed)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == booked.json
    # The same key for another request: refused; without a key: nothing to take.
    mismatch = client.post("/api/v1/bookings", headers=keyed,
                           json={"unit_id": w["unit"].id, "date": w["day"].isoformat()})
    assert mismatch.status_code == 422 and mismatch.json["code"] == "idempotency_mismatch"
    twice = client.post(path, headers=w["h1"])
    assert twice.status_code == 409 and twice.json["code"] == "waitlist_not_offered"
    assert db.session.scalar(sa.select(sa.func.count(IdempotencyRecord.id))) == 1
    assert client.get(f"/api/v1/waitlist/{entry_id}", headers=w["h1"]).json["status"] == "booked"
    mine = client.get(f"/api/v1/bookings/{offer['reference']}", headers=w["h1"])
    assert mine.status_code == 200 and mine.json["status"] == "confirmed"
    # The confirmation goes out as any booking's, with its calendar invitation.
    smtp_server.messages.clear()
    mail.run_once(db.session)
    [confirmation] = [m for m in smtp_server.parsed() if m["To"] == "first@example.jp"]
    assert any(p.get_content_type() == "text/calendar" for p in confirmation.walk())


def test_an_expired_offer_is_refused_and_nothing_is_written(client, w):
    entry_id = _join(client, w, w["h1"]).json["id"]
    _free_a_seat(w)
    db.session.expire_all()
    entry = db.session.get(WaitlistEntry, entry_id)
    deadline, held_id = entry.offer_expires_at, entry.offer_booking_id
    with time_machine.travel(deadline + timedelta(seconds=1), tick=False):
        shown = client.get(f"/api/v1/waitlist/{entry_id}", headers=w["h1"]).json
        assert shown["offer"]["live"] is False
        late = client.post(f"/api/v1/waitlist/{entry_id}/confirmation",
                           headers=dict(w["h1"], **{"Idempotency-Key": "too-late"}))
        assert late.status_code == 409 and late.json["code"] == "waitlist_offer_expired"
    db.session.expire_all()
    assert db.session.get(Booking, held_id).status == BookingStatus.OFFERED
    assert db.session.scalar(sa.select(sa.func.count(IdempotencyRecord.id))) == 0


def test_decline_passes_the_offer_on_and_leave_ends_the_entry(client, w):
    first = _join(client, w, w["h1"]).json["id"]
    second = _join(client, w, w["h2"]).json["id"]
    _free_a_seat(w)
    declined = client.delete(f"/api/v1/waitlist/{first}/offer", headers=w["h1"])
    assert declined.status_code == 200 and declined.json["status"] == "expired"
    assert declined.json["offer"]["status"] == "expired"
    again = client.delete(f"/api/v1/waitlist/{first}/offer", headers=w["h1"])
    assert again.status_code == 409 and again.json["code"] == "waitlist_not_offered"
    assert client.get(f"/api/v1/waitlist/{second}", headers=w["h2"]).json["status"] == "offered"
    # Leaving with an offer held declines it too; leaving twice is refused.
    left = client.delete(f"/api/v1/waitlist/{second}", headers=w["h2"])
    assert left.status_code == 200 and left.json["status"] == "left"
    twice = client.delete(f"/api/v1/waitlist/{second}", headers=w["h2"])
    assert twice.status_code == 409 and twice.json["code"] == "waitlist_not_waiting"
    gone = client.delete(f"/api/v1/waitlist/{first}", headers=w["h1"])
    assert gone.status_code == 409 and gone.json["code"] == "waitlist_not_waiting"
