"""Mail that cannot be poisoned (issue 17, findings 1 and 5): one address rule on every way
in, an outbox worker that survives any single message, parked failures shown to the site
admin, and a cancellation reason that reaches the mailbox as plain text without links.

Against a real SMTP server (aiosmtpd) on loopback, like tests/test_mail.py."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking import clock
from booking.extensions import db
from booking.models import AuditEntry, Booking, BookingAttendee, OutboxMessage, User
from booking.services import addresses, mail, tokens
from booking.services.errors import DomainError
from tests.edge import reservations as r
from tests.worlds import future_day

NON_ASCII_LOCAL = "テスト@例え.jp"  # the probe's address
IDN = "Hanako@例え.jp"
IDN_ASCII = "hanako@xn--r8jz45g.jp"


@pytest.fixture
def app_config(smtp_port):
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}", "REMINDER_HOURS_BEFORE": 24,
            "MAIL_MAX_ATTEMPTS": 3}


@pytest.fixture
def setup(make):
    company = make.company(name="デモ商事")
    user = make.user("booker@example.jp", organisation=company, name="予約 太郎")
    unit = make.unit(make.space(name="テレワーク静岡"), capacity=50)
    return unit, user


@pytest.fixture
def api(setup):
    unit, user = setup
    token, _ = tokens.issue(db.session, user, 1)
    db.session.commit()
    return {"unit": unit, "user": user, "headers": {"Authorization": f"Bearer {token}"}}


def _book(unit, user, days=10, **kw) -> Booking:
    seats = max(1, len(kw.get("attendees", ())))  # one seat per attendee at least
    return r.book(db.session, unit, user, [r.day_period(unit, future_day(days))], seats, **kw)[0]


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _outbox(**where) -> list[OutboxMessage]:
    db.session.expire_all()
    query = sa.select(OutboxMessage).order_by(OutboxMessage.id)
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    return list(db.session.scalars(query))


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(("raw", "expected"), [
    ("  Taro@Example.JP ", "taro@example.jp"),
    (IDN, IDN_ASCII),
    ("user@ＥＸＡＭＰＬＥ.jp", "user@example.jp"),  # noqa: RUF001 - full-width domain: IDNA maps it
])
def test_the_rule_gives_one_ascii_form(raw, expected):
    assert addresses.normalise(raw) == expected
    assert addresses.normalise(expected) == expected  # stable


@pytest.mark.parametrize(("raw", "reason"), [
    (NON_ASCII_LOCAL, "not_ascii"),
    ("ｔａｒｏ@example.jp", "not_ascii"),  # noqa: RUF001 - a full-width local part is refused
    ("not-an-email", "invalid"),
    ("a@b", "invalid"),
    ("Taro <taro@example.jp>", "invalid"),
    ('"a b"@example.jp', "invalid"),
    ("a@[127.0.0.1]", "invalid"),
    ("a\r\nBcc: x@example.jp@example.jp", "invalid"),
    ("a\x00@example.jp", "invalid"),
    ("x@deleted.invalid", "invalid"),
    ("a" * 250 + "@example.jp", "invalid"),
    ("", "invalid"),
])
def test_the_rule_refuses_with_a_domain_error(raw, reason):
    with pytest.raises(DomainError) as caught:
        addresses.normalise(raw)
    assert caught.value.code == "bad_email" and caught.value.status == 422
    assert caught.value.reason == reason
    assert ("@より前" in caught.value.message) == (reason == "not_ascii")
    assert "\n" not in caught.value.message and "\x00" not in caught.value.message


# --------------------------------------------------------------------------- every way in


def test_api_booking_with_a_non_ascii_local_part_is_a_422_and_books_nothing(client, api):
    response = client.post("/api/v1/bookings", headers=api["headers"], json={
        "unit_id": api["unit"].id, "date": future_day().isoformat(), "seats": 2,
        "attendees": ["ok@example.jp", NON_ASCII_LOCAL]})
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert list(response.json["errors"]) == ["attendees.1"]
    assert "@" in response.json["errors"]["attendees.1"][0]
    assert _count(Booking) == 0 and _count(OutboxMessage) == 0


def test_api_booking_stores_an_idn_domain_in_its_ascii_form(client, api, smtp_server):
    response = client.post("/api/v1/bookings", headers=api["headers"], json={
        "unit_id": api["unit"].id, "date": future_day().isoformat(), "attendees": [IDN]})
    assert response.status_code == 201, response.json
    assert response.json["attendees"] == [IDN_ASCII]
    assert db.session.scalar(sa.select(BookingAttendee.email)) == IDN_ASCII
    assert mail.run_once(db.session)["sent"] == 2
    assert smtp_server.recipients() == ["booker@example.jp", IDN_ASCII]


def test_html_booking_form_shows_the_address_problem_beside_the_field(client, setup, login):
    unit, user = setup
    login(user)
    response = client.post(f"/bookings/new?unit_id={unit.id}", data={
        "first_date": future_day().isoformat(), "seats": "2",
        "attendees": f"ok@example.jp\n{NON_ASCII_LOCAL}"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    start = html.index('id="attendees-error"')
    assert "@より前" in html[start:start + 400] and NON_ASCII_LOCAL in html[start:start + 400]
    assert _count(Booking) == 0 and _count(OutboxMessage) == 0


def test_service_refuses_what_a_caller_passes_around_the_forms(setup):
    unit, user = setup
    with pytest.raises(DomainError) as caught:
        _book(unit, user, attendees=[NON_ASCII_LOCAL])
    assert caught.value.code == "bad_email" and caught.value.reason == "not_ascii"
    assert list(r.clean_attendees([IDN, IDN_ASCII, "B@Example.jp"])) == [
        IDN_ASCII, "b@example.jp"]


SIGNUP = {"name": "高橋 真理", "password": "long-enough-pass-2019", "company_name": "高橋製作所",
          "prefecture": "13", "address": "東京都大田区"}


def test_html_sign_up_refuses_a_non_ascii_local_part(client):
    response = client.post("/account/signup", data={**SIGNUP, "email": NON_ASCII_LOCAL})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    start = html.index('id="email-error"')
    assert "@より前" in html[start:start + 400]
    assert _count(User) == 0


def test_html_sign_up_stores_the_ascii_form_and_logs_in_with_either(client, app):
    response = client.post("/account/signup", data={**SIGNUP, "email": IDN})
    assert response.status_code == 302
    assert db.session.scalar(sa.select(User.email)) == IDN_ASCII
    client.post("/account/logout", data={})
    again = client.post("/account/signup", data={**SIGNUP, "email": IDN_ASCII.upper()})
    assert again.status_code == 409 and "既に登録されています" in again.get_data(as_text=True)
    other = app.test_client()
    assert other.post("/account/login", data={"email": IDN, "password": SIGNUP["password"]}
                      ).status_code == 302


def test_api_sign_up_refuses_a_non_ascii_local_part_and_normalises_idn(client):
    body = {"password": "long-enough-pass-2019", "name": "高橋 真理",
            "company": {"name": "高橋製作所", "prefecture": "東京都"}}
    refused = client.post("/api/v1/accounts", json={**body, "email": NON_ASCII_LOCAL})
    assert refused.status_code == 422, refused.json
    assert list(refused.json["errors"]) == ["email"]
    assert _count(User) == 0
    created = client.post("/api/v1/accounts", json={**body, "email": IDN})
    assert created.status_code == 201, created.json
    assert created.json["email"] == IDN_ASCII
    token = client.post("/api/v1/tokens", json={"email": IDN, "password": body["password"]})
    assert token.status_code == 201


def test_create_admin_refuses_a_bad_address_cleanly(runner):
    result = runner.invoke(args=["create-admin", "--email", NON_ASCII_LOCAL,
                                 "--password", "long-enough-pass-2019"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "@" in result.output
    assert _count(User) == 0


# --------------------------------------------------------------------------- the worker


def test_a_bad_address_already_in_the_outbox_does_not_stop_the_worker(smtp_server, setup):
    """Rows written before the rule (or by hand) with an address SMTP cannot take: the
    worker parks them at once with the reason, and sends every other message."""
    unit, user = setup
    _book(unit, user, attendees=["a@example.jp", "b@example.jp", "c@example.jp"])
    _book(unit, user, days=11, attendees=["legacy@example.jp", "d@example.jp"])
    db.session.execute(sa.update(OutboxMessage).where(
        OutboxMessage.recipient == "legacy@example.jp").values(recipient=NON_ASCII_LOCAL))
    db.session.commit()
    counts = mail.run_once(db.session)  # used to die here on UnicodeEncodeError
    assert counts["sent"] == 6 and counts["failed"] == 1
    assert NON_ASCII_LOCAL not in smtp_server.recipients() and len(smtp_server.messages) == 6
    [bad] = _outbox(kind="confirmation", recipient=NON_ASCII_LOCAL)
    assert bad.sent_at is None and bad.failed_at is not None
    assert "@" in bad.last_error and "address" in bad.last_error
    assert mail.run_once(db.session)["sent"] == 0
    with time_machine.travel(clock.now() + timedelta(days=2)):  # never claimed again
        assert mail.run_once(db.session) == {"sent": 0, "failed": 0, "dropped": 0}


def test_an_idn_address_already_in_the_outbox_is_sent_to_its_ascii_form(smtp_server, setup):
    unit, user = setup
    _book(unit, user, attendees=["later@example.jp"])
    db.session.execute(sa.update(OutboxMessage).where(
        OutboxMessage.recipient == "later@example.jp").values(recipient="later@例え.jp"))
    db.session.commit()
    assert mail.run_once(db.session)["sent"] == 2
    assert smtp_server.recipients() == ["booker@example.jp", "later@xn--r8jz45g.jp"]


def test_a_message_that_fails_to_build_is_retried_then_parked_and_holds_nothing_back(
        smtp_server, setup):
    """Any exception while building one message (here: a reminder of a booking whose
    locale is unknown to Babel) fails that message only."""
    unit, user = setup
    broken = _book(unit, user, days=3)
    good = _book(unit, user, days=3)
    assert mail.run_once(db.session)["sent"] == 2  # the confirmations
    broken.locale = "zz"
    db.session.commit()
    due = broken.starts_at - timedelta(hours=23)
    with time_machine.travel(due):
        counts = mail.run_once(db.session)  # used to die on UnknownLocaleError
    assert counts == {"sent": 1, "failed": 1, "dropped": 0}
    [row] = _outbox(kind="reminder", booking_id=broken.id)
    assert row.failed_at is None and row.attempts == 1 and "UnknownLocaleError" in row.last_error
    assert row.next_attempt_at >= due + mail.backoff(1) - timedelta(seconds=1)
    with time_machine.travel(due + timedelta(seconds=30)):
        assert mail.run_once(db.session)["failed"] == 0  # backing off
    moment = due
    for attempt in (2, 3):
        moment += mail.backoff(attempt - 1) + timedelta(seconds=1)
        with time_machine.travel(moment):
            assert mail.run_once(db.session)["failed"] == 1
        [row] = _outbox(kind="reminder", booking_id=broken.id)
        assert row.attempts == attempt
    assert row.failed_at is not None and "UnknownLocaleError" in row.last_error  # parked
    with time_machine.travel(moment + timedelta(days=1)):
        assert mail.run_once(db.session)["failed"] == 0
    reminders = [m for m in smtp_server.parsed() if "【明日のご予約】" in m["Subject"]]
    assert len(reminders) == 1 and good.reference in reminders[0].get_body(
        ("plain",)).get_content()


def test_a_refused_recipient_is_retried_with_backoff_then_parked(smtp_server, setup):
    unit, user = setup
    smtp_server.refuse = {"gone@example.jp"}
    _book(unit, user, attendees=["gone@example.jp", "here@example.jp"])
    moment = clock.now()
    for attempt in (1, 2, 3):
        with time_machine.travel(moment):
            counts = mail.run_once(db.session)
        assert counts["failed"] == 1
        [row] = _outbox(kind="confirmation", recipient="gone@example.jp")
        assert row.attempts == attempt and "550" in row.last_error
        moment += mail.backoff(attempt) + timedelta(seconds=1)
    assert row.failed_at is not None
    assert smtp_server.recipients() == ["booker@example.jp", "here@example.jp"]
    with time_machine.travel(moment + timedelta(days=1)):
        assert mail.run_once(db.session)["failed"] == 0


def test_a_message_in_flight_holds_no_other_message_back(app, smtp_server, setup):
    """Worker A is stuck in the middle of one send (or dead: its lease runs): worker B
    sends every other due message now, not after A's lease."""
    unit, user = setup
    _book(unit, user, attendees=[f"p{n}@example.jp" for n in range(5)])
    db.session.commit()
    smtp_server.hold = True
    results: list[dict] = []

    def worker_a():
        with app.app_context():
            results.append(mail.run_once(db.session))
            db.session.remove()

    thread = threading.Thread(target=worker_a)
    thread.start()
    try:
        assert smtp_server.holding.wait(timeout=30)
        counts = mail.run_once(db.session)  # worker B, while A waits in DATA
        assert counts["sent"] == 5
        assert len(smtp_server.messages) == 5
    finally:
        smtp_server.release.set()
        thread.join(timeout=60)
    assert results == [{"sent": 1, "failed": 0, "dropped": 0}]
    assert len(smtp_server.messages) == 6 and len(set(smtp_server.recipients())) == 6
    assert all(row.sent_at is not None for row in _outbox(kind="confirmation"))


def test_a_claim_whose_worker_died_is_parked_after_the_allowed_attempts(smtp_server, setup):
    """A worker that dies while sending (killed, out of memory) never records a failure;
    each claim counts as an attempt, so such a message is parked too in the end."""
    unit, user = setup
    _book(unit, user)
    [row] = _outbox(kind="confirmation")
    moment = clock.now()
    for _ in range(3):  # three workers claim it and die
        with time_machine.travel(moment):
            assert mail.claim_next(db.session) == row.id
        moment += mail.LEASE + timedelta(seconds=1)
    with time_machine.travel(moment):
        counts = mail.run_once(db.session)
    assert counts == {"sent": 0, "failed": 1, "dropped": 0}
    [row] = _outbox(kind="confirmation")
    assert row.failed_at is not None and "stopped" in row.last_error
    assert smtp_server.messages == []


# --------------------------------------------------------------------------- the site admin


def _park_one(smtp_server, setup) -> OutboxMessage:
    unit, user = setup
    _book(unit, user, attendees=["legacy@example.jp"])
    db.session.execute(sa.update(OutboxMessage).where(
        OutboxMessage.recipient == "legacy@example.jp").values(recipient=NON_ASCII_LOCAL))
    db.session.commit()
    mail.run_once(db.session)
    [row] = _outbox(recipient=NON_ASCII_LOCAL, kind="confirmation")
    assert row.failed_at is not None
    return row


def test_outbox_status_prints_counts_by_state_and_the_parked_reasons(runner, smtp_server, setup):
    row = _park_one(smtp_server, setup)
    result = runner.invoke(args=["outbox", "status"])
    assert result.exit_code == 0, result.output
    assert "sent: 1" in result.output and "parked: 1" in result.output
    assert "queued: 2" in result.output  # the reminders, due later
    line = next(x for x in result.output.splitlines() if f"#{row.id} " in x)
    assert NON_ASCII_LOCAL in line and "address" in line


def test_site_admin_sees_parked_mail_and_retries_it_with_csrf(
        app, client, make, login, smtp_server, setup):
    row = _park_one(smtp_server, setup)
    admin = make.user("admin@example.jp", is_admin=True)
    login(admin)
    app.config["WTF_CSRF_ENABLED"] = True
    page = client.get("/admin/outbox")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert NON_ASCII_LOCAL in html and f'value="{row.id}"' in html
    assert "address" in html  # the reason
    # Without the token: refused, nothing changes.
    refused = client.post("/admin/outbox/retry", data={"message_id": row.id})
    assert refused.status_code == 400
    assert _outbox(id=row.id)[0].failed_at is not None
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    # Fix the address by hand (what an admin would do), then retry.
    db.session.execute(sa.update(OutboxMessage).where(OutboxMessage.id == row.id)
                       .values(recipient="fixed@example.jp"))
    db.session.commit()
    done = client.post("/admin/outbox/retry", data={"message_id": row.id, "csrf_token": token})
    assert done.status_code == 302
    [again] = _outbox(id=row.id)
    assert again.failed_at is None and again.attempts == 0 and again.next_attempt_at <= clock.now()
    assert db.session.scalar(sa.select(AuditEntry.action).where(
        AuditEntry.action == "outbox.retry")) == "outbox.retry"
    assert mail.run_once(db.session)["sent"] == 1
    assert "fixed@example.jp" in smtp_server.recipients()
    # A message that is not parked cannot be "retried".
    again_done = client.post("/admin/outbox/retry",
                             data={"message_id": row.id, "csrf_token": token})
    assert again_done.status_code == 404


def test_the_outbox_page_is_for_site_admins_only(client, make, login, setup):
    _, user = setup
    login(user)
    assert client.get("/admin/outbox").status_code == 403
    assert client.post("/admin/outbox/retry", data={"message_id": 1}).status_code == 403


# --------------------------------------------------------------------------- the reason


PHISHING = ("お詫び: 返金は https://evil.example.com/refund?id=1 から。"
            "または www.evil-pay.jp/login、bit.ly/abc、evil.co.jp、mailto:x@evil.jp、"
            "support@evil.jp へ <b>至急</b> <a href=\"https://evil.example.com\">こちら</a>")


def _cancellation_parts(smtp_server, to: str) -> tuple[str, str]:
    [msg] = [m for m in smtp_server.parsed()
             if m["To"] == to and "キャンセル" in m["Subject"]]
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def test_the_cancellation_reason_is_mailed_without_links(smtp_server, setup):
    unit, user = setup
    booking = _book(unit, user, attendees=["team@example.jp"])
    r.cancel(db.session, booking, user, reason=PHISHING)
    mail.run_once(db.session)
    text, html = _cancellation_parts(smtp_server, "team@example.jp")
    for part in (text, html):
        assert "evil" not in part and "bit.ly" not in part
        assert "返金は" in part and "至急" in part  # the words stay
        assert "リンク省略" in part
    assert "<b>" not in html and "&lt;b&gt;" in html
    # The only links are ours.
    assert re.findall(r'href="([^"]+)"', html) == [
        f"http://localhost/bookings/{booking.reference}"]
    # The booking page still shows what was written, as text.
    assert db.session.get(Booking, booking.id).cancel_reason == PHISHING


def test_the_cancellation_reason_is_cut_in_mail(smtp_server, setup):
    unit, user = setup
    booking = _book(unit, user)
    r.cancel(db.session, booking, user, reason="あ" * 499 + "ん")
    mail.run_once(db.session)
    text, html = _cancellation_parts(smtp_server, "booker@example.jp")
    for part in (text, html):
        assert "あ" * mail.CANCEL_REASON_MAIL_MAX not in part
        assert "あ" * (mail.CANCEL_REASON_MAIL_MAX - 1) + "…" in part
        assert "ん" not in part


@pytest.mark.parametrize("reason", [
    "設備点検のため。ご迷惑をおかけします。",
    "担当者の体調不良のため 5.5 時間の短縮です",
    "10:00-12:00 は会議室Aを使用します (ver.2)",
])
def test_an_ordinary_reason_reaches_the_mail_unchanged(reason):
    assert mail.reason_for_mail(reason) == reason
