"""GET /api/v1/spaces, /api/v1/spaces/<id>, /api/v1/units/<id>/availability: the contract of
shared/API.md (fields, problem+json errors, OpenAPI paths)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
import time_machine

import booking.seeds.demo
from booking.extensions import db
from booking.models import Closure, Space
from booking.services.availability import at


@pytest.fixture
def demo(app):
    booking.seeds.demo.load(db.session, today=date(2019, 7, 1))
    db.session.commit()
    return {s.slug: s for s in db.session.scalars(sa.select(Space))}


SPACE_FIELDS = {"id", "name", "name_en", "kind", "address", "prefecture", "city", "lat", "lon",
                "distance_km", "amenities", "url", "units"}
UNIT_FIELDS = {"id", "name", "kind", "capacity", "available_seats", "price", "campaign"}


def test_search_contract(client, demo):
    response = client.get("/api/v1/spaces?near=静岡駅&date=2019-07-24&seats=2")
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.json
    assert {"query", "total", "page", "results"} <= set(body)
    assert body["query"]["place"]["name"] == "静岡駅"
    assert body["query"]["lat"] and body["query"]["lon"]
    assert body["page"] == 1 and body["total"] == len(body["results"])
    first = body["results"][0]
    assert set(first) >= SPACE_FIELDS
    assert first["name"] == "エニシア静岡" and first["prefecture"] == "静岡県"
    assert first["url"].endswith("/spaces/enishia-shizuoka")
    for unit in first["units"]:
        assert set(unit) >= UNIT_FIELDS
        assert unit["price"]["currency"] == "JPY" and unit["price"]["per"] in ("day", "hour", "night")
    desks = next(u for u in first["units"] if u["kind"] == "desk")
    assert desks["available_seats"] == 85
    assert {"slug", "name", "price", "seats_left"} <= set(desks["campaign"])
    distances = [r["distance_km"] for r in body["results"]]
    assert distances == sorted(distances)


def test_free_offers_and_campaign_filter(client, demo):
    body = client.get("/api/v1/spaces?near=Yoshikawa&date=2019-07-24&free=1").json
    assert [r["name"] for r in body["results"]] == ["市民交流センターおあしす"]
    campaign = body["results"][0]["units"][0]["campaign"]
    assert campaign["price"] == {"amount": 0, "currency": "JPY", "per": "day"}
    assert campaign["slug"] == "telework-days-2019-yoshikawa" and campaign["seats_left"] == 20
    assert client.get("/api/v1/spaces?near=Yoshikawa&date=2019-07-27&free=1").json["total"] == 0
    body = client.get("/api/v1/spaces?prefecture=22&date=2019-07-24&campaign=shizuoka-trial-2019").json
    assert [r["name"] for r in body["results"]] == ["エニシア静岡"]


def test_errors_are_problems(client, demo):
    response = client.get("/api/v1/spaces?near=xyzzy")
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert response.json["code"] == "unknown_place" and response.json["detail"]
    response = client.get("/api/v1/spaces?near=府中")
    assert response.status_code == 422 and len(response.json["choices"]) >= 2
    response = client.get("/api/v1/spaces?seats=0&per_page=500&date=2019-02-30&kind=castle"
                          "&amenities=wifi,pool&start=9:00&end=8:00")
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert {"seats", "per_page", "date", "kind", "amenities"} <= set(response.json["errors"])
    response = client.get("/api/v1/spaces?near=静岡&date=2019-07-24&end_date=2019-07-01")
    assert response.status_code == 422
    response = client.get("/api/v1/spaces?near=静岡&date=2019-07-01&end_date=2019-09-01")
    assert response.status_code == 422 and response.json["code"] == "search_too_long"
    response = client.get("/api/v1/spaces?prefecture=Atlantis")
    assert response.status_code == 422
    assert client.get("/api/v1/spaces/999999").status_code == 404
    assert client.get("/api/v1/spaces/999999").mimetype == "application/problem+json"
    assert client.get("/api/v1/units/999999/availability").status_code == 404


def test_pagination_and_sorting(client, app, make):
    org = make.organisation()
    for i in range(7):
        make.unit(make.space(org, lat=35.0 + i / 1000, lon=138.0), price_amount=1000 - i * 100)
    body = client.get("/api/v1/spaces?lat=35.0&lon=138.0&date=2027-07-26&per_page=3&page=3").json
    assert (body["total"], body["page"], len(body["results"])) == (7, 3, 1)
    by_price = client.get("/api/v1/spaces?lat=35.0&lon=138.0&date=2027-07-26&sort=price").json
    prices = [r["units"][0]["price"]["amount"] for r in by_price["results"]]
    assert prices == sorted(prices)
    near = client.get("/api/v1/spaces?lat=35.0&lon=138.0&date=2027-07-26&radius_km=0.5").json
    assert near["total"] == 5  # 0.111 km apart: the ones within 0.5 km


def test_space_detail(client, demo):
    koto = demo["koto-komagane"]
    unit = koto.units[1]
    db.session.add(Closure(unit_id=unit.id, start_date=date(2019, 8, 13), end_date=date(2019, 8, 16),
                           reason="お盆"))
    db.session.add(Closure(unit_id=unit.id, start_date=date(2019, 1, 1), end_date=date(2019, 1, 3)))
    db.session.commit()
    with time_machine.travel(datetime(2019, 7, 1, 3, tzinfo=UTC), tick=False):
        body = client.get(f"/api/v1/spaces/{koto.id}").json
    assert body["name"] == "テレワークオフィス「Koto」" and body["prefecture"] == "長野県"
    assert [h["weekday"] for h in body["opening_hours"]] == [0, 1, 2, 3, 4, 5]
    assert body["opening_hours"][0] == {"weekday": 0, "opens": "09:00", "closes": "18:00"}
    assert {u["name"] for u in body["units"]} == {"会員デスク", "ワーケーション利用デスク(有償)"}
    assert body["closures"] == [{"unit_id": unit.id, "start_date": "2019-08-13",
                                 "end_date": "2019-08-16", "reason": "お盆"}]  # only those ahead
    assert any(c["slug"] == "telework-days-2019-komagane" for c in body["campaigns"])


def test_unit_availability_per_day_and_hour(client, demo, make):
    enishia = demo["enishia-shizuoka"]
    room = next(u for u in enishia.units if u.name == "会議室")
    make.booking(room, at(date(2019, 7, 24), 600), at(date(2019, 7, 24), 720))
    body = client.get(f"/api/v1/units/{room.id}/availability?from=2019-07-24&to=2019-07-25").json
    assert [d["date"] for d in body["days"]] == ["2019-07-24", "2019-07-25"]
    day = body["days"][0]
    assert day["open"] and day["opens"] == "09:00" and day["closes"] == "21:00"
    assert day["available_seats"] == 0  # taken 10–12: not free the whole day
    free = {h["start"][11:16]: h["available_seats"] for h in day["hours"]}
    assert free["09:00"] == 1 and free["10:00"] == 0 and free["11:00"] == 0 and free["12:00"] == 1
    assert body["days"][1]["available_seats"] == 1
    # A day unit: per day only. Koto is open Monday to Saturday, closed on Sunday.
    koto_desk = demo["koto-komagane"].units[1]
    body = client.get(f"/api/v1/units/{koto_desk.id}/availability?from=2019-07-27&to=2019-07-29").json
    assert [d["open"] for d in body["days"]] == [True, False, True]
    assert "hours" not in body["days"][2] and body["days"][2]["available_seats"] == 4
    # A members-only unit: only through its campaign slot.
    member = demo["koto-komagane"].units[0]
    day = client.get(f"/api/v1/units/{member.id}/availability?from=2019-07-24&to=2019-07-24").json["days"][0]
    assert day["available_seats"] == 0 and day["campaigns"][0]["seats_left"] == 8
    # Houses: per night.
    house = demo["nihon-iro-mochimune"].units[0]
    night = client.get(f"/api/v1/units/{house.id}/availability?from=2019-08-05&to=2019-08-05").json["days"][0]
    assert night["checkin"].startswith("2019-08-05T15:00")
    assert night["checkout"].startswith("2019-08-06T10:00")
    assert night["available_seats"] == 1
    bad = client.get(f"/api/v1/units/{room.id}/availability?from=2019-07-25&to=2019-07-24")
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"
    too_long = client.get(f"/api/v1/units/{room.id}/availability?from=2019-01-01&to=2019-12-31")
    assert too_long.status_code == 422


def test_openapi_describes_the_paths(client, app):
    doc = client.get("/api/v1/openapi.json").json
    for path in ("/spaces", "/spaces/{space_id}", "/units/{unit_id}/availability"):
        assert "get" in doc["paths"][path]
    params = {p["name"] for p in doc["paths"]["/spaces"]["get"]["parameters"]}
    assert {"near", "lat", "lon", "radius_km", "prefecture", "date", "end_date", "start", "end", "seats",
            "kind", "amenities", "max_price", "free", "campaign", "sort", "page", "per_page"} <= params
    assert "SearchResult" in doc["components"]["schemas"]


def test_result_urls_are_the_space_pages_urls(app):
    """Each result's url is built from one url_for per answer: the same as url_for gives
    for every slug, quoted alike."""
    from flask import url_for

    from booking.blueprints.api.spaces import _space_urls

    with app.test_request_context("/api/v1/spaces", base_url="https://example.jp"):
        space_url = _space_urls()
        for slug in ("space-1-abc", "エニシア静岡", "a b/c?d#e%f&g=h+i", "~x_y.z"):
            assert space_url(slug) == url_for("public.space", slug=slug, _external=True)
