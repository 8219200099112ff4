"""Every .ics the service emits, checked by independent clients.

- Radicale (a real CalDAV server, started here on loopback): MKCALENDAR, PUT, GET.
- vobject (a second parser) and icalendar read it back.
- libical (the C library behind Evolution, through GObject introspection) checks the iTIP
  rules of its METHOD. python3-gi is a Debian package, so that check runs in the system
  Python (/usr/bin/python3) in a subprocess.
- What no tool checks: CRLF line ends, 75-octet folding, the VTIMEZONE, DTSTART's zone.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import icalendar
import pytest
import sqlalchemy as sa
import vobject

from booking.extensions import db
from booking.models import OutboxMessage
from booking.services import calendars, mail
from booking.services.availability import TOKYO, at
from tests import worlds
from tests.edge import reservations as r
from tests.worlds import future_day

SYSTEM_PYTHON = "/usr/bin/python3"


# --------------------------------------------------------------------------- Radicale


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def radicale(tmp_path_factory):
    folder = tmp_path_factory.mktemp("radicale")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--server-hosts", f"127.0.0.1:{port}",
         "--auth-type", "none", "--rights-type", "owner_only",
         "--storage-filesystem-folder", str(folder / "collections"),
         "--logging-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read().decode()) from None
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("Radicale did not start")
    yield CalDav(port)
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()


class CalDav:
    USER = "tester"

    def __init__(self, port: int) -> None:
        self.port = port
        self.auth = "Basic " + base64.b64encode(f"{self.USER}:x".encode()).decode()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request(method, path, body=body, headers={"Authorization": self.auth,
                                                       **(headers or {})})
        res = conn.getresponse()
        data = res.read()
        conn.close()
        return res.status, data

    def new_calendar(self) -> str:
        path = f"/{self.USER}/cal-{uuid.uuid4().hex[:8]}/"
        status, body = self.request("MKCALENDAR", path)
        assert status == 201, body
        return path

    def put(self, path: str, ics: bytes) -> None:
        status, body = self.request("PUT", path, ics,
                                    {"Content-Type": "text/calendar; charset=utf-8"})
        assert status in (201, 204), (status, body.decode(errors="replace"))

    def get(self, path: str) -> bytes:
        status, body = self.request("GET", path)
        assert status == 200, (status, body)
        return body


# --------------------------------------------------------------------------- libical


LIBICAL_CHECK = textwrap.dedent("""
    import json, sys
    import gi
    gi.require_version("ICalGLib", "3.0")
    from gi.repository import ICalGLib
    out = {}
    for path in sys.argv[1:]:
        text = open(path, encoding="utf-8").read()
        comp = ICalGLib.Component.new_from_string(text)
        ok = ICalGLib.restriction_check(comp)
        out[path] = {"ok": bool(ok), "errors": [
            line for line in comp.as_ical_string().splitlines() if "X-LIC-ERROR" in line]}
    print(json.dumps(out))
""")


def libical_check(tmp_path: Path, files: dict[str, bytes]) -> dict:
    paths = []
    for name, data in files.items():
        p = tmp_path / f"{name}.ics"
        p.write_bytes(data)
        paths.append(str(p))
    done = subprocess.run([SYSTEM_PYTHON, "-c", LIBICAL_CHECK, *paths], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, ("libical check could not run (python3-gi and "
                                  "gir1.2-ical-3.0 are needed): " + done.stderr)
    result = json.loads(done.stdout)
    return {Path(k).stem: v for k, v in result.items()}


# --------------------------------------------------------------------------- data


@pytest.fixture
def booked(make):
    w = worlds.world(make, capacity=20, price=1500, name_en="Telework Shizuoka",
                     address="静岡市葵区御幸町3-21", access="静岡駅から徒歩3分")
    [w["booking"]] = r.book(db.session, w["desks"], w["booker"],
                            [r.day_period(w["desks"], future_day())], 2,
                            attendees=["hanako@example.jp", "ken@example.jp"])
    return w


def _check_text_rules(data: bytes) -> None:
    """What no parser checks: CRLF everywhere, lines of at most 75 octets."""
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")  # no bare LF
    assert b"\r" not in data.replace(b"\r\n", b"")  # no bare CR
    for line in data.split(b"\r\n"):
        assert len(line) <= 75, line


def _event(data: bytes) -> icalendar.Event:
    cal = icalendar.Calendar.from_ical(data)
    [event] = cal.walk("VEVENT")
    return event


def _mail_calendars(kind: str) -> list[tuple[str, bytes]]:
    """(text/calendar method parameter, body) of each queued message of this kind."""
    found = []
    for row in db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == kind)
                                  .order_by(OutboxMessage.id)):
        # As the worker will send it (rendered from the facts stored with the row).
        msg = message_from_bytes(mail.message_of(row), policy=default_policy)
        for part in msg.walk():
            if part.get_content_type() == "text/calendar":
                found.append((part.get_param("method"), part.get_payload(decode=True)))
    return found


# --------------------------------------------------------------------------- tests


def test_invitation_has_what_clients_need(booked):
    booking = booked["booking"]
    [(method, data), *_rest] = _mail_calendars("confirmation")
    assert method == "REQUEST"
    _check_text_rules(data)
    cal = icalendar.Calendar.from_ical(data)
    assert cal["METHOD"] == "REQUEST"
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Asia/Tokyo"]
    event = _event(data)
    assert str(event["UID"]) == calendars.uid_of(booking)
    assert event["SEQUENCE"] == 0 and event["STATUS"] == "CONFIRMED"
    assert event.decoded("DTSTART") == at(booking.starts_at.astimezone(TOKYO).date(), 540)
    assert event["DTSTART"].params["TZID"] == "Asia/Tokyo"  # not all-day, not floating
    assert str(event.decoded("DTSTART").tzinfo) == "Asia/Tokyo"
    assert "DTSTAMP" in event and "DTEND" in event
    assert str(event["SUMMARY"]).startswith("予約: テレワーク静岡")
    assert "静岡県静岡市葵区御幸町3-21" in str(event["LOCATION"])
    assert event["GEO"].latitude == pytest.approx(34.9738)
    assert str(event["URL"]).endswith(f"/bookings/{booking.reference}")
    description = str(event["DESCRIPTION"])
    for needle in (booking.reference, "席数: 2", "¥3,000", "静岡駅から徒歩3分"):
        assert needle in description
    assert str(event["ORGANIZER"]) == "mailto:noreply@telework.example.jp"
    assert b'ORGANIZER;CN="' in data.replace(b"\r\n ", b"")  # quoted non-ASCII CN
    attendees = sorted(str(a) for a in event["ATTENDEE"])
    assert attendees == ["mailto:booker@example.jp", "mailto:hanako@example.jp",
                         "mailto:ken@example.jp"]
    parsed = vobject.readOne(data.decode(), validate=True)
    assert parsed.vevent.uid.value == str(event["UID"])


def test_change_and_cancel_keep_the_uid_and_raise_the_sequence(booked):
    booking, user = booked["booking"], booked["booker"]
    r.change(db.session, booking, user, seats=3)
    r.cancel(db.session, booking, user, reason="出張")
    [(m0, d0), *_] = _mail_calendars("confirmation")
    [(m1, d1), *_] = _mail_calendars("update")
    [(m2, d2), *_] = _mail_calendars("cancellation")
    assert (m0, m1, m2) == ("REQUEST", "REQUEST", "CANCEL")
    uids = {str(_event(d)["UID"]) for d in (d0, d1, d2)}
    assert uids == {calendars.uid_of(booking)}
    assert [_event(d)["SEQUENCE"] for d in (d0, d1, d2)] == [0, 1, 2]
    cancel = icalendar.Calendar.from_ical(d2)
    assert cancel["METHOD"] == "CANCEL" and _event(d2)["STATUS"] == "CANCELLED"
    assert cancel.walk("VTIMEZONE"), "the cancellation carries the VTIMEZONE again"
    for data in (d1, d2):
        _check_text_rules(data)
        vobject.readOne(data.decode(), validate=True)


def test_radicale_accepts_every_file(booked, radicale, client, login):
    booking, user = booked["booking"], booked["booker"]
    cal = radicale.new_calendar()
    item = f"{cal}{booking.reference}.ics"
    [(_m, request_ics), *_] = _mail_calendars("confirmation")
    radicale.put(item, request_ics)
    assert calendars.uid_of(booking).encode() in radicale.get(item)
    r.change(db.session, booking, user, seats=3)
    [(_m, change_ics), *_] = _mail_calendars("update")
    radicale.put(item, change_ics)  # the same resource, as a CalDAV client updates it
    stored = icalendar.Calendar.from_ical(radicale.get(item))
    assert stored.walk("VEVENT")[0]["SEQUENCE"] == 1
    r.cancel(db.session, booking, user)
    [(_m, cancel_ics), *_] = _mail_calendars("cancellation")
    radicale.put(item, cancel_ics)
    assert b"STATUS:CANCELLED" in radicale.get(item)
    # The download of another booking, as its own resource.
    [other] = r.book(db.session, booked["desks"], user,
                     [r.day_period(booked["desks"], future_day(11))], 1)
    login(user)
    download = client.get(f"/bookings/{other.reference}.ics")
    assert download.status_code == 200 and download.mimetype == "text/calendar"
    radicale.put(f"{cal}{other.reference}.ics", download.data)
    assert other.reference.lower().encode() in radicale.get(f"{cal}{other.reference}.ics")


def test_feeds_are_publish_without_attendees(booked, radicale, client, tmp_path, make):
    user, company, space = booked["booker"], booked["company"], booked["space"]
    secrets_ = {"user": calendars.renew_secret(user),
                "company": calendars.renew_secret(company),
                "space": calendars.renew_secret(space)}
    db.session.commit()
    r.book(db.session, booked["desks"], user, [r.day_period(booked["desks"], future_day(12))], 1)
    feeds = {}
    for owner, secret in secrets_.items():
        res = client.get(f"/calendar/{secret}.ics")
        assert res.status_code == 200 and res.mimetype == "text/calendar"
        data = res.data
        _check_text_rules(data)
        cal = icalendar.Calendar.from_ical(data)
        assert cal["METHOD"] == "PUBLISH"
        assert b"ATTENDEE" not in data
        assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in data
        assert b"X-PUBLISHED-TTL:PT1H\r\n" in data
        assert "X-WR-CALNAME" in cal
        assert len(cal.walk("VEVENT")) == 2 and cal.walk("VTIMEZONE")
        vobject.readOne(data.decode(), validate=True)
        # Radicale takes a whole calendar PUT on a new collection (its import).
        path = f"/{radicale.USER}/feed-{owner}-{uuid.uuid4().hex[:6]}/"
        radicale.put(path, data)
        assert data.count(b"BEGIN:VEVENT") == radicale.get(path).count(b"BEGIN:VEVENT")
        feeds[owner] = data
    assert libical_check(tmp_path, feeds) == {
        name: {"ok": True, "errors": []} for name in feeds}
    # Revoked: the URL stops working at once.
    calendars.revoke_secret(user)
    db.session.commit()
    assert client.get(f"/calendar/{secrets_['user']}.ics").status_code == 404
    assert client.get("/calendar/not-a-real-secret-at-all-xxxx.ics").status_code == 404


def test_libical_itip_check_of_request_change_cancel_and_download(booked, tmp_path):
    booking, user = booked["booking"], booked["booker"]
    r.change(db.session, booking, user, seats=3)
    r.cancel(db.session, booking, user)
    files = {
        "request": _mail_calendars("confirmation")[0][1],
        "change": _mail_calendars("update")[0][1],
        "cancel": _mail_calendars("cancellation")[0][1],
        "download": calendars.booking_ics(booking, calendars.METHOD_PUBLISH),
    }
    result = libical_check(tmp_path, files)
    assert result == {name: {"ok": True, "errors": []} for name in files}, result


def test_user_text_cannot_inject_lines(make, booked):
    space = booked["space"]
    space.name = "悪い施設\r\nX-INJECTED:1\r\nATTENDEE:mailto:evil@example.jp"
    db.session.commit()
    data = calendars.booking_ics(booked["booking"], calendars.METHOD_REQUEST)
    unfolded = data.replace(b"\r\n ", b"")
    assert b"\r\nX-INJECTED" not in unfolded
    assert b"evil@example.jp" not in b"\r\n".join(
        line for line in unfolded.split(b"\r\n") if line.startswith(b"ATTENDEE"))
    _check_text_rules(data)


def test_english_summary_for_an_english_booker(make, booked):
    booking = booked["booking"]
    booking.locale = "en"
    db.session.commit()
    event = _event(calendars.booking_ics(booking, calendars.METHOD_PUBLISH))
    assert "Telework Shizuoka" in str(event["SUMMARY"])


# --------------------------------------------------------------------------- feed speed-ups


def test_feed_folding_is_the_librarys():
    from icalendar.parser.string import _foldline

    lines = ["UID:short", "DESCRIPTION:" + "予約番号: B1\\n区画: デスク" * 9,
             "LOCATION:" + "🏢テレワーク" * 20, "X-A:" + "\\\\" * 60]
    for n in range(60, 150):  # escapes and multi-byte characters at every fold position
        lines += ["SUMMARY:" + "a" * n + "\\,b" * 3, "SUMMARY:" + "a" * n + "^^" + "b" * 9,
                  "SUMMARY:" + "a" * n + "駅é" * 5]
    for line in lines:
        assert calendars._fold(line.encode()) == _foldline(line).encode(), line


def _unfolded_events(data: bytes) -> list[list[bytes]]:
    """Each VEVENT's unfolded lines, sorted (the library sorts properties, the feed not)."""
    text = data.replace(b"\r\n ", b"")
    blocks = text.split(b"BEGIN:VEVENT\r\n")[1:]
    return [sorted(b.split(b"END:VEVENT\r\n")[0].split(b"\r\n")) for b in blocks]


def test_feed_events_are_what_icalendar_writes(booked, make):
    """The feed writes its events line by line; each must be the library's own VEVENT."""
    unit = booked["desks"]
    unit.space.access = "駅から徒歩3分、\\ 裏口; 「北口」" * 3  # escaping and folding
    db.session.commit()  # the operator's edit, its own request (a booking decides alone)
    [english] = r.book(db.session, unit, booked["booker"], [r.day_period(unit, future_day(13))],
                       1, locale="en")
    db.session.commit()
    bookings = calendars.feed_bookings(db.session, booked["company"])
    data = calendars.feed_ics(bookings, "デモ商事の予約")
    _check_text_rules(data)
    expected = [_unfolded_events(calendars.event_for(b, calendars.METHOD_PUBLISH,
                                                     stamp=b.updated_at).to_ical())[0]
                for b in bookings]
    assert sorted(_unfolded_events(data)) == sorted(expected)
    assert len(expected) == 2 and any(b"Telework Shizuoka" in line
                                      for event in _unfolded_events(data) for line in event)
    cal = icalendar.Calendar.from_ical(data)
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Asia/Tokyo"]
    assert {str(e["UID"]) for e in cal.walk("VEVENT")} == {
        calendars.uid_of(booked["booking"]), calendars.uid_of(english)}


def test_feed_answers_304_until_something_in_it_changes(booked, client, app):
    booking, user, unit = booked["booking"], booked["booker"], booked["desks"]
    secret = calendars.renew_secret(booked["company"])
    db.session.commit()
    url = f"/calendar/{secret}.ics"

    def etag() -> str:
        res = client.get(url)
        assert res.status_code == 200 and res.headers["ETag"].startswith('W/"')
        again = client.get(url, headers={"If-None-Match": res.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""
        assert again.headers["ETag"] == res.headers["ETag"]
        assert again.headers["Cache-Control"] == "private, max-age=300"
        return res.headers["ETag"]

    seen = [etag()]
    assert etag() == seen[0]  # nothing changed: the same validator
    # ... and the same feed, kept in memory for clients that never send If-None-Match.
    kept = calendars._feed_cache[seen[0][3:-1]]
    assert client.get(url).data == kept
    assert client.get(url, headers={"If-None-Match": 'W/"other"'}).status_code == 200
    r.change(db.session, booking, user, seats=3)
    seen.append(etag())
    [other] = r.book(db.session, unit, user, [r.day_period(unit, future_day(14))], 1)
    seen.append(etag())
    booked["space"].name = "テレワーク静岡 本館"  # a place's text, no booking touched
    db.session.commit()
    seen.append(etag())
    r.cancel(db.session, other, user)
    seen.append(etag())
    assert len(set(seen)) == len(seen), seen
    # The window: a booking that ended 30 days ago is listed by default (90 days), not
    # with CALENDAR_FEED_PAST_DAYS=7, and leaving the window changes the ETag too.
    booking.starts_at -= timedelta(days=40)
    booking.ends_at -= timedelta(days=40)
    db.session.commit()
    before = client.get(url)
    assert calendars.uid_of(booking).encode() in before.data
    app.config["CALENDAR_FEED_PAST_DAYS"] = 7
    after = client.get(url)
    assert calendars.uid_of(booking).encode() not in after.data
    assert after.headers["ETag"] != before.headers["ETag"]


def test_feed_memory_is_bounded(booked, client, monkeypatch):
    feeds = [calendars.renew_secret(booked[owner]) for owner in ("booker", "company", "space")]
    db.session.commit()
    sizes = [len(client.get(f"/calendar/{secret}.ics").data) for secret in feeds]
    monkeypatch.setattr(calendars, "FEED_CACHE_BYTES", max(sizes) + 10)
    calendars._feed_cache.clear()
    for secret in feeds:
        assert client.get(f"/calendar/{secret}.ics").status_code == 200
    assert len(calendars._feed_cache) == 1  # only the last one fits
    assert sum(map(len, calendars._feed_cache.values())) == sizes[-1]


def test_feed_window_comes_from_the_environment(monkeypatch):
    from booking.config import from_environment

    monkeypatch.setenv("CALENDAR_FEED_PAST_DAYS", "7")
    assert from_environment()["CALENDAR_FEED_PAST_DAYS"] == 7
    monkeypatch.delenv("CALENDAR_FEED_PAST_DAYS")
    assert from_environment()["CALENDAR_FEED_PAST_DAYS"] is None  # calendars.FEED_PAST
