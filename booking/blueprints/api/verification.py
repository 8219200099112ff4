"""/api/v1/accounts/current/verification: the token's account verifies its e-mail address
with the link mailed at sign-up, as the account pages do (services/accounts.py).

The link (`.../account/verify/<token>`) verifies only the account it was made for: here,
the account of the bearer token that sends its last part, so whoever reads the mailbox
AND holds the account. Verifying again with a link that worked already changes nothing
(200); a link altered, for an address the account no longer has, expired, or made for
another account is refused.
"""

from __future__ import annotations

from flask import g
from pydantic import BaseModel, Field

from booking.blueprints.api.common import bp, parse_body, token_required
from booking.blueprints.api.openapi import operation
from booking.blueprints.api.schemas import EmailVerification
from booking.models import User
from booking.services import accounts
from booking.services.availability import TOKYO
from booking.unit_of_work import session


class VerificationIn(BaseModel):
    token: str = Field(min_length=1, max_length=1000,
                       description="The last part of the link mailed (…/account/verify/<token>)")


def verification_json(user: User) -> dict:
    verified = user.email_verified_at
    return {"email": user.email, "verified": verified is not None,
            "verified_at": verified.astimezone(TOKYO).isoformat() if verified else None}


@bp.get("/accounts/current/verification")
@operation(operation_id="getEmailVerification", tag="accounts",
           summary="Whether the token's account has verified its e-mail address",
           security="bearer", responses={200: EmailVerification}, problems=(401,),
           description="Until it has, the account books for itself only (attendees: 422 "
                       "email_unverified) and is not shown the bookings that invite it.")
@token_required
def get_verification():
    return verification_json(g.api_user)


@bp.post("/accounts/current/verification")
@operation(operation_id="verifyEmail", tag="accounts",
           summary="Verify the account's e-mail address with the mailed link's token",
           security="bearer", body=VerificationIn, responses={200: EmailVerification},
           problems=(400, 401, 403, 422),
           description="400 verify_link_invalid (altered, or for an address the account no "
                       "longer has), 400 verify_link_expired (with `hours`), 403 "
                       "verify_link_other_account. A link that worked already: 200, unchanged.")
@token_required
def verify_email():
    body = parse_body(VerificationIn)
    accounts.verify_email(g.api_user, body.token)
    return verification_json(g.api_user)


@bp.post("/accounts/current/verification/mails")
@operation(operation_id="sendVerificationMail", tag="accounts",
           summary="Mail a new verification link to the account's address",
           security="bearer",
           responses={202: EmailVerification, 200: EmailVerification},
           problems=(401, 429),
           description="202: a mail with a new link is queued. 200: the address is verified "
                       "already, nothing is sent. 429 verify_mail_limit (with `limit`) over "
                       "the links one address gets in 24 hours.")
@token_required
def send_verification_mail():
    sent = accounts.send_verification(session(), g.api_user)
    return verification_json(g.api_user), 202 if sent is not None else 200
