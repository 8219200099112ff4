"""No-show release (issue 19): a unit's rule (Unit.no_show_release_minutes, off by
default) gives back a confirmed booking nobody checked in to N minutes after its start;
the worker's scheduled job does it (booking.services.jobs), safe with two workers; the
seats are in search again at once, the booker is told by mail (through the real SMTP
path), a check-in afterwards is refused with its own reason. The unit form sets it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking.extensions import db
from booking.models import (
    AuditEntry,
    Booking,
    BookingStatus,
    JobRun,
    OrgKind,
    OutboxMessage,
    PricePer,
    Unit,
    UnitKind,
    WaitlistEntry,
    WaitlistStatus,
)
from booking.services import jobs, mail, no_shows, reports, waitlist
from booking.services.availability import at
from booking.services.errors import DomainError
from booking.services.search import SearchQuery, search
from tests import worlds
from tests.edge import reservations as r
from tests.worlds import future_day, wait_for_connections

LAT, LON = 34.9738, 138.3866  # the factories' spaces
OPENS = 9 * 60


@pytest.fixture
def app_config(smtp_port, backend):
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
            # One connection per racing worker.
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 6, "max_overflow": 2}
            if backend == "postgresql" else {}}


@pytest.fixture
def w(make):
    """Two desks (released after 30 minutes), a meeting room (after 15), a house (the
    rule set, never applied), and a day three days ahead."""
    out = worlds.world(make, owner=True, capacity=2)
    out["desks"].no_show_release_minutes = 30
    out["room"] = make.unit(out["space"], name="会議室", kind=UnitKind.MEETING_ROOM, capacity=1,
                            fits_people=6, price_amount=1500, price_per=PricePer.HOUR,
                            max_length=8, no_show_release_minutes=15)
    house_space = make.space(out["org"], name="古民家の宿", hours=(range(7), 0, 1440))
    out["house"] = make.unit(house_space, name="古民家", kind=UnitKind.WHOLE_HOUSE, capacity=1,
                             fits_people=4, price_amount=20000, price_per=PricePer.NIGHT,
                             no_show_release_minutes=60)
    out["day"] = future_day(3)
    db.session.commit()
    return out


def clock_at(day, minutes: int):
    return time_machine.travel(at(day, minutes), tick=False)


def _book(w, unit, seats: int = 1, period=None, day=None, **kw) -> Booking:
    with clock_at(day or w["day"], 7 * 60):
        [booking] = r.book(db.session, unit, w["booker"],
                           [period or r.day_period(unit, w["day"])], seats, **kw)
    db.session.execute(sa.delete(OutboxMessage))  # the confirmations: not the point here
    db.session.commit()
    return booking


def _status(booking: Booking) -> BookingStatus:
    [booking_id] = sa.inspect(booking).identity  # also once the session has let it go
    db.session.expire_all()
    return db.session.get(Booking, booking_id).status


def _desk_seats_found(day, unit_id: int) -> int | None:
    found = search(db.session, SearchQuery(lat=LAT, lon=LON, radius_km=5, date=day,
                                           kind="desk"))
    seats = {u.unit.id: u.available_seats for s in found.results for u in s.units}
    db.session.rollback()
    return seats.get(unit_id)


def test_off_by_default(make):
    unit = make.unit()
    assert unit.no_show_release_minutes is None and not no_shows.releases(unit)


def test_released_after_n_minutes_not_before_and_told_by_mail(w, smtp_server):
    day, desks_id = w["day"], w["desks"].id
    booking = _book(w, w["desks"], seats=2, note="窓際希望 https://evil.example/x")
    with clock_at(day, OPENS + 29):
        assert not _desk_seats_found(day, desks_id)  # full: not offered
        assert jobs.run_due(db.session)["no_show_release"] == ("ok", 0)
        assert _status(booking) == BookingStatus.CONFIRMED
    with clock_at(day, OPENS + 30):
        assert jobs.run_due(db.session)["no_show_release"] == ("ok", 1)
        assert _status(booking) == BookingStatus.RELEASED
        # Back in search at once: both seats.
        assert _desk_seats_found(day, desks_id) == 2
        # Audited, once; a second round does nothing.
        assert jobs.run_due(db.session)["no_show_release"] == ("ok", 0)
        entries = db.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "booking.release")).all()
        assert [e.detail["reference"] for e in entries] == [booking.reference]
        # A check-in now is refused, and says why.
        with pytest.raises(DomainError) as refused:
            r.check_in(db.session, db.session.get(Booking, booking.id), w["booker"])
        assert refused.value.code == "released" and refused.value.status == 409
        # The booker is told, through the worker and SMTP.
        [row] = db.session.scalars(sa.select(OutboxMessage)).all()
        assert (row.kind, row.recipient, row.booking_id) == (
            "no_show_released", "booker@example.jp", booking.id)
        assert mail.run_once(db.session)["sent"] == 1
    [message] = smtp_server.parsed()
    assert message["To"] == "booker@example.jp"
    assert message["Subject"].startswith("【席を解放しました】テレワーク静岡")
    body = message.get_body(("plain",)).get_content()
    assert "予約 太郎 様" in body and booking.reference in body
    assert "開始から30分以内にチェックインがなかった" in body
    assert f"/bookings/{booking.reference}" in body


def test_checked_in_and_other_bookings_are_left_alone(w, make):
    day = w["day"]
    came = _book(w, w["desks"])
    with clock_at(day, OPENS + 5):
        r.check_in(db.session, came, w["booker"])
    other_space = make.space(w["org"])
    no_rule = make.unit(other_space, capacity=3)  # no rule: never released
    kept = _book(w, no_rule)
    later = _book(w, w["room"], period=r.hours_period(day, 13 * 60, 15 * 60))
    yesterday = day - timedelta(days=1)  # a stay begun yesterday at 15:00
    house = _book(w, w["house"], period=r.nights_period(w["house"], yesterday, 2),
                  day=yesterday)
    with clock_at(day, 14 * 60 + 30):
        assert no_shows.run(db.session) == 1  # the room, from 13:15
        db.session.commit()
    assert _status(came) == BookingStatus.CHECKED_IN
    assert _status(kept) == BookingStatus.CONFIRMED
    assert _status(later) == BookingStatus.RELEASED
    assert _status(house) == BookingStatus.CONFIRMED  # a house is never released


def test_released_seats_go_to_the_waitlist_at_once(w, make):
    """A room booked 13:00-15:00 and not checked in by 13:15: the company waiting for
    14:00-15:00 is offered it in the release's transaction."""
    day = w["day"]
    booking = _book(w, w["room"], period=r.hours_period(day, 13 * 60, 15 * 60))
    other = make.company(name="待ち商事")
    waiting = make.user("wait@example.jp", organisation=other)
    with clock_at(day, 8 * 60):
        entry = waitlist.join(db.session, waiting, w["room"],
                              r.hours_period(day, 14 * 60, 15 * 60), 1)
        db.session.commit()
    with clock_at(day, 13 * 60 + 15):
        assert no_shows.run(db.session) == 1
    assert _status(booking) == BookingStatus.RELEASED
    db.session.expire_all()
    entry = db.session.get(WaitlistEntry, entry.id)
    assert entry.status == WaitlistStatus.OFFERED and entry.offer_booking is not None
    assert entry.offer_booking.status == BookingStatus.OFFERED
    kinds = sorted(db.session.scalars(sa.select(OutboxMessage.kind)).all())
    assert kinds == ["no_show_released", "waitlist_offer"]


def test_a_released_campaign_booking_counts_as_a_no_show_in_the_report(w, make):
    day = w["day"]
    city = make.organisation(OrgKind.MUNICIPALITY, name="静岡市")
    clerk = make.user(organisation=city)
    campaign = make.campaign(city, starts_on=day, ends_on=day)
    slot = make.slot(campaign, w["desks"], seats=2)
    with clock_at(day, 7 * 60):
        [booking] = r.book(db.session, w["desks"], w["booker"],
                           [r.day_period(w["desks"], day, slot)], 1, slot=slot)
    with clock_at(day, OPENS + 30):
        assert no_shows.run(db.session) == 1
    assert _status(booking) == BookingStatus.RELEASED
    totals = reports.build(db.session, clerk, campaign).totals
    assert (totals.bookings, totals.no_shows, totals.cancelled) == (1, 1, 0)


def test_not_released_once_ended(w):
    day = w["day"]
    booking = _book(w, w["room"], period=r.hours_period(day, 10 * 60, 11 * 60))
    with clock_at(day, 11 * 60):  # ended: the desk marks it 来場なし if it wants
        assert no_shows.run(db.session) == 0
    assert _status(booking) == BookingStatus.CONFIRMED


def test_a_failing_job_stops_neither_the_others_nor_the_mail(w, monkeypatch, caplog):
    booking = _book(w, w["desks"])
    monkeypatch.setitem(jobs.JOBS, "broken", "tests.test_no_shows:_broken_job")
    with clock_at(w["day"], OPENS + 45):
        done = jobs.run_due(db.session)
        assert done["broken"][0] == "error" and "RuntimeError" in done["broken"][1]
        assert done["no_show_release"] == ("ok", 1)
    assert _status(booking) == BookingStatus.RELEASED
    assert "job broken failed" in caplog.text


def _broken_job(session) -> None:
    session.add(JobRun(name="broken", key="x"))
    session.flush()
    raise RuntimeError("a job that fails")


def test_the_worker_command_runs_the_jobs(w, runner, smtp_server):
    day = w["day"]
    first = _book(w, w["desks"])
    second = _book(w, w["room"], period=r.hours_period(day, 13 * 60, 14 * 60))
    with clock_at(day, OPENS + 45):
        # One round of the mail worker: the jobs first (the release and its mail), then
        # the mail, sent in the same round.
        result = runner.invoke(args=["outbox", "run", "--once"])
        assert result.exit_code == 0, result.output
        assert "sent=1" in result.output
        assert _status(first) == BookingStatus.RELEASED
    assert [str(m["To"]) for m in smtp_server.parsed()] == ["booker@example.jp"]
    with clock_at(day, 13 * 60 + 20):  # the objects of `w` are detached by now
        result = runner.invoke(args=["jobs", "run", "--once"])
        assert result.exit_code == 0, result.output
        assert "job no_show_release: ok (1)" in result.output
        assert "job digest: ok" in result.output  # past noon: nothing to do
        assert _status(second) == BookingStatus.RELEASED


def test_two_workers_release_each_booking_once(w, make, app, backend, smtp_server):
    """Two workers run the release at once (threads with their own sessions and
    connections), over and over: each booking released once, one audit entry and one
    mail each; the database checked afterwards."""
    if backend != "postgresql":
        pytest.skip("the race runs on PostgreSQL (SQLite serialises every writer)")
    day = w["day"]
    units = [w["desks"]] + [make.unit(w["space"], capacity=2, no_show_release_minutes=30)
                            for _ in range(3)]
    bookings = [_book(w, unit, seats=1) for unit in units for _ in range(2)]
    wait_for_connections(4)
    moment = at(day, OPENS + 31)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def worker() -> None:
        with time_machine.travel(moment, tick=False), app.app_context():
            try:
                barrier.wait(timeout=30)
                for _round in range(3):
                    results.append(jobs.run_due(db.session, only="no_show_release"))
            except Exception as error:  # a failure of the test
                results.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    outcomes = [x["no_show_release"] for x in results if isinstance(x, dict)]
    assert len(outcomes) == 6, results
    assert all(o[0] == "ok" for o in outcomes), outcomes
    assert sum(o[1] for o in outcomes) == len(bookings)  # each released by one worker
    db.session.expire_all()
    statuses = db.session.scalars(sa.select(Booking.status).where(
        Booking.id.in_([b.id for b in bookings]))).all()
    assert set(statuses) == {BookingStatus.RELEASED}
    audit = db.session.scalars(sa.select(AuditEntry.detail).where(
        AuditEntry.action == "booking.release")).all()
    assert sorted(d["reference"] for d in audit) == sorted(b.reference for b in bookings)
    rows = db.session.scalars(sa.select(OutboxMessage.booking_id).where(
        OutboxMessage.kind == "no_show_released")).all()
    assert sorted(rows) == sorted(b.id for b in bookings)
    with time_machine.travel(moment, tick=False):
        assert mail.run_once(db.session)["sent"] == len(bookings)
    assert len(smtp_server.messages) == len(bookings)


# --------------------------------------------------------------------------- the unit form


def test_the_unit_form_sets_and_validates_the_rule(w, client, login):
    login(w["owner"])
    unit = w["desks"]
    page = client.get(f"/operator/units/{unit.id}/edit").get_data(as_text=True)
    assert 'name="no_show_release_minutes"' in page
    assert "開始から 30 分以内にチェックインがない席を解放する" in page
    form = {"name": unit.name, "kind": "desk", "capacity": 2, "fits_people": 1,
            "price_amount": 1000, "price_per": "day", "min_length": 1, "max_length": 30,
            "lead_time_hours": 0, "cancel_deadline_hours": 24, "max_days_ahead": 365,
            "checkin": "15:00", "checkout": "10:00"}
    for bad in ("0", "1441", "abc"):
        response = client.post(f"/operator/units/{unit.id}/edit",
                               data={**form, "no_show_release_minutes": bad})
        assert response.status_code == 422, bad
    db.session.expire_all()
    assert db.session.get(Unit, unit.id).no_show_release_minutes == 30
    response = client.post(f"/operator/units/{unit.id}/edit",
                           data={**form, "no_show_release_minutes": "45"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Unit, unit.id).no_show_release_minutes == 45
    response = client.post(f"/operator/units/{unit.id}/edit",
                           data={**form, "no_show_release_minutes": ""})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Unit, unit.id).no_show_release_minutes is None
    # A house: refused beside the field.
    house = w["house"]
    response = client.post(f"/operator/units/{house.id}/edit", data={
        **form, "name": house.name, "kind": "whole_house", "capacity": 1, "fits_people": 4,
        "price_per": "night", "no_show_release_minutes": "60"})
    assert response.status_code == 422
    assert "一棟貸しの席は解放できません" in response.get_data(as_text=True)


def test_a_check_in_after_release_is_refused_on_the_day_list(w, client, login):
    day = w["day"]
    booking = _book(w, w["desks"])
    with clock_at(day, OPENS + 40):
        assert no_shows.run(db.session) == 1
        login(w["owner"])
        page = client.get(f"/operator/spaces/{w['space'].id}/day",
                          query_string={"day": day.isoformat()}).get_data(as_text=True)
        assert "未チェックインのため解放" in page  # its status, and no buttons for it
        assert f"/operator/bookings/{booking.id}/check-in" not in page
        # A page opened before the release still offers the button: refused, saying why.
        response = client.post(f"/operator/bookings/{booking.id}/check-in")
        assert response.status_code == 409
        assert "チェックインがなかったため、この予約の席は解放されました" in response.get_data(
            as_text=True)
    assert _status(booking) == BookingStatus.RELEASED


def test_the_release_mail_is_in_the_bookings_language(w, smtp_server):
    booking = _book(w, w["room"], period=r.hours_period(w["day"], 10 * 60, 12 * 60),
                    locale="en")
    with clock_at(w["day"], 10 * 60 + 15):
        assert no_shows.run(db.session) == 1
        assert mail.run_once(db.session)["sent"] == 1
    [message] = smtp_server.parsed()
    assert message["Subject"].startswith("[Seat released]")
    body = message.get_body(("plain",)).get_content()
    assert "Nobody checked in within 15 minutes" in body and booking.reference in body
    assert "様" not in body and "予約番号" not in body
