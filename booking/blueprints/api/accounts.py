"""POST /api/v1/accounts and POST /api/v1/tokens."""

from __future__ import annotations

from flask import current_app, request
from pydantic import BaseModel, Field

from booking import throttles, unit_of_work
from booking.blueprints.api.common import InvalidInput, bp, parse_body, problem, token_required
from booking.blueprints.api.openapi import operation
from booking.blueprints.api.schemas import Account, Token
from booking.models import OrgKind
from booking.prefectures import find as find_prefecture
from booking.services import accounts, addresses, tokens
from booking.services.accounts import PASSWORD_MAX, PASSWORD_MIN
from booking.services.errors import DomainError


class CompanyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    prefecture: str = Field(min_length=1, max_length=20)
    address: str = Field(default="", max_length=300)


class AccountIn(BaseModel):
    email: addresses.Address
    password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
    name: str = Field(min_length=1, max_length=100)
    company: CompanyIn


class TokenIn(BaseModel):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=200)


@bp.post("/accounts")
@operation(operation_id="createAccount", tag="accounts",
           summary="Create a company user with a new company", body=AccountIn,
           responses={201: Account}, problems=(409, 422, 429),
           description="Rate limited per client address (429). 409 email_taken when the "
                       "address is registered in any letter case.")
@throttles.signup  # shared with the sign-up forms: every attempt counts (409 tells "taken")
def create_account():
    body = parse_body(AccountIn)
    prefecture = find_prefecture(body.company.prefecture)
    if prefecture is None:
        raise InvalidInput({"company.prefecture": ["unknown prefecture"]})
    try:
        user, company = accounts.sign_up(
            unit_of_work.session(), email=body.email, password=body.password, name=body.name,
            kind=OrgKind.COMPANY, organisation_name=body.company.name,
            prefecture_code=prefecture.code, address=body.company.address)
    except DomainError as error:
        if error.code == "weak_password":  # a field of the body, listed as pydantic's are
            raise InvalidInput({"password": [error.message]}) from None
        raise  # email_taken: 409
    return {"id": user.id, "email": user.email, "name": user.name,
            "company": {"id": company.id, "name": company.name,
                        "prefecture": prefecture.name}}, 201


@bp.post("/tokens")
@operation(operation_id="createToken", tag="accounts", summary="Get a bearer token",
           body=TokenIn, responses={201: Token}, problems=(401, 422, 429),
           description="Failed attempts are limited per account and per client address (429).")
@throttles.password_guess  # one budget with the log-in form, per account and per address
def create_token():
    body = parse_body(TokenIn)
    session = unit_of_work.session()
    user = accounts.authenticate(session, body.email, body.password)
    if user is None:
        return problem(401, "bad_credentials", "Wrong e-mail address or password.")
    token, expires_at = tokens.issue(session, user, current_app.config["API_TOKEN_HOURS"])
    return {"token": token, "expires_at": expires_at.isoformat()}, 201


@bp.delete("/tokens/current")
@operation(operation_id="revokeToken", tag="accounts",
           summary="Revoke the token used for this request", security="bearer",
           responses={204: None}, problems=(401,))
@token_required
def revoke_token():
    _scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    tokens.revoke(unit_of_work.session(), token.strip())
    # No body, so no Content-Type (a bare "" would be sent as text/html).
    revoked = current_app.response_class(status=204)
    del revoked.headers["Content-Type"]
    return revoked

