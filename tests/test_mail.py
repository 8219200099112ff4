"""The outbox and its worker, against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import threading
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import icalendar
import pytest
import sqlalchemy as sa
import time_machine
from aiosmtpd.controller import Controller

from booking import clock
from booking.extensions import db
from booking.models import OutboxMessage, Unit, User
from booking.services import mail
from tests import worlds
from tests.edge import reservations as r
from tests.mailbox import Inbox
from tests.worlds import future_day


@pytest.fixture
def app_config(smtp_port):
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}", "REMINDER_HOURS_BEFORE": 24}


@pytest.fixture
def booking_setup(make):
    w = worlds.world(make, capacity=50)
    return w["desks"], w["booker"]


def _book(unit, user, days=10, **kw):
    return r.book(db.session, unit, user, [r.day_period(unit, future_day(days))], 1, **kw)[0]


def test_confirmation_is_delivered_as_a_mail_client_reads_it(smtp_server, booking_setup):
    unit, user = booking_setup
    booking = _book(unit, user, attendees=["hanako@example.jp"])
    counts = mail.run_once(db.session)
    assert counts == {"sent": 2, "failed": 0, "dropped": 0}
    messages = {m["To"]: m for m in smtp_server.parsed()}
    assert set(messages) == {"booker@example.jp", "hanako@example.jp"}
    assert sorted(t for _f, tos, _raw in smtp_server.messages for t in tos) == [
        "booker@example.jp", "hanako@example.jp"]
    msg = messages["hanako@example.jp"]
    assert "【予約確定】テレワーク静岡" in msg["Subject"]
    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    text, html, calendar = alternative.get_payload()
    assert text.get_content_type() == "text/plain" and booking.reference in text.get_content()
    assert html.get_content_type() == "text/html" and booking.reference in html.get_content()
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_param("charset").upper() == "UTF-8"
    ics = calendar.get_payload(decode=True)
    cal = icalendar.Calendar.from_ical(ics)
    assert cal["METHOD"] == calendar.get_param("method")  # Outlook wants them equal
    [event] = cal.walk("VEVENT")
    assert "mailto:hanako@example.jp" in [str(a) for a in event["ATTENDEE"]]
    # RFC 6047: the attachment is text/calendar too, with the same method (one METHOD).
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "REQUEST"
    assert attachment.get_param("charset") == "UTF-8"
    assert ics.count(b"METHOD:") == 1
    [raw] = [raw for _f, tos, raw in smtp_server.messages if tos == ["hanako@example.jp"]]
    # As RFC 6047 writes it (unquoted), on the inline part and on the attachment.
    assert raw.count(b"\r\nContent-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n") == 2
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_payload(decode=True) == ics
    rows = db.session.scalars(sa.select(OutboxMessage)
                              .where(OutboxMessage.kind == "confirmation")).all()
    assert all(row.sent_at is not None and row.attempts == 1 for row in rows)
    assert mail.run_once(db.session)["sent"] == 0  # nothing twice


def test_server_down_at_first_then_up(smtp_port, booking_setup):
    unit, user = booking_setup
    booking = _book(unit, user)  # the booking succeeds with the server down
    assert booking.reference
    counts = mail.run_once(db.session)
    assert counts["failed"] == 1 and counts["sent"] == 0
    row = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.kind == "confirmation"))
    assert row.sent_at is None and row.attempts == 1 and row.last_error
    assert row.next_attempt_at > clock.now() + timedelta(seconds=30)  # backoff
    assert mail.run_once(db.session)["sent"] == 0  # not due yet
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        with time_machine.travel(clock.now() + timedelta(minutes=2)):
            assert mail.run_once(db.session)["sent"] == 1
    finally:
        controller.stop()
    [msg] = inbox.parsed()
    assert booking.reference in msg.get_body(("plain",)).get_content()
    db.session.expire_all()
    row = db.session.get(OutboxMessage, row.id)
    assert row.sent_at is not None and row.attempts == 2


def test_backoff_grows_and_is_capped():
    assert [mail.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert mail.backoff(30) == timedelta(hours=1)


def test_reminder_the_day_before_never_for_cancelled(smtp_server, booking_setup):
    unit, user = booking_setup
    kept = _book(unit, user, days=5)
    dropped = _book(unit, user, days=5)
    r.cancel(db.session, dropped, user)
    mail.run_once(db.session)
    smtp_server.messages.clear()
    with time_machine.travel(kept.starts_at - timedelta(hours=24, minutes=1)):
        assert mail.run_once(db.session)["sent"] == 0  # not yet
    with time_machine.travel(kept.starts_at - timedelta(hours=23, minutes=59)):
        counts = mail.run_once(db.session)
    assert counts["sent"] == 1
    [msg] = smtp_server.parsed()
    assert "【明日のご予約】" in msg["Subject"] and kept.reference in msg.get_body(
        ("plain",)).get_content()
    assert dropped.reference not in msg.get_body(("plain",)).get_content()


def test_worker_drops_a_reminder_whose_booking_was_cancelled_behind_its_back(
        smtp_server, booking_setup):
    unit, user = booking_setup
    booking = _book(unit, user, days=5)
    reminder = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.kind == "reminder"))
    # A cancellation written by something else than reservations.cancel (e.g. by hand).
    booking.status = "cancelled"
    db.session.commit()
    with time_machine.travel(reminder.next_attempt_at + timedelta(minutes=1)):
        counts = mail.run_once(db.session)
    assert counts["dropped"] == 1
    assert all("【明日のご予約】" not in m["Subject"] for m in smtp_server.parsed())


def test_several_workers_send_each_message_once(app, smtp_server, booking_setup):
    unit, user = booking_setup
    for day in range(5, 15):
        _book(unit, user, days=day)
    due = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                            .where(OutboxMessage.kind == "confirmation"))
    unit_id, user_id = unit.id, user.id
    assert db.session.get(Unit, unit_id) and db.session.get(User, user_id)
    db.session.commit()
    barrier = threading.Barrier(3)
    totals = []

    def worker():
        with app.app_context():
            barrier.wait(timeout=30)
            sent = 0
            for _ in range(5):
                sent += mail.run_once(db.session, limit=3)["sent"]
            totals.append(sent)
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(totals) == due
    ids = [m["Message-ID"] for m in smtp_server.parsed()]
    assert len(ids) == due == len(set(ids))


def test_without_mail_url_the_worker_writes_eml_files(app, runner, booking_setup, tmp_path):
    app.config["MAIL_URL"] = None
    unit, user = booking_setup
    reference = _book(unit, user).reference
    result = runner.invoke(args=["outbox", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "sent=1" in result.output
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    msg = message_from_bytes(files[0].read_bytes(), policy=default_policy)
    assert reference in msg.get_body(("plain",)).get_content()
    status = runner.invoke(args=["outbox", "status"])
    assert "pending" in status.output


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_a_line_break_in_a_name_makes_no_header(booking_setup, locale):
    unit, user = booking_setup
    unit.space.name = unit.space.name_en = "Evil\r\nBcc: evil@example.jp"
    db.session.commit()
    _book(unit, user, locale=locale)
    raw = mail.message_of(db.session.scalar(sa.select(OutboxMessage)
                                            .where(OutboxMessage.kind == "confirmation")))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith(b"bcc") for line in head.split(b"\r\n")), head
    msg = message_from_bytes(raw, policy=default_policy)
    assert "Evil Bcc: evil@example.jp" in msg["Subject"] and msg["Bcc"] is None
    assert msg["To"] == "booker@example.jp"
