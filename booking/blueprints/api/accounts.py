"""POST /api/v1/accounts and POST /api/v1/tokens."""

from __future__ import annotations

from flask import current_app, request
from pydantic import BaseModel, Field

from booking import throttles
from booking.blueprints.api.common import InvalidInput, bp, parse_body, problem, token_required
from booking.blueprints.api.openapi import PATHS, SCHEMAS, json_response, problem_responses
from booking.extensions import db
from booking.models import OrgKind
from booking.prefectures import find as find_prefecture
from booking.services import accounts, addresses, tokens

PASSWORD_MIN = 10


class CompanyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    prefecture: str = Field(min_length=1, max_length=20)
    address: str = Field(default="", max_length=300)


class AccountIn(BaseModel):
    email: addresses.Address
    password: str = Field(min_length=PASSWORD_MIN, max_length=200)
    name: str = Field(min_length=1, max_length=100)
    company: CompanyIn


class TokenIn(BaseModel):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=200)


@bp.post("/accounts")
@throttles.signup  # shared with the sign-up forms: every attempt counts (409 tells "taken")
def create_account():
    body = parse_body(AccountIn)
    weak = accounts.password_problem(body.password, (body.email, body.name))
    if weak is not None:
        raise InvalidInput({"password": [str(weak)]})
    prefecture = find_prefecture(body.company.prefecture)
    if prefecture is None:
        raise InvalidInput({"company.prefecture": ["unknown prefecture"]})
    if accounts.email_taken(db.session, body.email):
        return problem(409, "Conflict", "This e-mail address is already registered.")
    user = accounts.create_user(db.session, email=body.email, password=body.password,
                                name=body.name)
    company = accounts.create_organisation(
        db.session, owner=user, kind=OrgKind.COMPANY, name=body.company.name,
        prefecture_code=prefecture.code, address=body.company.address,
    )
    db.session.commit()
    return {"id": user.id, "email": user.email, "name": user.name,
            "company": {"id": company.id, "name": company.name,
                        "prefecture": prefecture.name}}, 201


@bp.post("/tokens")
@throttles.password_guess  # one budget with the log-in form, per account and per address
def create_token():
    body = parse_body(TokenIn)
    user = accounts.authenticate(db.session, body.email, body.password)
    if user is None:
        return problem(401, "Unauthorized", "Wrong e-mail address or password.")
    token, expires_at = tokens.issue(db.session, user, current_app.config["API_TOKEN_HOURS"])
    db.session.commit()
    return {"token": token, "expires_at": expires_at.isoformat()}, 201


@bp.delete("/tokens/current")
@token_required
def revoke_token():
    _scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    tokens.revoke(db.session, token.strip())
    db.session.commit()
    return "", 204


SCHEMAS["AccountIn"] = AccountIn.model_json_schema(ref_template="#/components/schemas/{model}")
SCHEMAS.update(SCHEMAS["AccountIn"].pop("$defs", {}))
SCHEMAS["TokenIn"] = TokenIn.model_json_schema()
PATHS["/accounts"] = {"post": {
    "summary": "Create a company user with a new company",
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/AccountIn"}}}},
    "responses": {
        "201": json_response("Created", {"type": "object", "required": ["id", "email"]}),
        **problem_responses(409, 422, 429),
    },
}}
PATHS["/tokens"] = {"post": {
    "summary": "Get a bearer token",
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/TokenIn"}}}},
    "responses": {
        "201": json_response("Created", {
            "type": "object", "required": ["token", "expires_at"],
            "properties": {"token": {"type": "string"}, "expires_at": {"type": "string"}}}),
        **problem_responses(401, 422, 429),
    },
}}
PATHS["/tokens/current"] = {"delete": {
    "summary": "Revoke the token used for this request",
    "security": [{"bearer": []}],
    "responses": {"204": {"description": "Revoked"}, **problem_responses(401)},
}}
