"""Weekly series through the JSON API (/api/v1/series): preview a rule, book the dates it
showed free (all or none, Idempotency-Key as POST /bookings), read the series, cancel one
date or all of them. Real databases, the series' one mail through the real SMTP path
(tests/mailbox.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import Booking, BookingSeries, OutboxMessage, PricePer, UnitKind
from booking.services import mail, tokens
from tests import worlds
from tests.edge import reservations as r
from tests.worlds import next_weekday


@pytest.fixture
def app_config(smtp_port):
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}"}




@pytest.fixture
def w(make):
    """Desks for 3, open Monday to Saturday 9:00-18:00, a meeting room let by the hour; the
    company's booker and a stranger, each with a token."""
    out = worlds.world(make, capacity=3, token=True, hours=(range(6), 540, 1080))
    out["room"] = make.unit(out["space"], name="会議室", kind=UnitKind.MEETING_ROOM, capacity=1,
                            price_amount=1500, price_per=PricePer.HOUR, max_length=200)
    stranger = make.user("stranger@example.jp", organisation=make.company(name="他社"))
    secret, _ = tokens.issue(db.session, stranger, 1)
    db.session.execute(sa.delete(OutboxMessage))
    db.session.commit()
    out["other"] = {"Authorization": f"Bearer {secret}"}
    out["wed"] = next_weekday(2)
    return out


def _rule(w, weeks: int = 4, **more) -> dict:
    first = w["wed"]
    return {"unit_id": w["desks"].id, "weekdays": [2], "first_date": first.isoformat(),
            "last_date": (first + timedelta(days=7 * weeks - 1)).isoformat(), **more}


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_preview_then_book_the_free_dates_with_one_mail(client, w, make, smtp_server):
    desks, wed = w["desks"], w["wed"]
    make.booking(desks, *r.day_period(desks, wed + timedelta(days=7)), seats=3)  # full
    shown = client.post("/api/v1/series/preview", json=_rule(w, seats=2), headers=w["headers"])
    assert shown.status_code == 200, shown.json
    view = shown.json
    assert [o["state"] for o in view["occurrences"]] == ["free", "taken", "free", "free"]
    assert view["occurrences"][1]["seats_free"] == 0
    free = [wed, wed + timedelta(days=14), wed + timedelta(days=21)]
    assert view["free_dates"] == [d.isoformat() for d in free]
    assert view["weekdays"] == [2] and view["start"] is None and view["late"] is False
    assert _count(Booking) == 1  # a preview books nothing

    made = client.post("/api/v1/series", headers=w["headers"],
                       json=_rule(w, seats=2, dates=view["free_dates"], note="毎週伺います",
                                  attendees=["hanako@example.jp"]))
    assert made.status_code == 201, made.json
    body = made.json
    assert made.headers["Location"] == f"/api/v1/series/{body['id']}"
    assert [b["start"][:10] for b in body["bookings"]] == view["free_dates"]
    assert all(b["series_id"] == body["id"] and b["seats"] == 2 and
               b["attendees"] == ["hanako@example.jp"] for b in body["bookings"])
    assert body["url"].endswith(f"/series/{body['id']}") and body["sequence"] == 0
    read = client.get(f"/api/v1/series/{body['id']}", headers=w["headers"])
    assert read.status_code == 200 and read.json == body
    # One confirmation for the series to the booker, not one per date.
    mail.run_once(db.session)
    to_booker = [m for m in smtp_server.parsed() if m["To"] == "booker@example.jp"]
    assert len(to_booker) == 1 and "定期予約確定" in str(to_booker[0]["Subject"])


def test_hours_of_a_room_and_the_rules_refusals(client, w):
    room = {"unit_id": w["room"].id, "start": "10:00", "end": "12:00"}
    shown = client.post("/api/v1/series/preview", json=_rule(w, **room), headers=w["headers"])
    assert shown.status_code == 200, shown.json
    assert shown.json["start"] == "10:00" and shown.json["end"] == "12:00"
    assert shown.json["occurrences"][0]["start"].endswith("T10:00:00+09:00")
    cases = [
        (_rule(w, weekdays=[]), 422, "series_no_weekday"),
        (_rule(w, weeks=30), 422, "series_too_many"),
        (_rule(w, unit_id=w["room"].id), 422, "series_hours"),
        (_rule(w, seats=4), 200, None),  # all taken: said per date, not refused
        (_rule(w, seats=0), 422, "invalid_input"),
        (_rule(w, weekdays=[7]), 422, "invalid_input"),
        (_rule(w, unit_id=w["room"].id, start="10:00", end="25:00"), 422, "invalid_input"),
        (_rule(w, unit_id=999_999), 404, "unavailable"),
    ]
    for body, status, code in cases:
        answer = client.post("/api/v1/series/preview", json=body, headers=w["headers"])
        assert answer.status_code == status, (body, answer.json)
        if code:
            assert answer.json["code"] == code, (body, answer.json)
    assert client.post("/api/v1/series/preview", json=_rule(w, seats=4),
                       headers=w["headers"]).json["free_dates"] == []


def test_past_dates_taken_dates_and_too_many_seats_book_nothing(client, w, make):
    desks, wed = w["desks"], w["wed"]
    view = client.post("/api/v1/series/preview", json=_rule(w), headers=w["headers"]).json
    # A date taken since the preview: the whole series is refused, naming it.
    make.booking(desks, *r.day_period(desks, wed + timedelta(days=7)), seats=3)
    taken = client.post("/api/v1/series", json=_rule(w, dates=view["free_dates"]),
                        headers=w["headers"])
    assert taken.status_code == 409 and taken.json["code"] == "series_date_taken"
    assert (wed + timedelta(days=7)).isoformat() in taken.json["detail"]
    # Past dates are never free: a rule from last month books nothing of them.
    past_first = next_weekday(2, days=-28)
    past = _rule(w, first_date=past_first.isoformat(),
                 last_date=(past_first + timedelta(days=6)).isoformat())
    past_view = client.post("/api/v1/series/preview", json=past, headers=w["headers"]).json
    assert [o["state"] for o in past_view["occurrences"]] == ["past"]
    gone = client.post("/api/v1/series", json=dict(past, dates=[past_first.isoformat()]),
                       headers=w["headers"])
    assert gone.status_code == 409 and gone.json["code"] == "series_date_taken"
    # More seats than free: every date taken; sending them anyway is refused.
    many = client.post("/api/v1/series", json=_rule(w, seats=4, dates=view["free_dates"][:1]),
                       headers=w["headers"])
    assert many.status_code == 409 and many.json["code"] == "series_date_taken"
    none = client.post("/api/v1/series", json=_rule(w, dates=[]), headers=w["headers"])
    assert none.status_code == 409 and none.json["code"] == "series_nothing_free"
    assert _count(BookingSeries) == 0 and _count(Booking) == 1


def test_the_same_key_books_the_series_once(client, w):
    view = client.post("/api/v1/series/preview", json=_rule(w), headers=w["headers"]).json
    body = _rule(w, dates=view["free_dates"])
    keyed = dict(w["headers"], **{"Idempotency-Key": "weekly-1"})
    first = client.post("/api/v1/series", json=body, headers=keyed)
    again = client.post("/api/v1/series", json=body, headers=keyed)
    assert first.status_code == again.status_code == 201, (first.json, again.json)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == first.json
    # The answer kept for replays, built in the booking transaction, lists every booking.
    assert [b["start"][:10] for b in first.json["bookings"]] == view["free_dates"]
    other = client.post("/api/v1/series", json=dict(body, seats=2), headers=keyed)
    assert other.status_code == 422 and other.json["code"] == "idempotency_mismatch"
    assert _count(BookingSeries) == 1 and _count(Booking) == 4
    # Without a key the retry is refused: its dates are taken (by the first series).
    unkeyed = client.post("/api/v1/series", json=dict(body, seats=3), headers=w["headers"])
    assert unkeyed.status_code == 409 and unkeyed.json["code"] == "series_date_taken"


def test_cancel_one_date_then_all_and_strangers_see_nothing(client, w):
    view = client.post("/api/v1/series/preview", json=_rule(w), headers=w["headers"]).json
    made = client.post("/api/v1/series", json=_rule(w, dates=view["free_dates"]),
                       headers=w["headers"]).json
    series_id, references = made["id"], [b["reference"] for b in made["bookings"]]
    # A stranger: the same answer as for a series that does not exist.
    for method, suffix in (("get", ""), ("delete", ""), ("delete", f"/bookings/{references[0]}")):
        theirs = getattr(client, method)(f"/api/v1/series/{series_id}{suffix}", headers=w["other"])
        missing = getattr(client, method)(f"/api/v1/series/{series_id + 1000}{suffix}",
                                          headers=w["other"])
        assert theirs.status_code == missing.status_code == 404, (method, suffix)
        assert theirs.json == missing.json and theirs.json["code"] == "not_found"
    assert _count(Booking) == 4 and all(
        b["status"] == "confirmed" for b in client.get(
            f"/api/v1/series/{series_id}", headers=w["headers"]).json["bookings"])

    one = client.delete(f"/api/v1/series/{series_id}/bookings/{references[1]}",
                        json={"reason": "祝日のため"}, headers=w["headers"])
    assert one.status_code == 200 and one.json["status"] == "cancelled"
    assert one.json["series_id"] == series_id
    twice = client.delete(f"/api/v1/series/{series_id}/bookings/{references[1]}",
                          headers=w["headers"])
    assert twice.status_code == 409 and twice.json["code"] == "already_cancelled"
    not_of_it = client.delete(f"/api/v1/series/{series_id}/bookings/NOTONE", headers=w["headers"])
    assert not_of_it.status_code == 404 and not_of_it.json["code"] == "not_yours"

    everything = client.delete(f"/api/v1/series/{series_id}", headers=w["headers"])
    assert everything.status_code == 200, everything.json
    assert sorted(everything.json["cancelled"]) == sorted(
        ref for i, ref in enumerate(references) if i != 1)
    assert everything.json["kept"] == []
    assert {b["status"] for b in everything.json["bookings"]} == {"cancelled"}
    assert everything.json["sequence"] == 1
