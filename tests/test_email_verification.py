"""E-mail verification (issue 17, finding 4).

The defect: anyone could register someone else's address and then see every booking
that invited it (place, times, the private note, the other attendees) on the booking
pages, in /account/data.json (with the subjects of the mails sent to it), as .ics and
through the API. No address was ever verified.

Now: sign-up mails a signed link that expires (EMAIL_VERIFY_HOURS); it verifies the
address only for the account it was made for, opened while logged in to it (a link
scanner that follows it, or the address's real owner who never signed up, verifies
nothing). Until then an account books for itself only (no attendees), and the bookings
that invited its address are not shown to it; deleting the unverified account leaves
those invitations alone. Changing the address makes it unverified again.
"""

from __future__ import annotations

import email
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking import clock
from booking.extensions import db
from booking.models import Booking, BookingAttendee, OutboxMessage, User
from booking.services import accounts, tokens
from tests import worlds
from tests.edge import reservations as r
from tests.worlds import future_day

VICTIM = "victim@example.jp"
SIGNUP = {"name": "なりすまし", "email": VICTIM, "password": "long-enough-pass-7",
          "company_name": "なりすまし商事", "prefecture": "13", "address": ""}
API_SIGNUP = {"email": VICTIM, "password": "long-enough-pass-7", "name": "なりすまし",
              "company": {"name": "なりすまし商事", "prefecture": "東京都"}}


def _user(address: str) -> User:
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.email == address))


def _verify_mails(address: str) -> list[OutboxMessage]:
    db.session.expire_all()
    return db.session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.recipient == address, OutboxMessage.kind == accounts.VERIFY_MAIL_KIND)
        .order_by(OutboxMessage.id)).all()


def _link(row: OutboxMessage) -> str:
    """The verification link of a queued mail, as its reader sees it (the text part)."""
    message = email.message_from_bytes(row.message)
    text = next(part.get_payload(decode=True).decode() for part in message.walk()
                if part.get_content_type() == "text/plain")
    return re.search(r"http://localhost(/account/verify/\S+)", text).group(1)


def _rows(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.fixture
def invited(make):
    """A company's booking that invites VICTIM, with a private note."""
    w = worlds.world(make)
    [booking] = r.book(db.session, w["desks"], w["booker"], [r.day_period(w["desks"], future_day())],
                       2, attendees=[VICTIM, "colleague@example.jp"], note="役員会の準備")
    return {**w, "reference": booking.reference}


def _api_token(client, address: str, password: str) -> dict:
    answer = client.post("/api/v1/tokens", json={"email": address, "password": password})
    assert answer.status_code == 201, answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['token']}"}


def _nothing_shown(client, reference: str, headers: dict) -> None:
    data = client.get("/account/data.json").get_json()
    assert data["bookings_as_attendee"] == []
    assert all(reference not in str(m) and "テレワーク静岡" not in m["subject"]
               for m in data["mail"]), data["mail"]
    assert client.get(f"/bookings/{reference}").status_code == 404
    assert client.get(f"/bookings/{reference}.ics").status_code == 404
    assert client.get(f"/api/v1/bookings/{reference}", headers=headers).status_code == 404


# --------------------------------------------------------------------------- the defect


def test_someone_elses_address_shows_nothing_until_its_owner_verifies_it(client, invited):
    reference = invited["reference"]
    assert client.post("/account/signup", data=SIGNUP).status_code == 302  # logged in
    headers = _api_token(client, VICTIM, SIGNUP["password"])
    _nothing_shown(client, reference, headers)
    assert _user(VICTIM).email_verified_at is None

    # Whoever reads the mailbox AND holds the account verifies it: then they are shown.
    [mail] = _verify_mails(VICTIM)
    page = client.get(_link(mail))
    assert page.status_code == 200, page.get_data(as_text=True)
    assert _user(VICTIM).email_verified_at is not None
    data = client.get("/account/data.json").get_json()
    assert [b["reference"] for b in data["bookings_as_attendee"]] == [reference]
    assert "役員会の準備" in client.get(f"/bookings/{reference}").get_data(as_text=True)
    assert client.get(f"/bookings/{reference}.ics").status_code == 200
    answer = client.get(f"/api/v1/bookings/{reference}", headers=headers)
    assert answer.status_code == 200 and VICTIM in answer.get_json()["attendees"]


# --------------------------------------------------------------------------- the mail


def test_sign_up_by_form_and_by_api_mails_a_link_without_the_sign_up_text(client):
    assert client.post("/account/signup", data={**SIGNUP, "name": "http://evil.example/"}
                       ).status_code == 302
    answer = client.post("/api/v1/accounts", json={**API_SIGNUP, "email": "api@example.jp"})
    assert answer.status_code == 201
    for address in (VICTIM, "api@example.jp"):
        [mail] = _verify_mails(address)
        assert mail.booking_id is None and mail.sent_at is None
        assert _link(mail).startswith("/account/verify/")
        assert _user(address).email_verified_at is None
    # What the sign-up typed (name, company) is not mailed to an address nobody verified.
    message = email.message_from_bytes(_verify_mails(VICTIM)[0].message)
    text = "".join(part.get_payload(decode=True).decode() for part in message.walk()
                   if not part.is_multipart())
    assert "evil.example" not in text and "なりすまし" not in text


def test_the_mail_goes_out_through_the_outbox_worker(client, app, tmp_path):
    from booking.services import mail

    client.post("/account/signup", data=SIGNUP)
    counts = mail.run_once(db.session)
    assert counts["sent"] == 1, counts
    [sent] = list((tmp_path / "mail").glob("*.eml"))
    message = email.message_from_bytes(sent.read_bytes())
    assert message["To"] == VICTIM
    text = "".join(part.get_payload(decode=True).decode() for part in message.walk()
                   if not part.is_multipart())
    assert "http://localhost/account/verify/" in text


# --------------------------------------------------------------------------- the link


def test_the_link_needs_the_account_logged_in(app, client, make):
    client.post("/account/signup", data=SIGNUP)
    link = _link(_verify_mails(VICTIM)[0])
    other = app.test_client()
    # Not logged in (a link scanner, or the real owner of the address): the log-in page.
    answer = other.get(link)
    assert answer.status_code == 302 and "/account/login" in answer.headers["Location"]
    # Logged in to another account: refused.
    stranger = make.user("stranger@example.jp")
    other.post("/account/login", data={"email": stranger.email, "password": make.PASSWORD})
    answer = other.get(link)
    assert answer.status_code == 403
    assert "別のアカウント" in answer.get_data(as_text=True)
    assert _user(VICTIM).email_verified_at is None
    assert _user("stranger@example.jp").email_verified_at is not None  # the factory's


def test_an_expired_or_altered_link_verifies_nothing_and_offers_a_new_one(app, client):
    client.post("/account/signup", data=SIGNUP)
    link = _link(_verify_mails(VICTIM)[0])
    answer = client.get(link[:-3] + ("xyz" if not link.endswith("xyz") else "abc"))
    assert answer.status_code == 400
    assert 'action="/account/verify/resend"' in answer.get_data(as_text=True)
    hours = app.config["EMAIL_VERIFY_HOURS"]
    with time_machine.travel(clock.now() + timedelta(hours=hours, minutes=1)):
        answer = client.get(link)
        assert answer.status_code == 400
        assert "有効期限" in answer.get_data(as_text=True)
    assert _user(VICTIM).email_verified_at is None
    with time_machine.travel(clock.now() + timedelta(hours=hours - 1)):
        assert client.get(link).status_code == 200
    assert _user(VICTIM).email_verified_at is not None


def test_a_link_for_the_old_address_does_not_verify_a_new_one(app, client):
    client.post("/account/signup", data=SIGNUP)
    link = _link(_verify_mails(VICTIM)[0])
    user = _user(VICTIM)
    user.email = "moved@example.jp"
    db.session.commit()
    assert client.get(link).status_code == 400
    assert _user("moved@example.jp").email_verified_at is None


def test_changing_the_address_makes_it_unverified(make):
    user = make.user("first@example.jp")
    assert user.email_verified_at is not None  # test users count as verified
    user.email = "first@example.jp"  # the same address: stays verified
    assert user.email_verified_at is not None
    user.email = "second@example.jp"
    assert user.email_verified_at is None
    db.session.commit()
    assert _user("second@example.jp").email_verified_at is None


# --------------------------------------------------------------------------- resend


def test_the_account_page_offers_a_resend_while_unverified_and_limits_it(app, client, make):
    client.post("/account/signup", data=SIGNUP)
    page = client.get("/account/").get_data(as_text=True)
    assert "未確認" in page and 'action="/account/verify/resend"' in page
    limit = app.config["EMAIL_VERIFY_MAILS_PER_DAY"]
    for n in range(2, limit + 1):  # the sign-up's mail was the first
        answer = client.post("/account/verify/resend")
        assert answer.status_code == 302
        assert len(_verify_mails(VICTIM)) == n
    answer = client.post("/account/verify/resend", follow_redirects=True)
    assert f"1日{limit}通" in answer.get_data(as_text=True)
    assert len(_verify_mails(VICTIM)) == limit
    # Every link sent works (the newest too).
    assert client.get(_link(_verify_mails(VICTIM)[-1])).status_code == 200
    page = client.get("/account/").get_data(as_text=True)
    assert "未確認" not in page and 'action="/account/verify/resend"' not in page
    # Verified: nothing more is sent.
    client.post("/account/verify/resend")
    assert len(_verify_mails(VICTIM)) == limit


def test_resend_counts_a_day_back(app, client):
    client.post("/account/signup", data=SIGNUP)
    limit = app.config["EMAIL_VERIFY_MAILS_PER_DAY"]
    for _ in range(limit - 1):
        client.post("/account/verify/resend")
    with time_machine.travel(clock.now() + timedelta(hours=24, minutes=1)):
        client.post("/account/verify/resend")
        assert len(_verify_mails(VICTIM)) == limit + 1


# --------------------------------------------------------------------------- booking


def test_unverified_account_books_for_itself_but_cannot_invite(client, make):
    w = worlds.world(make, hours=(range(7), 540, 1080))
    client.post("/account/signup", data=SIGNUP)
    url = f"/bookings/new?unit_id={w['desks'].id}"
    page = client.get(url).get_data(as_text=True)
    submission = re.search(r'name="submission" type="hidden" value="([^"]+)"', page).group(1)
    outbox = _rows(OutboxMessage)
    form = {"first_date": future_day().isoformat(), "seats": "2", "submission": submission,
            "attendees": "someone@example.jp\nother@example.jp"}
    answer = client.post(url, data=form)
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert 'id="attendees-error"' in html and "メールアドレスの確認" in html
    assert _rows(Booking) == 0 and _rows(OutboxMessage) == outbox
    # Its own address only, or nobody: booked.
    answer = client.post(url, data={**form, "attendees": VICTIM.upper()})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert _rows(Booking) == 1 and _rows(BookingAttendee) == 1

    headers = _api_token(client, VICTIM, SIGNUP["password"])
    body = {"unit_id": w["desks"].id, "date": future_day(11).isoformat(), "seats": 1,
            "attendees": ["someone@example.jp"]}
    answer = client.post("/api/v1/bookings", json=body, headers=headers)
    assert answer.status_code == 422
    assert answer.get_json()["code"] == "email_unverified"
    assert answer.mimetype == "application/problem+json"
    assert _rows(Booking) == 1
    answer = client.post("/api/v1/bookings", json={**body, "attendees": []}, headers=headers)
    assert answer.status_code == 201, answer.get_json()


def test_verified_accounts_invite_as_before(make):
    w = worlds.world(make)
    [booking] = r.book(db.session, w["desks"], w["booker"],
                       [r.day_period(w["desks"], future_day())], 1, attendees=["a@example.jp"])
    assert [a.email for a in booking.attendees] == ["a@example.jp"]


# --------------------------------------------------------------------------- deleting


def test_deleting_an_unverified_account_leaves_the_invitations_of_its_address_alone(
        client, invited):
    client.post("/account/signup", data=SIGNUP)
    queued = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.recipient == VICTIM, OutboxMessage.booking_id.is_not(None)))
    assert queued >= 1  # the invitation (and its reminder)
    answer = client.post("/account/delete", data={"password": SIGNUP["password"]})
    assert answer.status_code == 302
    assert _user(VICTIM) is None
    attendees = db.session.scalars(sa.select(BookingAttendee.email)).all()
    assert VICTIM in attendees
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.recipient == VICTIM, OutboxMessage.booking_id.is_not(None))) == queued
    # Its own mail (the verification) goes with it.
    assert _verify_mails(VICTIM) == []


def test_deleting_a_verified_account_still_takes_the_person_out(client, invited, make):
    make.user(VICTIM, password="long-enough-pass-7")
    client.post("/account/login", data={"email": VICTIM, "password": "long-enough-pass-7"})
    assert client.post("/account/delete", data={"password": "long-enough-pass-7"}
                       ).status_code == 302
    assert VICTIM not in db.session.scalars(sa.select(BookingAttendee.email)).all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.recipient == VICTIM)) == 0


def test_signing_up_again_after_deleting_does_not_reset_the_links_of_the_day(app, client):
    from booking.services import mail

    app.config["EMAIL_VERIFY_MAILS_PER_DAY"] = 2
    for _ in range(3):
        assert client.post("/account/signup", data=SIGNUP).status_code == 302
        mail.run_once(db.session)  # sent
        assert client.post("/account/delete", data={"password": SIGNUP["password"]}
                           ).status_code == 302
    # Three accounts made, two links sent: the third account got none (its page offers it
    # once the day is over).
    assert len(_verify_mails(VICTIM)) == 2


# --------------------------------------------------------------------------- who counts as verified


def test_demo_accounts_and_test_users_count_as_verified(app, make):
    from booking.seeds import demo

    demo.load(db.session)
    db.session.commit()
    for address, _name, _org in demo.USERS:
        assert _user(address).email_verified_at is not None, address
    assert make.user().email_verified_at is not None
    assert _rows(OutboxMessage) == 0  # nobody was mailed a link


def test_a_token_user_sees_the_same(client, invited, make):
    """The API with a token of an unverified user: the same rule as the pages."""
    user = accounts.create_user(db.session, email=VICTIM, password="long-enough-pass-7",
                                name="x")
    db.session.commit()
    secret, _ = tokens.issue(db.session, user, 1)
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    reference = invited["reference"]
    assert client.get(f"/api/v1/bookings/{reference}", headers=headers).status_code == 404
    assert client.get(f"/bookings/{reference}.ics", headers=headers).status_code == 404
    accounts.mark_verified(_user(VICTIM))
    db.session.commit()
    assert client.get(f"/api/v1/bookings/{reference}", headers=headers).status_code == 200
    assert client.get(f"/bookings/{reference}.ics", headers=headers).status_code == 200
