"""The API document as generated from the code (issue 21), and the answers it promises.

Every /api/v1 answer of every test is also validated against the document, strictly
(tests/api_contract.py, hooked in tests/conftest.py); these tests check the document
itself and the findings of issue 21 one by one.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask import Response
from openapi_spec_validator import validate

from booking import clock
from booking.extensions import db
from booking.services import tokens
from booking.services.availability import at
from booking.services.errors import MESSAGES, problem_codes
from tests.api_contract import Contract, strict

H = 60


@pytest.fixture
def document(client) -> dict:
    return client.get("/api/v1/openapi.json").json


def test_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    validate(document)  # openapi-spec-validator, 3.1 with the JSON Schema 2020-12 dialect


def test_every_api_route_is_an_operation_with_id_and_tag(app, document):
    operations = {(method, path): op for path, item in document["paths"].items()
                  for method, op in item.items()}
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule.removeprefix("/api/v1")
            for arg in rule.arguments:
                path = path.replace(f"<int:{arg}>", f"{{{arg}}}").replace(f"<{arg}>", f"{{{arg}}}")
            routes |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == set(operations)
    ids = [op["operationId"] for op in operations.values()]
    assert len(ids) == len(set(ids)) and all(ids)
    tags = {t["name"] for t in document["tags"]}
    for key, op in operations.items():
        assert op["tags"] and set(op["tags"]) <= tags, key


def test_answers_are_typed_objects_not_bare_dicts(document):
    """No answer object is left without properties (a generated client would make a dict
    of it): every schema reached from a 2xx answer lists its properties."""
    schemas = document["components"]["schemas"]
    seen: set[str] = set()

    def walk(schema: dict, where: str) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                walk(schemas[name], name)
            return
        if schema.get("type") == "object":
            assert schema.get("properties") or schema.get("additionalProperties"), where
        for key in ("properties",):
            for name, sub in schema.get(key, {}).items():
                walk(sub, f"{where}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                walk(schema[key], f"{where}[]")
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in schema.get(key, []):
                walk(sub, where)

    for path, item in document["paths"].items():
        for method, op in item.items():
            if path == "/openapi.json":
                continue
            for status, answer in op["responses"].items():
                for content in answer.get("content", {}).values():
                    walk(content["schema"], f"{method} {path} {status}")
    assert {"SearchQuery", "SpaceUnit", "SpaceClosure", "SpaceCampaign", "AvailabilityHour",
            "Account", "Problem"} <= seen


def test_the_fields_issue_21_found_undocumented_are_documented(document):
    props = {name: set(s.get("properties", {})) for name, s in
             document["components"]["schemas"].items()}
    assert {"slug", "description", "description_en", "access", "access_en", "nearest_station",
            "coordinates_approximate", "closed_on_holidays"} <= props["SpaceDetail"]
    assert {"kind", "capacity", "price", "members_only"} <= props["UnitAvailability"]
    assert {"opens", "closes", "hours"} <= props["AvailabilityDay"]
    assert {"code", "available", "errors", "limit"} <= props["Problem"]


def test_spaces_documents_no_429_and_the_throttled_operations_do(document):
    assert "429" not in document["paths"]["/spaces"]["get"]["responses"]
    for path in ("/accounts", "/tokens", "/bookings"):
        assert "429" in document["paths"][path]["post"]["responses"], path


def test_the_strict_reading_refuses_an_undocumented_field(document):
    contract = Contract(document)
    answer = {"token": "t", "expires_at": "2026-01-01T00:00:00+09:00"}
    rule = "/api/v1/tokens"
    ok = Response(json.dumps(answer), 201, mimetype="application/json")
    assert contract.check(rule, "POST", ok) == []
    more = Response(json.dumps({**answer, "secret": 1}), 201,
                    mimetype="application/json")
    assert any("secret" in e for e in contract.check(rule, "POST", more))
    undocumented_status = Response("{}", 418, mimetype="application/json")
    assert contract.check(rule, "POST", undocumented_status) == ["POST /tokens: 418 is not documented"]
    # The document itself leaves objects open (clients must accept added fields).
    assert "additionalProperties" not in document["components"]["schemas"]["Token"]
    assert strict(document["components"]["schemas"]["Token"])["additionalProperties"] is False


# ------------------------------------------------------------------------------ problems

def test_problem_has_code_type_uri_and_fixed_title(client, make):
    unit = make.unit(capacity=1)
    user = make.user(organisation=make.company())
    token, _ = tokens.issue(db.session, user, 1)
    db.session.commit()
    day = (clock.today() + timedelta(days=3)).isoformat()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/bookings", json={"unit_id": unit.id, "date": day},
                       headers=headers).status_code == 201
    full = client.post("/api/v1/bookings", json={"unit_id": unit.id, "date": day},
                       headers=headers)
    body = full.json
    assert full.status_code == 409 and full.mimetype == "application/problem+json"
    assert body["code"] == "not_enough_seats" and body["available"] == 0
    assert body["type"] == "http://localhost/api/v1/problems/not_enough_seats"
    assert body["title"] == "Not enough seats" and "空席が足りません" in body["detail"]
    english = client.post("/api/v1/bookings?lang=en", json={"unit_id": unit.id, "date": day},
                          headers=headers).json
    assert english["title"] == body["title"]  # fixed per type, whatever the language
    described = client.get(body["type"].removeprefix("http://localhost"))
    assert described.status_code == 200
    assert described.json == {"type": body["type"], "code": "not_enough_seats",
                              "title": "Not enough seats", "status": 409}


def test_every_code_has_a_type_page(client):
    listed = client.get("/api/v1/problems").json["results"]
    codes = {p["code"] for p in listed}
    assert {c for c in MESSAGES if "." not in c} <= codes
    assert {"unauthorized", "invalid_input", "not_found", "bad_credentials"} <= codes
    assert all(p["title"] and p["type"].endswith("/" + p["code"]) for p in listed)
    assert client.get("/api/v1/problems/no_such_code").status_code == 404
    assert problem_codes()["invalid_input"] == 422


def test_generic_problems_title_is_the_status_phrase(client):
    missing = client.get("/api/v1/spaces/999999")
    assert missing.status_code == 404
    assert missing.json["code"] == "not_found" and missing.json["title"] == "Not Found"
    invalid = client.get("/api/v1/spaces?seats=0")
    assert invalid.status_code == 422 and invalid.json["code"] == "invalid_input"
    assert invalid.json["title"] == "Unprocessable Content" and "seats" in invalid.json["errors"]
    no_token = client.get("/api/v1/bookings")
    assert no_token.json["code"] == "unauthorized" and no_token.json["title"] == "Unauthorized"
    assert no_token.json["type"].endswith("/api/v1/problems/unauthorized")


# ------------------------------------------------------------------------------ JSON and 204

def test_json_is_utf8_not_escaped(client, make):
    space = make.space(name="静岡の施設")
    make.unit(space)
    answer = client.get(f"/api/v1/spaces/{space.id}")
    assert "静岡の施設".encode() in answer.get_data()
    assert b"\\u" not in answer.get_data()
    assert answer.mimetype == "application/json"


def test_revoking_a_token_is_204_without_body_or_content_type(client, make):
    user = make.user(organisation=make.company())
    token, _ = tokens.issue(db.session, user, 1)
    db.session.commit()
    revoked = client.delete("/api/v1/tokens/current", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 204
    assert revoked.get_data() == b"" and "Content-Type" not in revoked.headers
    again = client.get("/api/v1/bookings", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401


# ------------------------------------------------------------------------------ .ics

@pytest.fixture
def booked(client, make):
    company = make.company()
    user = make.user(organisation=company)
    unit = make.unit()
    day = clock.today() + timedelta(days=2)
    booking = make.booking(unit, at(day, 9 * H), at(day, 18 * H), company=company,
                           user_id=user.id)
    token, _ = tokens.issue(db.session, user, 1)
    db.session.commit()
    return booking, token


def test_ics_url_without_credentials_from_an_api_client_is_a_401_problem(client, booked):
    booking, token = booked
    path = f"/bookings/{booking.reference}.ics"
    for headers in ({"Accept": "application/json"}, {"Accept": "application/problem+json"},
                    {"Authorization": "Bearer not-a-token"}):
        refused = client.get(path, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.mimetype == "application/problem+json"
        assert refused.json["code"] == "unauthorized"
    # A browser still goes to the log-in page, and the token gets the calendar.
    browser = client.get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.status_code == 302 and "/account/login" in browser.headers["Location"]
    calendar = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert calendar.status_code == 200 and calendar.mimetype == "text/calendar"
