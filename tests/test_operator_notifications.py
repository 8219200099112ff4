"""Issue 19, notifications (the booking side): the space's operator members are mailed
new, changed and cancelled bookings with the company's note to the facility, each as
they chose on the account page (通知設定); the note shows in the day list and the CSV.

Mails go through the outbox worker to a real SMTP server (aiosmtpd on loopback), like
tests/test_mail.py."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import OrgKind, OutboxMessage, User
from booking.services import mail
from tests import worlds
from tests.edge import reservations as r
from tests.worlds import future_day

NOTE = "車椅子で伺います。\n駐車場を1台お願いします。"


@pytest.fixture
def app_config(smtp_port):
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}", "REMINDER_HOURS_BEFORE": 24}


@pytest.fixture
def w(make):
    """The small world, with an owner (Japanese), a staff member (English), a staff member
    who switched booking mails off and one whose address is not verified."""
    out = worlds.world(make, owner=True, capacity=20)
    out["staff_en"] = make.user("staff-en@example.jp", organisation=out["org"], role="staff",
                                name="Staff Smith", locale="en")
    out["quiet"] = make.user("quiet@example.jp", organisation=out["org"], role="staff",
                             name="静か 花子")
    out["quiet"].notify_bookings = False
    out["unverified"] = make.user("unverified@example.jp", organisation=out["org"],
                                  role="staff", verified=False)
    db.session.execute(sa.delete(OutboxMessage))  # its verification mail: not the point
    db.session.commit()
    return out


def _operator_rows(kind: str) -> list[OutboxMessage]:
    return list(db.session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.kind == f"operator_{kind}").order_by(OutboxMessage.recipient)))


def _company_kinds() -> list[tuple[str, str]]:
    return sorted(db.session.execute(sa.select(OutboxMessage.kind, OutboxMessage.recipient)
                                     .where(~OutboxMessage.kind.startswith("operator_"))).all())


def _delivered(smtp_server) -> dict[str, list]:
    """What the SMTP server received, by recipient."""
    got: dict[str, list] = {}
    for msg in smtp_server.parsed():
        got.setdefault(str(msg["To"]), []).append(msg)
    return got


def _text(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def test_booking_change_and_cancellation_mail_each_opted_in_operator_member(w, smtp_server):
    unit, booker = w["desks"], w["booker"]
    owner, staff = w["owner"], w["staff_en"]
    [booking] = r.book(db.session, unit, booker, [r.day_period(unit, future_day(10))], 2,
                       note=NOTE, attendees=["hanako@example.jp"])
    # The company's own mails are as before: the booker and the attendee, each with a
    # confirmation and a reminder.
    assert _company_kinds() == [
        ("confirmation", "booker@example.jp"), ("confirmation", "hanako@example.jp"),
        ("reminder", "booker@example.jp"), ("reminder", "hanako@example.jp")]
    # One per opted-in, verified member; none to the one who switched off, none to the
    # unverified address.
    assert [row.recipient for row in _operator_rows("confirmation")] == sorted(
        [owner.email, staff.email])

    r.change(db.session, booking, booker, seats=3)
    assert [row.recipient for row in _operator_rows("update")] == sorted(
        [owner.email, staff.email])
    r.cancel(db.session, booking, booker, reason="予定変更のため")
    assert [row.recipient for row in _operator_rows("cancellation")] == sorted(
        [owner.email, staff.email])

    counts = mail.run_once(db.session)
    assert counts["failed"] == 0
    got = _delivered(smtp_server)
    assert "quiet@example.jp" not in got and "unverified@example.jp" not in got
    assert len(got[owner.email]) == 3 and len(got[staff.email]) == 3
    assert len(got["booker@example.jp"]) == 3  # confirmation, change, cancellation

    ja = {m["Subject"].split("】")[0] + "】": m for m in got[owner.email]}
    assert set(ja) == {"【新しい予約】", "【予約の変更】", "【予約のキャンセル】"}
    new = ja["【新しい予約】"]
    assert "テレワーク静岡" in new["Subject"]
    # Text and HTML, no calendar: staff are not invited to the customer's booking.
    assert new.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in new.iter_parts()] == ["text/plain", "text/html"]
    body = _text(new)
    assert booking.reference in body and "運営 太郎 様" in body
    assert "施設へのメモ" in body and "車椅子で伺います。" in body and "駐車場を1台" in body
    assert "デモ商事" in body and "予約 太郎" in body and "席数: 2" in body
    html = new.get_body(("html",)).get_content()
    assert "車椅子で伺います。<br>駐車場を1台お願いします。" in html
    assert "席数: 3" in _text(ja["【予約の変更】"])
    cancelled = _text(ja["【予約のキャンセル】"])
    assert "予定変更のため" in cancelled and "車椅子で伺います。" in cancelled
    assert f"/operator/spaces/{w['space'].id}/day?day={future_day(10).isoformat()}" in body

    # The English member reads it in English.
    en = {m["Subject"].split("]")[0] + "]": m for m in got[staff.email]}
    assert set(en) == {"[New booking]", "[Booking changed]", "[Booking cancelled]"}
    english = _text(en["[New booking]"])
    assert "Dear Staff Smith," in english and "A new booking has been made" in english
    assert "Note to the space" in english and "車椅子で伺います。" in english
    assert "施設へのメモ" not in english
    # The company's own mail is unchanged: it carries its calendar, and no operator text.
    booker_mail = next(m for m in got["booker@example.jp"] if "【予約確定】" in m["Subject"])
    assert booker_mail.get_content_type() == "multipart/mixed"
    assert "施設へのメモ" not in _text(booker_mail)


def test_no_mail_to_members_who_opted_out_or_other_operators(w, make, smtp_server):
    other = make.organisation(OrgKind.OPERATOR, name="よその運営")
    make.user("other-op@example.jp", organisation=other)
    for key in ("owner", "staff_en"):
        w[key].notify_bookings = False
    db.session.commit()
    unit = w["desks"]
    r.book(db.session, unit, w["booker"], [r.day_period(unit, future_day(8))], 1, note=NOTE)
    assert _operator_rows("confirmation") == []
    mail.run_once(db.session)
    assert smtp_server.recipients() == ["booker@example.jp"]


def test_a_bad_operator_address_stops_no_other_mail(w, smtp_server):
    # A row written before the address rule: the worker parks that message alone.
    db.session.execute(sa.update(User).where(User.id == w["staff_en"].id)
                       .values(email="not an address"))
    db.session.commit()
    unit = w["desks"]
    r.book(db.session, unit, w["booker"], [r.day_period(unit, future_day(8))], 1, note=NOTE)
    counts = mail.run_once(db.session)
    assert counts["sent"] == 2 and counts.parked == 1
    assert smtp_server.recipients() == ["booker@example.jp", w["owner"].email]


def test_the_note_in_the_day_list_and_the_csv(w, client, login):
    unit = w["desks"]
    day = future_day(12)
    [booking] = r.book(db.session, unit, w["booker"], [r.day_period(unit, day)], 1,
                       note="=1+2 窓際の席を希望\n2行目")
    login(w["owner"])
    page = client.get(f"/operator/spaces/{w['space'].id}/day",
                      query_string={"day": day.isoformat()}).get_data(as_text=True)
    assert "施設へのメモ" in page and "=1+2 窓際の席を希望<br>2行目" in page
    response = client.get(f"/operator/spaces/{w['space'].id}/export.csv",
                          query_string={"start": day.isoformat(), "end": day.isoformat()})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    [row] = [dict(zip(header, cells, strict=True)) for cells in body]
    assert row["予約番号"] == booking.reference
    assert row["施設へのメモ"] == "'=1+2 窓際の席を希望\n2行目"  # defused, as every cell


def test_the_account_page_switches_the_settings(w, client, login):
    owner = login(w["owner"])
    page = client.get("/account/").get_data(as_text=True)
    assert "/account/notifications" in page
    page = client.get("/account/notifications").get_data(as_text=True)
    for name in ("notify_bookings", "notify_digest", "notify_consents"):
        assert f'name="{name}"' in page  # the digest: services/digest.py sends it
    response = client.post("/account/notifications", data={"notify_digest": "y"})
    assert response.status_code == 302
    db.session.expire_all()
    saved = db.session.get(User, owner.id)
    assert (saved.notify_bookings, saved.notify_digest, saved.notify_consents) == (
        False, True, False)
    # Switched off: the next booking mails the other staff only.
    unit = w["desks"]
    r.book(db.session, unit, w["booker"], [r.day_period(unit, future_day(9))], 1)
    assert [row.recipient for row in _operator_rows("confirmation")] == [w["staff_en"].email]
    response = client.post("/account/notifications", data={
        "notify_bookings": "y", "notify_consents": "y"})
    assert response.status_code == 302
    db.session.expire_all()
    saved = db.session.get(User, owner.id)
    assert (saved.notify_bookings, saved.notify_digest, saved.notify_consents) == (
        True, False, True)


def test_who_sees_which_switch(w, make, client, login):
    city = make.organisation(OrgKind.MUNICIPALITY, name="吉川市")
    official = make.user("official@example.jp", organisation=city)
    login(official)
    page = client.get("/account/notifications").get_data(as_text=True)
    assert 'name="notify_consents"' in page
    assert 'name="notify_bookings"' not in page and 'name="notify_digest"' not in page
    # A switch the page does not show cannot be set by posting it.
    client.post("/account/notifications", data={"notify_consents": "y", "notify_bookings": ""})
    db.session.expire_all()
    assert db.session.get(User, official.id).notify_bookings is True
    client.post("/account/logout")
    login(w["booker"])
    assert "/account/notifications" not in client.get("/account/").get_data(as_text=True)
    page = client.get("/account/notifications").get_data(as_text=True)
    assert "選べる通知はありません" in page and "notify_" not in page
