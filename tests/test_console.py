"""The operator console against real bookings: the guard on capacity, hours and closures,
the month view, the day list, the CSV, photos, and forms that refuse bad input."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from booking import clock
from booking.extensions import db
from booking.models import (
    AuditEntry,
    Booking,
    BookingStatus,
    CapacityOverride,
    Closure,
    OpeningHours,
    OrgKind,
    Photo,
    Space,
    Unit,
)
from booking.services import availability, closures, front_desk, space_admin
from booking.services.availability import at
from tests import worlds
from tests.worlds import future_day


def _future_weekday(days_ahead: int = 14) -> date:
    """A weekday far enough ahead for any lead time, and not a public holiday."""
    day = future_day(days_ahead)
    while day.weekday() >= 5 or availability.is_holiday(day):
        day += timedelta(days=1)
    return day


@pytest.fixture
def site(make, login):
    w = worlds.world(make, owner=True)
    login(w["owner"])
    return dict(w, make=make)


def _book(make, unit, day, seats, company=None, **kw):
    return make.booking(unit, at(day, 540), at(day, 1080), seats, company=company, **kw)


def _free(unit_id: int, day: date) -> int:
    db.session.expire_all()
    unit = db.session.get(Unit, unit_id)
    line = availability.timeline(db.session, unit, at(day, 0), at(day + timedelta(days=1), 0))
    return line.min_free(at(day, 540), at(day, 1080))


def _found_by_search(space_id: int, day: date, seats: int = 1) -> bool:
    from booking.services import search

    result = search.search(db.session, search.SearchQuery(lat=34.9738, lon=138.3866, date=day,
                                                          seats=seats, radius_km=5))
    return any(r.space.id == space_id for r in result.results)


# ----------------------------------------------------------------------------- the guard


def test_a_closure_over_booked_dates_is_refused_with_the_bookings(client, site):
    day = _future_weekday()
    company = site["make"].company(name="デモ商事")
    booking = _book(site["make"], site["desks"], day, 3, company=company)
    response = client.post(f"/operator/spaces/{site['space'].id}/closures", data={
        "closure-units": [str(site["desks"].id)], "closure-start": (day - timedelta(days=1)).isoformat(),
        "closure-end": (day + timedelta(days=2)).isoformat(), "closure-reason": "お盆",
    })
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert booking.reference in page and "デモ商事" in page
    assert f"/operator/bookings/{booking.id}/cancel" in page  # resolve it from the list
    assert db.session.scalar(sa.select(sa.func.count(Closure.id))) == 0
    assert _free(site["desks"].id, day) == 7


def test_the_same_closure_on_free_dates_takes_effect_in_search_at_once(client, site):
    day = _future_weekday()
    _book(site["make"], site["desks"], day, 3)
    free_day = day + timedelta(days=7)
    assert _found_by_search(site["space"].id, free_day)
    response = client.post(f"/operator/spaces/{site['space'].id}/closures", data={
        "closure-units": [str(site["desks"].id)], "closure-start": free_day.isoformat(),
        "closure-end": free_day.isoformat(), "closure-reason": "設備点検",
    })
    assert response.status_code == 302
    assert _free(site["desks"].id, free_day) == 0
    assert not _found_by_search(site["space"].id, free_day)
    assert _found_by_search(site["space"].id, day)  # the booked day is untouched
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "closure.add")).one()
    assert entry.user_id == site["owner"].id and entry.detail["reason"] == "設備点検"


def test_a_capacity_cut_below_the_booked_seats_is_refused(client, site):
    day = _future_weekday()
    unit = site["desks"]
    first = _book(site["make"], unit, day, 3)
    second = _book(site["make"], unit, day, 4)
    # An override for that day below 7 seats…
    response = client.post(f"/operator/spaces/{site['space'].id}/overrides", data={
        "override-units": [str(unit.id)], "override-start": day.isoformat(),
        "override-end": day.isoformat(), "override-capacity": "6",
    })
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert first.reference in page and second.reference in page
    assert db.session.scalar(sa.select(sa.func.count(CapacityOverride.id))) == 0
    # …and the unit's own capacity below 7.
    response = client.post(f"/operator/units/{unit.id}/edit", data={
        "name": unit.name, "kind": "desk", "capacity": "5", "fits_people": "1",
        "price_amount": "1000", "price_per": "day", "min_length": "1", "max_length": "30",
        "lead_time_hours": "0", "cancel_deadline_hours": "24",
    })
    assert response.status_code == 409
    assert first.reference in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Unit, unit.id).capacity == 10
    # Exactly the booked seats is fine, and search sees it at once.
    response = client.post(f"/operator/spaces/{site['space'].id}/overrides", data={
        "override-units": [str(unit.id)], "override-start": day.isoformat(),
        "override-end": day.isoformat(), "override-capacity": "7", "override-reason": "会員用",
    })
    assert response.status_code == 302
    assert _free(unit.id, day) == 0
    assert not _found_by_search(site["space"].id, day)
    assert _found_by_search(site["space"].id, day + timedelta(days=7), seats=10)
    # On free dates the unit may shrink at once, too.
    other = day + timedelta(days=7)
    response = client.post(f"/operator/spaces/{site['space'].id}/overrides", data={
        "override-units": [str(unit.id)], "override-start": other.isoformat(),
        "override-end": other.isoformat(), "override-capacity": "2",
    })
    assert response.status_code == 302
    assert _free(unit.id, other) == 2
    assert not _found_by_search(site["space"].id, other, seats=3)
    assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id)).where(
        AuditEntry.action == "override.set")) == 2


def test_hours_that_would_leave_a_booking_outside_them_are_refused(client, site):
    day = _future_weekday()
    booking = _book(site["make"], site["desks"], day, 1)
    data = {"closed_on_holidays": ""}
    for weekday in range(7):
        data[f"day{weekday}-open"] = "y"
        data[f"day{weekday}-opens"] = "10:00"  # the booking starts at 9:00
        data[f"day{weekday}-closes"] = "18:00"
    response = client.post(f"/operator/spaces/{site['space'].id}/hours", data=data)
    assert response.status_code == 409
    assert booking.reference in response.get_data(as_text=True)
    db.session.expire_all()
    assert {h.opens_min for h in db.session.get(Space, site["space"].id).opening_hours} == {540}
    # Closing the booking's weekday altogether is refused as well.
    data = {f"day{w}-{k}": v for w in range(7) if w != day.weekday()
            for k, v in (("open", "y"), ("opens", "09:00"), ("closes", "18:00"))}
    assert client.post(f"/operator/spaces/{site['space'].id}/hours",
                       data=data).status_code == 409
    # Longer hours are fine.
    data = {f"day{w}-{k}": v for w in range(7)
            for k, v in (("open", "y"), ("opens", "08:00"), ("closes", "20:00"))}
    assert client.post(f"/operator/spaces/{site['space'].id}/hours", data=data).status_code == 302
    db.session.expire_all()
    assert {(h.opens_min, h.closes_min) for h in db.session.scalars(sa.select(OpeningHours))} == {
        (480, 1200)}


def test_a_booking_that_is_over_does_not_block_a_change(site):
    past = clock.today() - timedelta(days=3)
    _book(site["make"], site["desks"], past, 9)
    space_admin.update_unit(db.session, site["owner"], site["desks"], {"capacity": 1})
    db.session.commit()
    assert db.session.get(Unit, site["desks"].id).capacity == 1


# ----------------------------------------------------------------------- month, day, CSV


def test_month_view_day_list_and_csv_match_the_bookings(client, site, make):
    unit, space = site["desks"], site["space"]
    first = _future_weekday(40).replace(day=1)
    if first <= clock.today():
        first = (first + timedelta(days=32)).replace(day=1)
    acme = make.company(name="=HYPERLINK(\"http://evil\")")
    demo = make.company(name="デモ商事株式会社")
    days = {}
    d = first
    while len(days) < 2:
        if d.weekday() < 5 and not availability.is_holiday(d):
            days[len(days)] = d
        d += timedelta(days=1)
    busy, quiet = days[0], days[1]
    b1 = _book(make, unit, busy, 4, company=demo, user_id=site["owner"].id)
    b2 = make.booking(unit, at(busy, 600), at(busy, 720), 6, company=acme)  # 10:00–12:00
    b3 = _book(make, unit, quiet, 1, company=demo)
    cancelled = _book(make, unit, quiet, 5, company=demo, status=BookingStatus.CANCELLED,
                      cancel_reason="体調不良")
    closed = quiet + timedelta(days=1)
    db.session.add(Closure(unit_id=unit.id, start_date=closed, end_date=closed))
    db.session.add(CapacityOverride(unit_id=unit.id, day=quiet, capacity=8))
    db.session.commit()

    cells = {c.day: c for c in front_desk.month_view(db.session, site["owner"], unit, first.year,
                                                    first.month)}
    assert (cells[busy].capacity, cells[busy].booked, cells[busy].free, cells[busy].state,
            cells[busy].bookings) == (10, 10, 0, "full", 2)
    assert (cells[quiet].capacity, cells[quiet].booked, cells[quiet].free, cells[quiet].state,
            cells[quiet].bookings) == (8, 1, 7, "free", 1)
    assert cells[closed].state == "closed"
    untouched = next(c for c in cells.values() if c.bookings == 0 and c.state != "closed")
    assert (untouched.booked, untouched.free) == (0, 10)

    page = client.get(f"/operator/units/{unit.id}/month", query_string={
        "month": first.strftime("%Y-%m")}).get_data(as_text=True)
    # Text, not only colour: the state and the figures are written in each cell.
    assert "予約 10 / 10席" in page and "空き 0席" in page and "満席" in page
    assert "予約 1 / 8席" in page and "空き 7席" in page and "休業" in page

    page = client.get(f"/operator/spaces/{space.id}/day",
                      query_string={"day": busy.isoformat()}).get_data(as_text=True)
    assert b1.reference in page and b2.reference in page and b3.reference not in page
    assert "デモ商事株式会社" in page and site["owner"].name in page
    assert "10:00–12:00" in page and "09:00–18:00" in page
    # A day ahead: nobody can be checked in or missing yet; cancelling is offered.
    assert f"/operator/bookings/{b1.id}/check-in" not in page
    assert f"/operator/bookings/{b1.id}/no-show" not in page
    assert f"/operator/bookings/{b1.id}/cancel" in page
    page = client.get(f"/operator/spaces/{space.id}/day",
                      query_string={"day": quiet.isoformat()}).get_data(as_text=True)
    assert cancelled.reference in page and "キャンセル" in page and "体調不良" in page

    response = client.get(f"/operator/spaces/{space.id}/export.csv", query_string={
        "start": first.isoformat(), "end": quiet.isoformat()})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.data
    assert raw.startswith("\ufeff".encode())  # Excel reads UTF-8 only with the BOM
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert header[0] == "予約番号"
    by_ref = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    assert set(by_ref) == {b1.reference, b2.reference, b3.reference, cancelled.reference}
    assert by_ref[b2.reference]["会社"] == "'=HYPERLINK(\"http://evil\")"  # not a formula
    assert by_ref[b2.reference]["開始"] == f"{busy.isoformat()} 10:00"
    assert by_ref[b1.reference]["席数"] == "4"
    assert by_ref[b1.reference]["メール"] == site["owner"].email
    assert by_ref[cancelled.reference]["状態"] == "キャンセル済み"  # labels.BOOKING_STATUSES
    # A period with a bad date is a form error, not a file.
    bad = client.get(f"/operator/spaces/{space.id}/export.csv",
                     query_string={"start": quiet.isoformat(), "end": first.isoformat()})
    assert bad.status_code == 422 and "終了日は開始日以降" in bad.get_data(as_text=True)


def test_cancel_on_behalf_check_in_and_no_show(client, site, make):
    unit = site["desks"]
    today = clock.today()
    now_booking = make.booking(unit, at(today, 0), at(today + timedelta(days=1), 0), 1)
    past = make.booking(unit, at(today - timedelta(days=1), 540),
                        at(today - timedelta(days=1), 600), 1)
    customer_company = make.company()
    customer = make.user(organisation=customer_company, email="customer@example.com")
    later = _book(make, unit, _future_weekday(), 2, company=customer_company, user_id=customer.id)
    page = client.get(f"/operator/spaces/{site['space'].id}/day").get_data(as_text=True)
    assert f"/operator/bookings/{now_booking.id}/check-in" in page
    assert client.post(f"/operator/bookings/{now_booking.id}/check-in").status_code == 302
    assert client.post(f"/operator/bookings/{past.id}/no-show").status_code == 302
    # A reason is required…
    response = client.post(f"/operator/bookings/{later.id}/cancel", data={"reason": ""})
    assert response.status_code == 422 and 'id="reason-error"' in response.get_data(as_text=True)
    response = client.post(f"/operator/bookings/{later.id}/cancel", data={"reason": "停電のため"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Booking, now_booking.id).status == BookingStatus.CHECKED_IN
    assert db.session.get(Booking, past.id).status == BookingStatus.NO_SHOW
    cancelled = db.session.get(Booking, later.id)
    assert (cancelled.status, cancelled.cancel_reason) == (BookingStatus.CANCELLED, "停電のため")
    # The customer is told: a cancellation is waiting in the outbox.
    from booking.models import OutboxMessage

    sent = db.session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.booking_id == later.id)).all()
    assert ("cancellation", "customer@example.com") in {(m.kind, m.recipient) for m in sent}


def test_a_refused_front_desk_action_says_why_and_answers_409(client, site, make):
    """Check-in, no-show and cancelling on behalf, refused by the reservations service,
    answer 409 with the refusal on the page (not a redirect that says nothing), and
    change nothing."""
    unit = site["desks"]
    ahead = _book(make, unit, _future_weekday(), 1)  # not today: no check-in, no no-show
    past = make.booking(unit, at(clock.today() - timedelta(days=1), 540),
                        at(clock.today() - timedelta(days=1), 600), 1)  # over: no cancel
    gone = _book(make, unit, _future_weekday(), 1, status=BookingStatus.CANCELLED)

    response = client.post(f"/operator/bookings/{ahead.id}/check-in")
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "今はチェックインできません。" in page and 'role="alert"' in page
    assert ahead.reference in page  # the day's list, of the booking's day

    response = client.post(f"/operator/bookings/{ahead.id}/no-show")
    assert response.status_code == 409
    assert "この予約の状態では操作できません。" in response.get_data(as_text=True)

    response = client.post(f"/operator/bookings/{past.id}/cancel", data={"reason": "停電"})
    assert response.status_code == 409
    assert "この予約の状態では操作できません。" in response.get_data(as_text=True)
    response = client.post(f"/operator/bookings/{gone.id}/check-in")
    assert response.status_code == 409
    assert "この予約はキャンセル済みです。" in response.get_data(as_text=True)

    db.session.expire_all()
    assert [db.session.get(Booking, b.id).status for b in (ahead, past, gone)] == [
        BookingStatus.CONFIRMED, BookingStatus.CONFIRMED, BookingStatus.CANCELLED]
    assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id))) == 0


def _row(page: str, booking: Booking) -> str:
    """The day list's row of `booking`."""
    [row] = [r for r in re.findall(r"<tr class=\"status-.*?</tr>", page, flags=re.S)
             if booking.reference in r]
    return row


def test_the_day_list_offers_only_what_the_service_would_do(client, site, make):
    """Each row's buttons are those reservations would accept now (may_check_in,
    may_mark_no_show, may_cancel_on_behalf): nothing to cancel once a booking is over."""
    unit, space = site["desks"], site["space"]
    today = clock.today()
    yesterday = today - timedelta(days=1)
    came = make.booking(unit, at(yesterday, 540), at(yesterday, 600), 1,
                        status=BookingStatus.CHECKED_IN)
    missed = make.booking(unit, at(yesterday, 600), at(yesterday, 660), 1)
    here = make.booking(unit, at(today, 0), at(today + timedelta(days=1), 0), 1,
                        status=BookingStatus.CHECKED_IN)  # checked in, not over yet
    coming = _book(make, unit, _future_weekday(), 1)

    def row(booking: Booking) -> str:
        day = front_desk.day_of(booking).isoformat()
        page = client.get(f"/operator/spaces/{space.id}/day?day={day}").get_data(as_text=True)
        return _row(page, booking)

    cancel, check_in, no_show = "/cancel", "/check-in", "/no-show"
    past_row = row(came)
    assert cancel not in past_row and check_in not in past_row and no_show not in past_row
    assert "キャンセルする" not in past_row
    missed_row = row(missed)
    assert no_show in missed_row and cancel not in missed_row and check_in not in missed_row
    assert cancel in row(here) and check_in not in row(here)
    coming_row = row(coming)
    assert cancel in coming_row and "キャンセルする" in coming_row
    assert check_in not in coming_row and no_show not in coming_row
    # What is offered is accepted; what is not would be refused.
    assert client.post(f"/operator/bookings/{came.id}/cancel",
                       data={"reason": "停電"}).status_code == 409
    assert client.post(f"/operator/bookings/{here.id}/cancel",
                       data={"reason": "停電"}).status_code == 302


def test_calendar_feed_link_is_made_and_revoked(client, site):
    space_id = site["space"].id
    booking = _book(site["make"], site["desks"], _future_weekday(), 2)
    assert client.post(f"/operator/spaces/{space_id}/calendar").status_code == 302
    db.session.expire_all()
    secret = db.session.get(Space, space_id).calendar_secret
    assert secret and len(secret) >= 40
    page = client.get(f"/operator/spaces/{space_id}").get_data(as_text=True)
    assert f"/calendar/{secret}.ics" in page and "webcal://" in page
    feed = client.get(f"/calendar/{secret}.ics")  # the link works: the space's bookings
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    assert booking.reference.lower() in feed.get_data(as_text=True).lower()
    assert client.post(f"/operator/spaces/{space_id}/calendar/revoke").status_code == 302
    db.session.expire_all()
    assert db.session.get(Space, space_id).calendar_secret is None
    assert client.get(f"/calendar/{secret}.ics").status_code == 404


# ---------------------------------------------------------------------------------- photos


def _png(size=(64, 48), colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def _upload(client, space_id, data: bytes, name: str, alt: str = "受付"):
    # The body is built here rather than by the test client, whose encoder spools large
    # bodies to a temporary file it never closes (a ResourceWarning, an error here).
    boundary = "----console-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="alt"\r\n\r\n{alt}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return client.post(f"/operator/spaces/{space_id}/photos", data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def _photo_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(Photo.id)))


def test_photo_upload_refuses_what_is_not_a_safe_image(app, client, site):
    space_id = site["space"].id
    upload_dir = Path(app.config["UPLOAD_DIR"])
    # Not an image, whatever its name says.
    response = _upload(client, space_id, b"<?php system($_GET['c']); ?>", "photo.png")
    assert response.status_code == 422
    assert 'id="file-error"' in response.get_data(as_text=True)
    # An SVG is not taken either (it may carry script).
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    assert _upload(client, space_id, svg, "logo.svg").status_code == 422
    # Too large: over the photo limit, and over the whole request limit.
    big = _png() + b"\0" * (4 * 1024 * 1024)
    response = _upload(client, space_id, big, "big.png")
    assert response.status_code == 413 and "大きすぎ" in response.get_data(as_text=True)
    # (Announced by Content-Length, as a browser does: refused before any byte is read.)
    response = client.post(f"/operator/spaces/{space_id}/photos", data=b"--x--",
                           content_type="multipart/form-data; boundary=x",
                           environ_overrides={
                               "CONTENT_LENGTH": str(app.config["MAX_CONTENT_LENGTH"] + 1)})
    assert response.status_code == 413 and "大きすぎ" in response.get_data(as_text=True)
    # A name that tries to climb out of the upload folder.
    for name in ("../../booking/static/evil.png", "..\\..\\evil.png"):
        response = _upload(client, space_id, _png(), name)
        assert response.status_code == 422, name
    assert _photo_count() == 0
    assert not (Path(app.root_path) / "static" / "evil.png").exists()
    assert not upload_dir.exists() or not any(upload_dir.rglob("*.*"))


def test_an_accepted_photo_is_reencoded_and_shown_on_the_public_page(app, client, site):
    space = site["space"]
    # A JPEG with EXIF (e.g. a GPS position) and trailing bytes: both are dropped.
    src = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    Image.new("RGB", (3000, 1500), (10, 120, 200)).save(src, "JPEG", exif=exif.tobytes())
    payload = src.getvalue() + b"<script>alert(1)</script>"
    response = _upload(client, space.id, payload, "受付の写真.jpg", alt="受付カウンター")
    assert response.status_code == 302
    photo = db.session.scalars(sa.select(Photo)).one()
    assert re.fullmatch(r"[0-9a-f]{32}\.jpg", photo.filename)
    stored = Path(app.config["UPLOAD_DIR"]) / "photos" / photo.filename
    # Stored outside the code tree, re-encoded and scaled down.
    assert not stored.resolve().is_relative_to(Path(app.root_path).resolve())
    with Image.open(stored) as image:
        assert image.format == "JPEG" and max(image.size) == 2000
        assert 0x010F not in image.getexif()
    assert b"<script>" not in stored.read_bytes()

    page = client.get(f"/spaces/{space.slug}").get_data(as_text=True)
    assert f"/photos/{photo.filename}" in page and 'alt="受付カウンター"' in page
    with client.get(f"/photos/{photo.filename}") as served:
        assert served.status_code == 200 and served.mimetype == "image/jpeg"
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert served.data == stored.read_bytes()
    for bad in ("..%2F..%2Fpyproject.toml", "x.jpg", "0" * 32 + ".jpg", "../config.py"):
        assert client.get(f"/photos/{bad}").status_code == 404, bad
    # Deleting removes the file too.
    assert client.post(f"/operator/spaces/{space.id}/photos/{photo.id}/delete").status_code == 302
    assert not stored.exists()
    assert client.get(f"/photos/{photo.filename}").status_code == 404


# ------------------------------------------------------------------------- forms and input


def test_forms_show_errors_beside_fields_and_write_nothing(client, site):
    space, unit = site["space"], site["desks"]
    spaces_before = db.session.scalar(sa.select(sa.func.count(Space.id)))
    response = client.post(f"/operator/organisations/{site['org'].id}/spaces/new", data={
        "name": "", "kind": "coworking", "prefecture_code": "", "city": "", "address": "",
        "lat": "91", "lon": "",
    })
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for field in ("name", "prefecture_code", "city", "address", "lat"):
        assert f'id="{field}-error"' in page, field
    assert 'aria-invalid="true"' in page
    assert db.session.scalar(sa.select(sa.func.count(Space.id))) == spaces_before

    response = client.post(f"/operator/units/{unit.id}/edit", data={
        "name": "会議室", "kind": "meeting_room", "capacity": "4", "fits_people": "0",
        "price_amount": "-5", "price_per": "hour", "min_length": "3", "max_length": "2",
    })
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for field in ("capacity", "fits_people", "price_amount", "max_length"):
        assert f'id="{field}-error"' in page, field
    db.session.expire_all()
    assert db.session.get(Unit, unit.id).name == "フリーデスク"

    data = {"day0-open": "y", "day0-opens": "18:00", "day0-closes": "09:00",
            "day1-open": "y", "day1-opens": "9時", "day1-closes": "25:00"}
    response = client.post(f"/operator/spaces/{space.id}/hours", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="day0-closes-error"' in page and 'id="day1-closes-error"' in page

    response = client.post(f"/operator/spaces/{space.id}/closures", data={
        "closure-units": [str(unit.id)], "closure-start": "2030-08-16", "closure-end": "2030-08-13",
    })
    assert response.status_code == 422
    assert 'id="closure-end-error"' in response.get_data(as_text=True)
    response = client.post(f"/operator/spaces/{space.id}/overrides", data={
        "override-units": [str(unit.id)], "override-start": "2030-08-13",
        "override-end": "2030-08-13", "override-capacity": "",
    })
    assert response.status_code == 422
    assert 'id="override-capacity-error"' in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Closure.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(CapacityOverride.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id))) == 0


def test_a_space_is_created_with_coordinates_from_its_address_and_edited(client, site):
    response = client.post(f"/operator/organisations/{site['org'].id}/spaces/new", data={
        "name": "駒ヶ根テレワーク", "name_en": "Komagane Telework", "kind": "satellite_office",
        "prefecture_code": "20", "city": "駒ヶ根市", "address": "駒ヶ根市中央",
        "amenities": ["wifi", "parking"], "published": "y",
    })
    assert response.status_code == 302
    space = db.session.scalars(sa.select(Space).where(Space.name == "駒ヶ根テレワーク")).one()
    assert space.slug.startswith("komagane-telework-")
    assert space.amenities == ["wifi", "parking"]
    # Near Komagane (35.73, 137.93), not the prefecture's office in Nagano city.
    assert abs(space.lat - 35.73) < 0.1 and abs(space.lon - 137.93) < 0.1
    assert space.coordinates_approximate
    # The operator corrects the point on the map: it is no longer approximate.
    response = client.post(f"/operator/spaces/{space.id}/edit", data={
        "name": "駒ヶ根テレワーク", "kind": "satellite_office", "prefecture_code": "20",
        "city": "駒ヶ根市", "address": "駒ヶ根市中央", "lat": "35.7287", "lon": "137.9337",
        "amenities": ["wifi"], "published": "",
    })
    assert response.status_code == 302
    db.session.expire_all()
    space = db.session.get(Space, space.id)
    assert (space.lat, space.lon, space.coordinates_approximate) == (35.7287, 137.9337, False)
    assert space.published is False and space.amenities == ["wifi"]


def test_a_whole_house_booked_for_nights_is_guarded_on_every_day_it_touches(client, site, make):
    from booking.models import PricePer, UnitKind

    space = make.space(site["org"], hours=(range(7), 0, 1440), name="古民家")
    house = make.unit(space, kind=UnitKind.WHOLE_HOUSE, capacity=1, fits_people=6,
                      price_amount=25000, price_per=PricePer.NIGHT)
    first_night = _future_weekday()
    stay = make.booking(house, at(first_night, 900), at(first_night + timedelta(days=2), 600), 1)
    checkout_day = first_night + timedelta(days=2)
    # A closure on the check-out morning leaves the guests without the house.
    response = client.post(f"/operator/spaces/{space.id}/closures", data={
        "closure-units": [str(house.id)], "closure-start": checkout_day.isoformat(),
        "closure-end": checkout_day.isoformat()})
    assert response.status_code == 409 and stay.reference in response.get_data(as_text=True)
    # Day-time hours would leave the nights outside them.
    data = {f"day{w}-{k}": v for w in range(7)
            for k, v in (("open", "y"), ("opens", "09:00"), ("closes", "18:00"))}
    response = client.post(f"/operator/spaces/{space.id}/hours", data=data)
    assert response.status_code == 409 and stay.reference in response.get_data(as_text=True)
    # The day after check-out is free to close.
    after = checkout_day + timedelta(days=1)
    assert client.post(f"/operator/spaces/{space.id}/closures", data={
        "closure-units": [str(house.id)], "closure-start": after.isoformat(),
        "closure-end": after.isoformat()}).status_code == 302


def test_price_and_capacity_changes_are_audited(client, site):
    unit = site["desks"]
    response = client.post(f"/operator/units/{unit.id}/edit", data={
        "name": unit.name, "kind": "desk", "capacity": "12", "fits_people": "1",
        "price_amount": "1200", "price_per": "day", "min_length": "1", "max_length": "30",
        "lead_time_hours": "0", "cancel_deadline_hours": "24",
    })
    assert response.status_code == 302
    entries = {e.action: e for e in db.session.scalars(sa.select(AuditEntry))}
    assert entries["unit.price"].detail["old_amount"] == 1000
    assert entries["unit.price"].detail["amount"] == 1200
    assert (entries["unit.capacity"].detail["old"], entries["unit.capacity"].detail["new"]) == (10, 12)
    assert all(e.user_id == site["owner"].id and e.organisation_id == site["org"].id
               for e in entries.values())


def test_a_space_with_bookings_is_not_deleted_and_a_new_unit_can_be_added(client, site, make):
    space, unit = site["space"], site["desks"]
    _book(make, unit, _future_weekday(), 1)
    response = client.post(f"/operator/spaces/{space.id}/delete", follow_redirects=True)
    assert "予約があるため削除できません" in response.get_data(as_text=True)
    assert db.session.get(Space, space.id) is not None
    response = client.post(f"/operator/spaces/{space.id}/units/new", data={
        "name": "会議室A", "kind": "meeting_room", "capacity": "1", "fits_people": "8",
        "price_amount": "1500", "price_per": "hour", "min_length": "1", "max_length": "8",
        "lead_time_hours": "0", "cancel_deadline_hours": "24",
    })
    assert response.status_code == 302
    room = db.session.scalars(sa.select(Unit).where(Unit.name == "会議室A")).one()
    assert (room.capacity, room.fits_people, room.price_amount) == (1, 8, 1500)
    # An empty space goes.
    empty = make.space(site["org"])
    assert client.post(f"/operator/spaces/{empty.id}/delete").status_code == 302
    db.session.expire_all()
    assert db.session.get(Space, empty.id) is None


# ------------------------------------------------------------------- a cut races bookings


@pytest.mark.xdist_group("many_connections")  # see pyproject: never two at once
@pytest.mark.parametrize("app_config", [{"SQLALCHEMY_ENGINE_OPTIONS": {
    "pool_size": 14, "max_overflow": 4, "pool_timeout": 60}}])
def test_a_capacity_cut_racing_bookings_never_overbooks(app, make):
    """Ten companies book the last seats while the operator cuts the day to 7 seats: the
    cut and the bookings serialise on the unit, so the seats held never exceed what the
    day finally has, and every loser gets a clear refusal."""
    import threading

    from booking.models import User
    from booking.services.errors import DomainError
    from tests.edge import reservations

    org = make.organisation(OrgKind.OPERATOR)
    operator = make.user(organisation=org)
    unit = make.unit(make.space(org), capacity=10)
    day = _future_weekday()
    make.booking(unit, at(day, 540), at(day, 1080), 5)
    bookers = []
    for _ in range(10):
        company = make.company()
        bookers.append(make.user(organisation=company).id)
    barrier = threading.Barrier(11)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(work) -> None:
        with app.app_context():
            try:
                prepared = work()
                db.session.commit()
                barrier.wait(timeout=60)
                outcome = prepared()
            except DomainError as error:
                db.session.rollback()
                outcome = error.code
            except Exception as error:  # anything else fails the test
                outcome = f"error: {type(error).__name__}: {error}"
            finally:
                db.session.remove()
        with lock:
            outcomes.append(outcome)

    def booker(user_id):
        def prepare():
            u = db.session.get(Unit, unit.id)
            who = db.session.get(User, user_id)
            period = reservations.day_period(u, day)

            def go():
                reservations.book(db.session, u, who, [period], 1)
                return "booked"
            return go
        return prepare

    def cutter():
        s = space_admin.get_space(db.session, db.session.get(User, operator.id), unit.space_id)
        who = db.session.get(User, operator.id)

        def go():
            closures.set_override(db.session, who, [s.units[0]], day, day, 7, "会員用")
            db.session.commit()
            return "cut"
        return go

    threads = [threading.Thread(target=run, args=(booker(b),)) for b in bookers]
    threads.append(threading.Thread(target=run, args=(cutter,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    db.session.expire_all()
    held = db.session.scalar(sa.select(sa.func.sum(Booking.seats)).where(
        Booking.unit_id == unit.id, Booking.status.in_((BookingStatus.CONFIRMED,))))
    override = db.session.scalar(sa.select(CapacityOverride.capacity).where(
        CapacityOverride.unit_id == unit.id))
    seats_that_day = override if override is not None else 10
    assert held <= seats_that_day, (held, override, outcomes)
    assert ("cut" in outcomes) == (override == 7)
    assert outcomes.count("booked") == held - 5
    assert set(outcomes) <= {"booked", "cut", "not_enough_seats", "capacity_conflict", "busy"}
