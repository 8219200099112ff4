"""E-mail verification through the JSON API (/api/v1/accounts/current/verification): the
account signed up by the API reads the link from the mail sent through the real SMTP path
(tests/mailbox.py) and verifies with its token; wrong, expired, other accounts' and used
links; a new link mailed, within the day's limit."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking import clock
from booking.extensions import db
from booking.models import OutboxMessage, User
from booking.services import accounts, mail
from tests.worlds import future_day

PASSWORD = "long-enough-pass-7"
PATH = "/api/v1/accounts/current/verification"


@pytest.fixture
def app_config(smtp_port):
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}", "EMAIL_VERIFY_MAILS_PER_DAY": 3}


def _sign_up(client, address: str) -> dict:
    made = client.post("/api/v1/accounts", json={
        "email": address, "password": PASSWORD, "name": "確認 太郎",
        "company": {"name": f"{address}商事", "prefecture": "東京都"}})
    assert made.status_code == 201, made.json
    token = client.post("/api/v1/tokens", json={"email": address, "password": PASSWORD})
    return {"Authorization": f"Bearer {token.json['token']}"}


def _tokens_mailed(smtp_server, address: str) -> list[str]:
    """The verification tokens of the links mailed to `address`, in order (the outbox is
    sent first, through the SMTP server)."""
    mail.run_once(db.session)
    found = []
    for message in smtp_server.parsed():
        if message["To"] == address:
            text = message.get_body(("plain",)).get_content()
            found += re.findall(r"/account/verify/(\S+)", text)
    return found


def _verified_at(address: str):
    db.session.expire_all()
    return db.session.scalar(sa.select(User.email_verified_at).where(User.email == address))


def _verify_mails(address: str) -> int:
    return db.session.scalar(sa.select(sa.func.count(OutboxMessage.id)).where(
        OutboxMessage.kind == accounts.VERIFY_MAIL_KIND, OutboxMessage.recipient == address))


def test_verify_with_the_mailed_token_and_again(client, make, smtp_server):
    headers = _sign_up(client, "new@example.jp")
    before = client.get(PATH, headers=headers)
    assert before.status_code == 200
    assert before.json == {"email": "new@example.jp", "verified": False, "verified_at": None}
    # Unverified: it books for itself, but may not invite anybody.
    unit = make.unit(capacity=5)
    booking = {"unit_id": unit.id, "date": future_day().isoformat(),
               "attendees": ["colleague@example.jp"]}
    refused = client.post("/api/v1/bookings", json=booking, headers=headers)
    assert refused.status_code == 422 and refused.json["code"] == "email_unverified"

    [token] = _tokens_mailed(smtp_server, "new@example.jp")
    done = client.post(PATH, json={"token": token}, headers=headers)
    assert done.status_code == 200, done.json
    assert done.json["verified"] is True and done.json["verified_at"].endswith("+09:00")
    at = _verified_at("new@example.jp")
    assert at is not None
    # The link used once more: nothing changes.
    again = client.post(PATH, json={"token": token}, headers=headers)
    assert again.status_code == 200 and again.json == done.json
    assert _verified_at("new@example.jp") == at
    assert client.post("/api/v1/bookings", json=booking, headers=headers).status_code == 201


def test_wrong_expired_and_other_accounts_tokens_verify_nothing(client, smtp_server):
    mine = _sign_up(client, "mine@example.jp")
    theirs = _sign_up(client, "theirs@example.jp")
    [my_token] = _tokens_mailed(smtp_server, "mine@example.jp")
    [their_token] = _tokens_mailed(smtp_server, "theirs@example.jp")
    cases = [
        ({"token": my_token[:-2] + "xx"}, 400, "verify_link_invalid"),
        ({"token": "not-a-token"}, 400, "verify_link_invalid"),
        ({"token": their_token}, 403, "verify_link_other_account"),
        ({"token": ""}, 422, "invalid_input"),
        ({}, 422, "invalid_input"),
    ]
    for body, status, code in cases:
        refused = client.post(PATH, json=body, headers=mine)
        assert refused.status_code == status, (body, refused.json)
        assert refused.json["code"] == code and refused.mimetype == "application/problem+json"
    with time_machine.travel(clock.now() + timedelta(hours=accounts.verify_hours(), minutes=1)):
        late = client.post(PATH, json={"token": my_token}, headers=mine)
        assert late.status_code == 400 and late.json["code"] == "verify_link_expired"
        assert late.json["hours"] == 72
    assert _verified_at("mine@example.jp") is None and _verified_at("theirs@example.jp") is None
    # A link used by its account no longer works once the address has changed.
    assert client.post(PATH, json={"token": their_token}, headers=theirs).status_code == 200
    user = db.session.scalar(sa.select(User).where(User.email == "theirs@example.jp"))
    user.email = "moved@example.jp"
    db.session.commit()
    used = client.post(PATH, json={"token": their_token}, headers=theirs)
    assert used.status_code == 400 and used.json["code"] == "verify_link_invalid"
    assert _verified_at("moved@example.jp") is None
    assert client.post(PATH, json={"token": my_token}, headers=theirs).status_code == 403


def test_a_new_link_is_mailed_within_the_days_limit(client, smtp_server):
    headers = _sign_up(client, "again@example.jp")  # the sign-up's mail: 1 of 3
    for _ in range(2):
        sent = client.post(f"{PATH}/mails", headers=headers)
        assert sent.status_code == 202 and sent.json["verified"] is False
    over = client.post(f"{PATH}/mails", headers=headers)
    assert over.status_code == 429 and over.json["code"] == "verify_mail_limit"
    assert over.json["limit"] == 3
    assert _verify_mails("again@example.jp") == 3  # the refusal queued nothing
    links = _tokens_mailed(smtp_server, "again@example.jp")
    assert len(links) == 3  # (signed within one second, the links may be the same)
    # The newest link works; asked for another once verified, nothing is sent.
    assert client.post(PATH, json={"token": links[-1]}, headers=headers).status_code == 200
    verified = client.post(f"{PATH}/mails", headers=headers)
    assert verified.status_code == 200 and verified.json["verified"] is True
    assert _verify_mails("again@example.jp") == 3
    assert client.post(f"{PATH}/mails").status_code == 401
