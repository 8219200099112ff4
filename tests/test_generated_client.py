"""A client generated from /api/v1/openapi.json by openapi-python-client drives the whole
flow of shared/API.md: sign-up → token → search → book (Idempotency-Key) → .ics → cancel.

Every answer comes back as a typed model of the generated package (a dict would mean a
schema without properties), through httpx's WSGI transport into the app itself.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from booking import clock

GENERATOR = shutil.which("openapi-python-client",
                         path=str(Path(sys.executable).parent)) or shutil.which(
    "openapi-python-client")
PACKAGE = "telework_api_client"


@pytest.fixture
def generated(client, tmp_path, monkeypatch):
    if GENERATOR is None:
        pytest.fail("openapi-python-client is not installed (pip install '.[test]')")
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(client.get("/api/v1/openapi.json").json))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))  # no formatting: not needed to import
    made = subprocess.run(
        [GENERATOR, "generate", "--path", str(document), "--meta", "none",
         "--output-path", str(tmp_path / PACKAGE), "--config", str(config)],
        capture_output=True, text=True, check=False, cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Warning" not in made.stdout + made.stderr, made.stdout + made.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    yield importlib.import_module(PACKAGE)
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def test_the_whole_flow_through_a_generated_client(app, make, generated):
    models = importlib.import_module(f"{PACKAGE}.models")
    space = make.space(name="静岡テレワーク")
    unit = make.unit(space, capacity=5)
    transport = httpx.WSGITransport(app=app)
    anonymous = generated.Client(base_url="http://localhost/api/v1",
                                 httpx_args={"transport": transport})

    account = importlib.import_module(f"{PACKAGE}.api.accounts.create_account").sync(
        client=anonymous, body=models.AccountIn(
            email="client@example.jp", password="generated-client-Pass-2026", name="生成 太郎",
            company=models.CompanyIn(name="生成株式会社", prefecture="東京都",
                                     address="千代田区丸の内1-1")))
    assert isinstance(account, models.Account), account
    assert isinstance(account.company, models.AccountCompany)

    token = importlib.import_module(f"{PACKAGE}.api.accounts.create_token").sync(
        client=anonymous, body=models.TokenIn(email="client@example.jp",
                                              password="generated-client-Pass-2026"))
    assert isinstance(token, models.Token), token
    authed = generated.AuthenticatedClient(base_url="http://localhost/api/v1", token=token.token,
                                           httpx_args={"transport": transport})

    day = clock.today() + timedelta(days=5)
    found = importlib.import_module(f"{PACKAGE}.api.spaces.search_spaces").sync(
        client=anonymous, lat=space.lat, lon=space.lon, date=day)
    assert isinstance(found, models.SearchResult), found
    assert isinstance(found.query, models.SearchQuery)
    result = next(r for r in found.results if r.id == space.id)
    assert isinstance(result.units[0], models.SearchUnit)
    assert isinstance(result.units[0].price, models.Price)

    detail = importlib.import_module(f"{PACKAGE}.api.spaces.get_space").sync(
        client=anonymous, space_id=space.id)
    assert isinstance(detail, models.SpaceDetail) and detail.name == "静岡テレワーク"
    assert isinstance(detail.units[0], models.SpaceUnit)
    availability = importlib.import_module(f"{PACKAGE}.api.spaces.get_unit_availability").sync(
        client=anonymous, unit_id=unit.id, from_=day, to=day)
    assert isinstance(availability, models.UnitAvailability), availability
    assert isinstance(availability.days[0], models.AvailabilityDay)

    create = importlib.import_module(f"{PACKAGE}.api.bookings.create_booking")
    body = models.BookingIn(unit_id=unit.id, date=day, seats=2)
    booked = create.sync(client=authed, body=body, idempotency_key="flow-1")
    assert isinstance(booked, models.BookingCreated), booked
    assert isinstance(booked.price, models.BookingPrice) and booked.seats == 2
    again = create.sync_detailed(client=authed, body=body, idempotency_key="flow-1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.parsed.reference == booked.reference

    full = create.sync(client=authed, body=models.BookingIn(unit_id=unit.id, date=day, seats=4))
    assert isinstance(full, models.Problem) and full.code == "not_enough_seats"
    assert full.available == 3

    calendar = authed.get_httpx_client().get(booked.ics_url)
    assert calendar.status_code == 200 and "BEGIN:VCALENDAR" in calendar.text
    assert calendar.headers["Content-Type"].startswith("text/calendar")

    listed = importlib.import_module(f"{PACKAGE}.api.bookings.list_bookings").sync(client=authed)
    assert isinstance(listed, models.BookingList)
    assert [b.reference for b in listed.results] == [booked.reference]

    cancelled = importlib.import_module(f"{PACKAGE}.api.bookings.cancel_booking").sync(
        client=authed, reference=booked.reference, body=models.CancelIn(reason="予定変更"))
    assert isinstance(cancelled, models.Booking) and cancelled.status == models.BookingStatus.CANCELLED

    revoked = importlib.import_module(f"{PACKAGE}.api.accounts.revoke_token").sync_detailed(
        client=authed)
    assert revoked.status_code == 204
    after = importlib.import_module(f"{PACKAGE}.api.bookings.get_booking").sync(
        client=authed, reference=booked.reference)
    assert isinstance(after, models.Problem) and after.code == "unauthorized"


# --------------------------------------------------------------------------- waitlist, series


def _authed(generated, app, user):
    from booking.extensions import db
    from booking.services import tokens

    secret, _ = tokens.issue(db.session, user, 24)
    db.session.commit()
    return generated.AuthenticatedClient(base_url="http://localhost/api/v1", token=secret,
                                         httpx_args={"transport": httpx.WSGITransport(app=app)})


def test_the_waitlist_through_a_generated_client(app, make, generated):
    from booking.extensions import db
    from booking.models import User
    from tests.edge import reservations as r

    models = importlib.import_module(f"{PACKAGE}.models")
    waitlist_api = f"{PACKAGE}.api.waitlist"
    unit = make.unit(make.space(name="満席オフィス"), capacity=1)
    holder = make.user("holder@example.jp", organisation=make.company(name="先約"))
    day = clock.today() + timedelta(days=5)
    [held] = r.book(db.session, unit, holder, [r.day_period(unit, day)], 1)
    authed = _authed(generated, app, make.user("waiter@example.jp",
                                               organisation=make.company(name="待ち")))

    join = importlib.import_module(f"{waitlist_api}.join_waitlist")
    entry = join.sync(client=authed, body=models.WaitlistIn(unit_id=unit.id, date=day))
    assert isinstance(entry, models.WaitlistEntry), entry
    assert entry.status == models.WaitlistStatus.WAITING and entry.offer is None
    twice = join.sync(client=authed, body=models.WaitlistIn(unit_id=unit.id, date=day))
    assert isinstance(twice, models.Problem) and twice.code == "waitlist_duplicate"

    r.cancel(db.session, held, db.session.get(User, held.user_id))  # the seat is offered
    offered = importlib.import_module(f"{waitlist_api}.get_waitlist_entry").sync(
        client=authed, entry_id=entry.id)
    assert isinstance(offered.offer, models.WaitlistOffer) and offered.offer.live
    booked = importlib.import_module(f"{waitlist_api}.confirm_waitlist_offer").sync(
        client=authed, entry_id=entry.id, idempotency_key="take-1")
    assert isinstance(booked, models.Booking), booked
    assert booked.status == models.BookingStatus.CONFIRMED
    listed = importlib.import_module(f"{waitlist_api}.list_waitlist_entries").sync(client=authed)
    assert isinstance(listed, models.WaitlistEntries)
    assert [e.status for e in listed.results] == [models.WaitlistStatus.BOOKED]
    nothing = importlib.import_module(f"{waitlist_api}.decline_waitlist_offer").sync(
        client=authed, entry_id=entry.id)
    assert isinstance(nothing, models.Problem) and nothing.code == "waitlist_not_offered"


def test_a_series_through_a_generated_client(app, make, generated):
    models = importlib.import_module(f"{PACKAGE}.models")
    series_api = f"{PACKAGE}.api.series"
    unit = make.unit(make.space(name="毎週オフィス"), capacity=3)
    authed = _authed(generated, app, make.user("weekly@example.jp",
                                               organisation=make.company(name="毎週")))
    first = clock.today() + timedelta(days=7)
    rule = {"unit_id": unit.id, "weekdays": [first.weekday()], "first_date": first,
            "last_date": first + timedelta(days=20)}

    preview = importlib.import_module(f"{series_api}.preview_series").sync(
        client=authed, body=models.SeriesIn(**rule))
    assert isinstance(preview, models.SeriesPreview), preview
    assert isinstance(preview.occurrences[0], models.SeriesOccurrence)
    create = importlib.import_module(f"{series_api}.create_series")
    made = create.sync(client=authed, idempotency_key="weekly-1",
                       body=models.SeriesBookingIn(**rule, dates=preview.free_dates))
    assert isinstance(made, models.Series), made
    assert len(made.bookings) == 3 and isinstance(made.bookings[0], models.Booking)
    taken = create.sync(client=authed, body=models.SeriesBookingIn(
        **rule, seats=3, dates=preview.free_dates))
    assert isinstance(taken, models.Problem) and taken.code == "series_date_taken"

    one = importlib.import_module(f"{series_api}.cancel_series_booking").sync(
        client=authed, series_id=made.id, reference=made.bookings[0].reference)
    assert isinstance(one, models.Booking) and one.status == models.BookingStatus.CANCELLED
    rest = importlib.import_module(f"{series_api}.cancel_series").sync(
        client=authed, series_id=made.id)
    assert isinstance(rest, models.SeriesCancelled) and len(rest.cancelled) == 2
    missing = importlib.import_module(f"{series_api}.get_series").sync(
        client=authed, series_id=made.id + 1000)
    assert isinstance(missing, models.Problem) and missing.code == "not_found"


def test_email_verification_through_a_generated_client(app, generated):
    import email
    import re

    import sqlalchemy as sa

    from booking.extensions import db
    from booking.models import OutboxMessage

    models = importlib.import_module(f"{PACKAGE}.models")
    accounts_api = f"{PACKAGE}.api.accounts"
    anonymous = generated.Client(base_url="http://localhost/api/v1",
                                 httpx_args={"transport": httpx.WSGITransport(app=app)})
    importlib.import_module(f"{accounts_api}.create_account").sync(
        client=anonymous, body=models.AccountIn(
            email="verify@example.jp", password="generated-client-Pass-2026", name="確認 花子",
            company=models.CompanyIn(name="確認株式会社", prefecture="東京都")))
    token = importlib.import_module(f"{accounts_api}.create_token").sync(
        client=anonymous, body=models.TokenIn(email="verify@example.jp",
                                              password="generated-client-Pass-2026"))
    authed = generated.AuthenticatedClient(base_url="http://localhost/api/v1", token=token.token,
                                           httpx_args={"transport": httpx.WSGITransport(app=app)})
    status = importlib.import_module(f"{accounts_api}.get_email_verification").sync(client=authed)
    assert isinstance(status, models.EmailVerification) and status.verified is False

    verify = importlib.import_module(f"{accounts_api}.verify_email")
    wrong = verify.sync(client=authed, body=models.VerificationIn(token="not-the-link"))
    assert isinstance(wrong, models.Problem) and wrong.code == "verify_link_invalid"
    [row] = db.session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.recipient == "verify@example.jp")).all()
    text = "".join(part.get_payload(decode=True).decode()
                   for part in email.message_from_bytes(row.message).walk()
                   if part.get_content_type() == "text/plain")
    link_token = re.search(r"/account/verify/(\S+)", text).group(1)
    done = verify.sync(client=authed, body=models.VerificationIn(token=link_token))
    assert isinstance(done, models.EmailVerification) and done.verified is True
    again = importlib.import_module(f"{accounts_api}.send_verification_mail").sync_detailed(
        client=authed)
    assert again.status_code == 200 and again.parsed.verified is True
