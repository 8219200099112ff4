"""The mails a booking sends, byte for byte: each scenario books through the service as
a request would, the outbox worker sends what it wrote to a real SMTP server (aiosmtpd on
loopback), and every message received is compared with its file under
tests/data/golden_mail/ after normalising only what differs on every send: the
Message-ID, the Date header and the MIME boundaries (random). Everything else — headers,
transfer encodings, the base64 of every part, the .ics inside with its DTSTAMP — must
be the same bytes.

The clock is held still and booking references are drawn from a fixed list, so that
the same scenario makes the same mails; the database's ids start from 1 in every test
(conftest empties the tables and restarts their identities).

A deliberate change of the mails: run `GOLDEN_MAIL_UPDATE=1 pytest tests/test_golden_mail.py`
(one backend is enough: the mails do not depend on it), look at `git diff --stat` and at
the decoded differences the failing test printed, and say in the commit what changed.
"""

from __future__ import annotations

import itertools
import os
import re
from datetime import UTC, date, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
import time_machine

from booking.extensions import db
from booking.models import CampaignExtra, OrgKind
from booking.services import mail
from booking.services import reservations as reservations_module
from tests.edge import reservations as r

GOLDEN = Path(__file__).parent / "data" / "golden_mail"
UPDATE = os.environ.get("GOLDEN_MAIL_UPDATE") == "1"
INSTANT = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)  # Tokyo: Tuesday 8 December, 00:30
DAY = date(2026, 12, 16)  # a Wednesday
CAMPAIGN_DAY = date(2027, 7, 24)  # Telework Days' core day


@pytest.fixture
def app_config(smtp_port):
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}", "REMINDER_HOURS_BEFORE": 24,
            "MAIL_FROM": "テレワーク予約 <noreply@telework.example.jp>",
            "PUBLIC_URL": "https://telework.example.jp"}


@pytest.fixture
def still():
    with time_machine.travel(INSTANT, tick=False) as traveller:
        yield traveller


@pytest.fixture
def references(monkeypatch):
    """Booking references from a fixed list, in the order bookings are made."""
    fixed = (f"GLDN{n:04d}TEST" for n in itertools.count(1))
    monkeypatch.setattr(reservations_module, "new_reference", lambda: next(fixed))


@pytest.fixture
def scene(make, still, references):
    """A facility in Shizuoka (bilingual, with access notes) with a desk pool, an
    operator owner and a staff member who both keep booking mails on, and a company with
    its booker (verified) who books for a team."""
    company = make.company(name="デモ商事", name_en="Demo Trading")
    booker = make.user("booker@example.jp", organisation=company, name="予約 太郎")
    org = make.organisation(OrgKind.OPERATOR, name="エニシア静岡", name_en="Enishia Shizuoka")
    make.user("owner@enishia.example.jp", organisation=org, role="owner", name="運営 太郎")
    make.user("staff@enishia.example.jp", organisation=org, role="staff", name="Staff Smith",
              locale="en")
    space = make.space(org, name="テレワーク静岡", name_en="Telework Shizuoka",
                       slug="telework-shizuoka", address="静岡市葵区御幸町3-21",
                       access="静岡駅から徒歩5分", access_en="5 minutes' walk from Shizuoka Station")
    desks = make.unit(space, name="フリーデスク", name_en="Open desks", capacity=30,
                      price_amount=1500)
    return {"company": company, "booker": booker, "org": org, "space": space, "desks": desks}


def _normalised(raw: bytes) -> bytes:
    """The message with what differs on every send replaced: the MIME boundaries (each by
    its order of appearance), the Message-ID and the Date."""
    boundaries: dict[bytes, bytes] = {}

    def boundary(match: re.Match) -> bytes:
        return boundaries.setdefault(match.group(0), b"BOUNDARY-%d" % (len(boundaries) + 1))

    text = re.sub(rb"={15}\d+==", boundary, raw)
    text = re.sub(rb"(?mi)^Message-ID: <[^>\r\n]+>", b"Message-ID: <MESSAGE-ID>", text)
    return re.sub(rb"(?mi)^Date: [^\r\n]+", b"Date: DATE", text)


def _readable(raw: bytes) -> str:
    """The message decoded part by part, to show what differs when a comparison fails."""
    lines = []
    for part in message_from_bytes(raw, policy=default_policy).walk():
        lines.append(f"--- {part.get_content_type()} {dict(part.get_params() or [])}")
        if not part.is_multipart():
            payload = part.get_payload(decode=True) or b""
            lines.append(payload.decode("utf-8", "replace"))
    return "\n".join(lines)


def _sent(smtp_server) -> list[tuple[str, bytes]]:
    """Everything the worker sends now, as (recipient, message)."""
    smtp_server.messages.clear()
    counts = mail.run_once(db.session)
    assert counts["failed"] == 0, counts
    return [(tos[0], raw) for _from, tos, raw in smtp_server.messages]


def _compare(name: str, sent: list[tuple[str, bytes]]) -> None:
    """The messages of one scenario against its golden files (one per message, in the
    order the worker sent them)."""
    expected_names = sorted(p.name for p in GOLDEN.glob(f"{name}-[0-9][0-9]-*.eml"))
    got = {}
    for n, (recipient, raw) in enumerate(sent, 1):
        subject = message_from_bytes(raw, policy=default_policy)
        kind = "calendar" if any(p.get_content_type() == "text/calendar"
                                 for p in subject.walk()) else "notice"
        got[f"{name}-{n:02d}-{kind}-{recipient}.eml"] = _normalised(raw)
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for stale in expected_names:
            (GOLDEN / stale).unlink()
        for file_name, body in got.items():
            (GOLDEN / file_name).write_bytes(body)
        return
    assert sorted(got) == expected_names
    for file_name, body in got.items():
        expected = (GOLDEN / file_name).read_bytes()
        assert body == expected, (
            f"{file_name} differs from its golden file.\n=== got ===\n{_readable(body)}\n"
            f"=== expected ===\n{_readable(expected)}")


def test_a_paid_booking(scene, smtp_server):
    unit, booker = scene["desks"], scene["booker"]
    r.book(db.session, unit, booker, [r.day_period(unit, DAY)], 2,
           note="午後から2名で伺います。駐車場は https://example.com/parking を見ました。")
    _compare("paid", _sent(smtp_server))


def test_a_free_campaign_booking_with_an_extra(make, scene, smtp_server):
    unit, booker = scene["desks"], scene["booker"]
    city = make.organisation(OrgKind.MUNICIPALITY, name="静岡市", name_en="Shizuoka City")
    campaign = make.campaign(city, name="テレワーク・デイズ2027", name_en="Telework Days 2027",
                             slug="telework-days-2027")
    slot = make.slot(campaign, unit, seats=10, price_amount=0)
    extra = CampaignExtra(campaign_id=campaign.id, name="ポケットWi-Fi", name_en="Pocket Wi-Fi",
                          quantity=3)
    db.session.add(extra)
    db.session.commit()
    r.book(db.session, unit, booker, [r.day_period(unit, CAMPAIGN_DAY, slot)], 1, slot=slot,
           extras={extra.id: 1})
    _compare("campaign", _sent(smtp_server))


def test_a_team_booking_in_english(scene, smtp_server):
    unit, booker = scene["desks"], scene["booker"]
    r.book(db.session, unit, booker, [r.day_period(unit, DAY)], 3, locale="en",
           attendees=["hanako@example.jp", "jiro.yamada@example.com"])
    _compare("team", _sent(smtp_server))


def test_a_change_and_an_attendee_taken_off(scene, smtp_server):
    unit, booker = scene["desks"], scene["booker"]
    [booking] = r.book(db.session, unit, booker, [r.day_period(unit, DAY)], 3,
                       attendees=["hanako@example.jp", "jiro.yamada@example.com"])
    _sent(smtp_server)  # the confirmations: test_a_team_booking's
    r.change(db.session, booking, booker, seats=2, period=r.day_period(unit, date(2026, 12, 17)),
             attendees=["hanako@example.jp"])
    _compare("change", _sent(smtp_server))


def test_a_cancellation_on_the_customers_behalf(scene, smtp_server):
    unit, booker = scene["desks"], scene["booker"]
    owner = db.session.scalar(db.select(type(booker)).where(
        type(booker).email == "owner@enishia.example.jp"))
    [booking] = r.book(db.session, unit, booker, [r.day_period(unit, DAY)], 1,
                       attendees=["hanako@example.jp"])
    _sent(smtp_server)
    r.cancel(db.session, booking, owner,
             reason="設備点検のため休館します。詳細は www.enishia.example.jp/notice まで。")
    _compare("cancel", _sent(smtp_server))


def test_a_cancellation_by_the_company(scene, smtp_server):
    unit, booker = scene["desks"], scene["booker"]
    [booking] = r.book(db.session, unit, booker, [r.day_period(unit, DAY)], 1, locale="en")
    _sent(smtp_server)
    r.cancel(db.session, booking, booker)
    _compare("cancel-en", _sent(smtp_server))


def test_a_later_change_does_not_alter_an_earlier_mail(scene, smtp_server, still):
    """The worker renders a booking's mail after commit from the facts stored with its
    outbox row: renaming the space, repricing the unit and an hour passing before it
    sends change nothing in the paid booking's mails (its DTSTAMP included)."""
    unit, booker, space = scene["desks"], scene["booker"], scene["space"]
    r.book(db.session, unit, booker, [r.day_period(unit, DAY)], 2,
           note="午後から2名で伺います。駐車場は https://example.com/parking を見ました。")
    space.name, space.name_en, space.access = "改名後の施設", "Renamed", "変更後のアクセス"
    unit.price_amount, unit.cancel_deadline_hours = 9999, 1
    db.session.commit()
    still.shift(3600)
    _compare("paid", _sent(smtp_server))
