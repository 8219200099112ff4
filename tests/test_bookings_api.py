"""The bookings API of shared/API.md: POST/GET/DELETE /api/v1/bookings, Idempotency-Key."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import Booking, IdempotencyRecord, OrgKind, OutboxMessage
from booking.services.availability import at
from tests import worlds
from tests.worlds import future_day


@pytest.fixture
def api(make):
    return worlds.world(make, capacity=6, price=2000, token=True)


def post(client, api, body, key=None, **headers):
    h = dict(api["headers"], **headers)
    if key:
        h["Idempotency-Key"] = key
    return client.post("/api/v1/bookings", json=body, headers=h)


def count(model=Booking):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_book_by_date_and_read_it_back(client, api):
    day = future_day()
    res = post(client, api, {"unit_id": api["desks"].id, "date": day.isoformat(), "seats": 2,
                             "attendees": ["team@example.jp"]}, key="k1")
    assert res.status_code == 201, res.json
    body = res.json
    assert body["status"] == "confirmed" and body["seats"] == 2
    assert body["start"] == at(day, 540).isoformat() and body["start"].endswith("+09:00")
    assert body["price"] == {"amount": 4000, "currency": "JPY", "subsidy": 0}
    assert body["ics_url"].endswith(f"/bookings/{body['reference']}.ics")
    assert body["attendees"] == ["team@example.jp"]
    one = client.get(f"/api/v1/bookings/{body['reference']}", headers=api["headers"])
    assert one.status_code == 200 and one.json["reference"] == body["reference"]
    listing = client.get("/api/v1/bookings", headers=api["headers"]).json
    assert listing["total"] == 1 and listing["results"][0]["reference"] == body["reference"]
    ics = client.get(body["ics_url"].removeprefix("http://localhost"), headers=api["headers"])
    assert ics.status_code == 200 and ics.mimetype == "text/calendar"
    assert b"METHOD:PUBLISH" in ics.data and b"ATTENDEE" not in ics.data


def test_same_key_same_body_books_once(client, api):
    body = {"unit_id": api["desks"].id, "date": future_day().isoformat(), "seats": 1}
    first = post(client, api, body, key="retry-1")
    again = post(client, api, body, key="retry-1")
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert count() == 1 and count(IdempotencyRecord) == 1
    other = post(client, api, dict(body, seats=2), key="retry-1")
    assert other.status_code == 422 and other.mimetype == "application/problem+json"
    assert other.json["code"] == "idempotency_mismatch"
    assert count() == 1
    assert post(client, api, body, key="retry-2").status_code == 201
    assert count() == 2


def test_same_key_raced_books_once(app, api):
    body = {"unit_id": api["desks"].id, "date": future_day().isoformat(), "seats": 1}
    barrier = threading.Barrier(8)
    answers = []

    def go():
        c = app.test_client()
        barrier.wait(timeout=30)
        answers.append(post(c, api, body, key="same-everywhere"))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [a.status_code for a in answers] == [201] * 8
    assert len({a.json["reference"] for a in answers}) == 1
    db.session.expire_all()
    assert count() == 1


def test_not_enough_seats_is_409_with_available(client, api):
    day = future_day()
    assert post(client, api, {"unit_id": api["desks"].id, "date": day.isoformat(),
                              "seats": 5}).status_code == 201
    res = post(client, api, {"unit_id": api["desks"].id, "date": day.isoformat(), "seats": 2})
    assert res.status_code == 409 and res.mimetype == "application/problem+json"
    assert res.json["available"] == 1 and res.json["code"] == "not_enough_seats"


@pytest.mark.parametrize("body, field", [
    ({"seats": 0}, "seats"),
    ({"seats": 1000}, "seats"),
    ({"attendees": ["not-an-address"]}, "attendees.0"),
    ({"unit_id": 2**31}, "unit_id"),  # beyond the id column: a 422, not a database error
])
def test_invalid_fields_are_422_with_errors(client, api, body, field):
    full = {"unit_id": api["desks"].id, "date": future_day().isoformat(), **body}
    res = post(client, api, full)
    assert res.status_code == 422 and field in res.json["errors"], res.json
    assert count() == 0


def test_end_before_start_and_outside_hours(client, api):
    day = future_day()
    res = post(client, api, {"unit_id": api["desks"].id, "start": at(day, 700).isoformat(),
                             "end": at(day, 600).isoformat()})
    assert res.status_code == 422
    res = post(client, api, {"unit_id": api["desks"].id, "start": at(day, 420).isoformat(),
                             "end": at(day, 600).isoformat()})
    assert res.status_code == 422 and res.json["code"] == "outside_hours"
    res = post(client, api, {"unit_id": api["desks"].id, "start": "2030-01-01T10:00:00",
                             "end": "2030-01-01T12:00:00"})
    assert res.status_code == 422  # naive times are refused
    assert count() == 0


def test_unapproved_organisation_and_someone_elses_booking(client, api, make):
    hidden = make.unit(make.space(make.organisation(OrgKind.OPERATOR, approved=False)))
    res = post(client, api, {"unit_id": hidden.id, "date": future_day().isoformat()})
    assert res.status_code == 404 and res.json["code"] == "unavailable"
    other = make.booking(api["desks"], at(future_day(), 540), at(future_day(), 1080),
                         company=make.company())
    for method in (client.get, client.delete):
        res = method(f"/api/v1/bookings/{other.reference}", headers=api["headers"])
        assert res.status_code == 404 and res.mimetype == "application/problem+json"
    assert client.get("/api/v1/bookings", headers=api["headers"]).json["total"] == 0


def test_delete_cancels_and_frees_seats_then_deadline(client, api):
    day = future_day()
    ref = post(client, api, {"unit_id": api["desks"].id, "date": day.isoformat(),
                             "seats": 6}).json["reference"]
    res = client.delete(f"/api/v1/bookings/{ref}", headers=api["headers"])
    assert res.status_code == 200 and res.json["status"] == "cancelled"
    assert res.json["sequence"] == 1
    assert post(client, api, {"unit_id": api["desks"].id, "date": day.isoformat(),
                              "seats": 6}).status_code == 201
    again = client.delete(f"/api/v1/bookings/{ref}", headers=api["headers"])
    assert again.status_code == 409
    soon = api["desks"]
    soon.cancel_deadline_hours = 24 * 30
    db.session.commit()
    late = post(client, api, {"unit_id": soon.id, "date": future_day(12).isoformat()}).json
    res = client.delete(f"/api/v1/bookings/{late['reference']}", headers=api["headers"])
    assert res.status_code == 409 and res.json["code"] == "cancel_deadline"
    kinds = set(db.session.scalars(sa.select(OutboxMessage.kind)))
    assert {"confirmation", "cancellation"} <= kinds


def test_set_of_dates_and_patch(client, api):
    days = [future_day(10).isoformat(), future_day(11).isoformat()]
    res = post(client, api, {"unit_id": api["desks"].id, "dates": days, "seats": 1})
    assert res.status_code == 201 and len(res.json["bookings"]) == 2
    ref = res.json["reference"]
    changed = client.patch(f"/api/v1/bookings/{ref}", json={"seats": 3}, headers=api["headers"])
    assert changed.status_code == 200 and changed.json["seats"] == 3
    assert changed.json["sequence"] == 1


def test_token_needed_and_openapi_lists_paths(client):
    res = client.post("/api/v1/bookings", json={})
    assert res.status_code == 401 and res.mimetype == "application/problem+json"
    spec = client.get("/api/v1/openapi.json").json
    assert {"post", "get"} <= set(spec["paths"]["/bookings"])
    assert {"get", "delete"} <= set(spec["paths"]["/bookings/{reference}"])
