"""Recurring bookings (issue 19): "every Wednesday from … to …" and every weekday.

The rule's dates (weekday sets, closed days and holidays, the horizon, the cap); the
preview decided on the same availability the booking uses; confirm books exactly the
dates shown free, as one booking call under the unit's lock, and refuses the whole series
when one of them was taken since; a race on PostgreSQL against a competing booking;
cancel one and cancel all (the deadline respected); one mail for the series through the
real SMTP path; the .ics of a series and of one cancelled occurrence accepted by Radicale
and read by vobject (as tests/test_calendars.py does)."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import icalendar
import pytest
import sqlalchemy as sa
import vobject

from booking import clock
from booking.extensions import db
from booking.models import (
    HOLDING_STATUSES,
    Booking,
    BookingSeries,
    BookingStatus,
    Closure,
    OutboxMessage,
    PricePer,
    Unit,
    UnitKind,
    User,
)
from booking.services import calendars, mail, series
from booking.services.availability import at
from booking.services.errors import DomainError
from tests import worlds
from tests.edge import reservations as r
from tests.test_calendars import _check_text_rules
from tests.test_calendars import radicale as radicale  # the fixture, shared
from tests.worlds import next_weekday, wait_for_connections


@pytest.fixture
def app_config(smtp_port):
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}", "REMINDER_HOURS_BEFORE": 24}




@pytest.fixture
def w(make):
    out = worlds.world(make, capacity=3, owner=True, hours=(range(6), 540, 1080))
    out["room"] = make.unit(out["space"], name="会議室", kind=UnitKind.MEETING_ROOM, capacity=1,
                            price_amount=1500, price_per=PricePer.HOUR, max_length=200)
    db.session.execute(sa.delete(OutboxMessage))
    db.session.commit()
    return out


def _rule(unit: Unit, weekdays=(2,), weeks: int = 4, *, first: date | None = None,
          seats: int = 1, hours=(600, 720)) -> series.Rule:
    first = first or next_weekday(weekdays[0])
    start, end = (hours if unit.price_per == PricePer.HOUR else (None, None))
    return series.rule_for(unit, weekdays, first, first + timedelta(days=7 * weeks - 1),
                           start, end, seats)


def _held(unit_id: int) -> list[Booking]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Booking).where(
        Booking.unit_id == unit_id, Booking.status.in_(HOLDING_STATUSES))
        .order_by(Booking.starts_at)))


def _confirm(unit, user, rule, **kw) -> BookingSeries:
    seen = series.preview(db.session, unit, user, rule).free_dates
    made = series.confirm(db.session, unit, user, rule, seen, **kw)
    db.session.commit()
    return made


# --------------------------------------------------------------------------- the rule


def test_expansion_of_one_weekday_several_and_every_weekday(w):
    desks = w["desks"]
    wed = next_weekday(2)
    rule = series.rule_for(desks, [2], wed, wed + timedelta(days=27))
    assert series.expand(rule) == [wed + timedelta(days=7 * i) for i in range(4)]
    tue_thu = series.rule_for(desks, [3, 1], wed, wed + timedelta(days=13))
    days = series.expand(tue_thu)
    assert [d.weekday() for d in days] == [3, 1, 3, 1]
    assert tue_thu.weekdays == (1, 3)
    monday = next_weekday(0)
    weekdays = series.rule_for(desks, series.EVERY_WEEKDAY, monday, monday + timedelta(days=13))
    assert [d.weekday() for d in series.expand(weekdays)] == [0, 1, 2, 3, 4] * 2


def test_the_rule_refuses_what_it_cannot_be(w, make):
    desks, room = w["desks"], w["room"]
    wed = next_weekday(2)
    cases = [
        (lambda: series.rule_for(desks, [], wed, wed), "series_no_weekday", "weekdays"),
        (lambda: series.rule_for(desks, [2], wed, wed - timedelta(days=1)), "bad_dates",
         "last_date"),
        (lambda: series.rule_for(room, [2], wed, wed), "series_hours", "start_time"),
        (lambda: series.rule_for(room, [2], wed, wed, 720, 600), "bad_range", "end_time"),
        (lambda: series.rule_for(room, [2], wed, wed, 600, 720, 2), "whole_unit", "seats"),
        (lambda: series.expand(series.rule_for(desks, [2], wed + timedelta(days=1),
                                               wed + timedelta(days=6))),
         "series_no_dates", "last_date"),
    ]
    house = make.unit(w["space"], kind=UnitKind.WHOLE_HOUSE, capacity=1, price_per=PricePer.NIGHT)
    cases.append((lambda: series.rule_for(house, [2], wed, wed), "series_nights", "repeat"))
    for call, code, field in cases:
        with pytest.raises(DomainError) as refused:
            call()
        assert (refused.value.code, refused.value.field) == (code, field)


def test_the_cap_names_the_last_date_that_fits(w, app):
    monday = next_weekday(0)
    rule = series.rule_for(w["desks"], series.EVERY_WEEKDAY, monday, monday + timedelta(days=60))
    with pytest.raises(DomainError) as refused:
        series.expand(rule)
    assert refused.value.code == "series_too_many" and refused.value.field == "last_date"
    fits = date.fromisoformat(refused.value.extra["last"])
    # 26 weekdays: five weeks and a day.
    assert fits == monday + timedelta(days=35)
    assert len(series.expand(series.rule_for(w["desks"], series.EVERY_WEEKDAY, monday, fits))) \
        == series.MAX_OCCURRENCES == 26
    assert series.MAX_OCCURRENCES <= r.MAX_PERIODS
    with app.test_request_context():
        assert "26" in refused.value.message


# --------------------------------------------------------------------------- preview


def test_preview_says_closed_holiday_horizon_taken_and_free(w, make):
    desks, booker = w["desks"], w["booker"]
    space = w["space"]
    space.closed_on_holidays = True
    desks.max_days_ahead = 60
    db.session.commit()
    # Every Monday for 12 weeks: a closure, a full day, a holiday if one falls in it, and
    # the dates after the horizon (60 days).
    monday = next_weekday(0)
    rule = series.rule_for(desks, [0], monday, monday + timedelta(days=7 * 12 - 1))
    closed_day = monday + timedelta(days=7)
    full_day = monday + timedelta(days=14)
    db.session.add(Closure(unit_id=desks.id, start_date=closed_day, end_date=closed_day,
                           reason="点検"))
    make.booking(desks, *r.day_period(desks, full_day), seats=3)
    db.session.commit()
    view = series.preview(db.session, desks, booker, rule)
    states = {o.day: o.state for o in view.occurrences}
    assert states[monday] == series.State.FREE
    assert states[closed_day] == series.State.CLOSED
    assert states[full_day] == series.State.TAKEN
    latest = clock.today() + timedelta(days=60)
    from booking.services.availability import is_holiday
    for day, state in states.items():
        if day > latest:
            assert state == series.State.BEYOND, day
        elif is_holiday(day) and day not in (closed_day, full_day):
            assert state == series.State.CLOSED, day
    # The free ones say what the month view says of the same days (one availability).
    from booking.services import free_time
    for occurrence in view.occurrences:
        month = free_time.month(db.session, desks, occurrence.day.year, occurrence.day.month)
        [same] = [d for d in month.days if d.day == occurrence.day]
        if occurrence.state == series.State.FREE:
            assert same.state == free_time.State.FREE and same.seats == occurrence.seats_free
        if occurrence.state == series.State.TAKEN:
            assert same.state == free_time.State.FULL


def test_preview_is_one_availability_load(w, count_queries):
    desks, booker = w["desks"], w["booker"]
    rule = _rule(desks, weeks=20)
    desks_id = desks.id
    db.session.expire_all()
    desks = db.session.get(Unit, desks_id)
    _ = desks.space.opening_hours, desks.space.organisation
    with count_queries() as statements:
        series.preview(db.session, desks, booker, rule)
    booking_reads = [s for s in statements if "FROM bookings" in s]
    assert len(booking_reads) == 1, statements
    assert len(statements) <= 4, statements


def test_room_hours_outside_the_opening_hours_and_a_taken_hour(w, make):
    room, booker = w["room"], w["booker"]
    wed = next_weekday(2)
    make.booking(room, at(wed + timedelta(days=7), 660), at(wed + timedelta(days=7), 720))
    db.session.commit()
    view = series.preview(db.session, room, booker, _rule(room, first=wed, weeks=3))
    assert [o.state for o in view.occurrences] == [series.State.FREE, series.State.TAKEN,
                                                  series.State.FREE]
    late = series.preview(db.session, room, booker,
                          _rule(room, first=wed, weeks=1, hours=(1020, 1140)))
    assert [o.state for o in late.occurrences] == [series.State.OUTSIDE_HOURS]


# --------------------------------------------------------------------------- confirm


def test_confirm_books_exactly_the_free_dates_with_one_mail(w, make, smtp_server):
    desks, booker = w["desks"], w["booker"]
    wed = next_weekday(2)
    make.booking(desks, *r.day_period(desks, wed + timedelta(days=7)), seats=3)
    rule = _rule(desks, first=wed, weeks=4, seats=2)
    made = _confirm(desks, booker, rule, attendees=["hanako@example.jp"], note="毎週伺います")
    held = [b for b in _held(desks.id) if b.series_id == made.id]
    assert [b.starts_at.date() for b in held] == [wed, wed + timedelta(days=14),
                                                  wed + timedelta(days=21)]
    assert all(b.seats == 2 and b.status == BookingStatus.CONFIRMED for b in held)
    assert made.weekdays == [2] and made.first_date == wed and made.seats == 2
    assert made.last_date == wed + timedelta(days=21)
    # One confirmation for the series per person (not one per date), the reminders of
    # each date, one notice to the operator's owner.
    kinds = sorted(db.session.execute(sa.select(OutboxMessage.kind, OutboxMessage.recipient))
                   .all())
    assert [k for k in kinds if k[0] == "series_confirmation"] == [
        ("series_confirmation", "booker@example.jp"), ("series_confirmation", "hanako@example.jp")]
    assert not [k for k in kinds if k[0] == "confirmation"]
    assert len([k for k in kinds if k[0] == "reminder"]) == 6
    assert [k for k in kinds if k[0].startswith("operator_")] == [
        ("operator_series_confirmation", w["owner"].email)]
    counts = mail.run_once(db.session)
    assert counts["sent"] == 3
    got = {str(m["To"]): m for m in smtp_server.parsed()}
    booker_mail = got["booker@example.jp"]
    assert "定期予約確定" in str(booker_mail["Subject"])
    text = booker_mail.get_body(("plain",)).get_content()
    for b in held:
        assert b.reference in text
    [calendar_part] = [p for p in booker_mail.walk() if p.get_content_type() == "text/calendar"
                     and p.get_content_disposition() != "attachment"]
    assert calendar_part.get_param("method") == "REQUEST"
    cal = icalendar.Calendar.from_ical(calendar_part.get_payload(decode=True))
    [master] = [e for e in cal.walk("VEVENT") if "RECURRENCE-ID" not in e]
    assert master["UID"] == made.uid
    assert master["RRULE"]["FREQ"] == ["WEEKLY"] and master["RRULE"]["BYDAY"] == ["WE"]
    exdates = [d.dt for ex in (master.get("EXDATE") if isinstance(master.get("EXDATE"), list)
                               else [master["EXDATE"]]) for d in ex.dts]
    assert [d.date() for d in exdates] == [wed + timedelta(days=7)]
    operator_text = got[w["owner"].email].get_body(("plain",)).get_content()
    assert "毎週伺います" in operator_text and "デモ商事" in operator_text


def test_a_date_taken_since_the_preview_refuses_the_whole_series(w, make):
    desks, booker = w["desks"], w["booker"]
    rule = _rule(desks, weeks=4, seats=2)
    seen = series.preview(db.session, desks, booker, rule).free_dates
    taken = seen[2]
    make.booking(desks, *r.day_period(desks, taken), seats=2)  # someone else, meanwhile
    with pytest.raises(DomainError) as refused:
        series.confirm(db.session, desks, booker, rule, seen)
    db.session.rollback()
    assert refused.value.code == "series_date_taken"
    assert refused.value.extra["date"] == taken.isoformat()
    assert [b.seats for b in _held(desks.id)] == [2]  # only the competitor's
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BookingSeries)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_a_date_taken_under_the_lock_is_named_too(w, make, monkeypatch):
    """The competitor books between the service's own check and the lock: book() refuses
    under the lock and the series names the date."""
    desks, booker = w["desks"], w["booker"]
    rule = _rule(desks, weeks=3, seats=3)
    seen = series.preview(db.session, desks, booker, rule).free_dates
    real_preview = series.preview
    calls = []

    def preview_then_competitor(*args, **kw):
        out = real_preview(*args, **kw)
        if not calls:
            make.booking(desks, *r.day_period(desks, seen[1]), seats=1)
        calls.append(1)
        return out

    monkeypatch.setattr(series, "preview", preview_then_competitor)
    with pytest.raises(DomainError) as refused:
        series.confirm(db.session, desks, booker, rule, seen)
    db.session.rollback()
    assert refused.value.code == "series_date_taken"
    assert refused.value.extra["date"] == seen[1].isoformat()
    assert [b.seats for b in _held(desks.id)] == [1]


def test_a_series_on_a_members_only_unit_is_refused_before_anything(w, make):
    desks = w["desks"]
    desks.members_only = True
    db.session.commit()
    with pytest.raises(DomainError) as refused:
        series.preview(db.session, desks, w["booker"], _rule(desks))
    assert refused.value.code == "members_only"


@pytest.mark.xdist_group("many_connections")
def test_race_a_series_against_a_competing_booking_on_postgresql(app, w, make, backend):
    if backend != "postgresql":
        pytest.skip("a race with real threads and separate sessions: PostgreSQL")
    desks, booker = w["desks"], w["booker"]
    other = make.user("rival@example.jp", organisation=make.company(name="競合商事"))
    rule = _rule(desks, weeks=6, seats=2)
    seen = series.preview(db.session, desks, booker, rule).free_dates
    contested = seen[3]
    ids = (desks.id, booker.id, other.id)
    db.session.commit()
    outcomes: dict[str, str] = {}
    rounds = 10
    wait_for_connections(4)
    for attempt in range(rounds):
        barrier = threading.Barrier(2)

        def run_series(attempt=attempt, barrier=barrier) -> None:
            with app.app_context():
                try:
                    unit, user = db.session.get(Unit, ids[0]), db.session.get(User, ids[1])
                    db.session.commit()
                    barrier.wait(timeout=30)
                    series.confirm(db.session, unit, user, rule, seen)
                    db.session.commit()
                    outcomes[f"series{attempt}"] = "booked"
                except DomainError as error:
                    outcomes[f"series{attempt}"] = error.code
                finally:
                    db.session.remove()

        def run_rival(attempt=attempt, barrier=barrier) -> None:
            with app.app_context():
                try:
                    unit, user = db.session.get(Unit, ids[0]), db.session.get(User, ids[2])
                    period = r.day_period(unit, contested)
                    db.session.commit()
                    barrier.wait(timeout=30)
                    r.book(db.session, unit, user, [period], 2)
                    outcomes[f"rival{attempt}"] = "booked"
                except DomainError as error:
                    outcomes[f"rival{attempt}"] = error.code
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=run_series), threading.Thread(target=run_rival)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        # The database afterwards: never over capacity on any date, the series all or none.
        held = _held(ids[0])
        for day in seen:
            on_day = sum(b.seats for b in held if b.starts_at.astimezone(clock.TOKYO).date() == day)
            assert on_day <= 3, (attempt, day, on_day)
        in_series = [b for b in held if b.series_id is not None]
        series_rows = db.session.scalar(sa.select(sa.func.count()).select_from(BookingSeries))
        if outcomes[f"series{attempt}"] == "booked":
            assert outcomes[f"rival{attempt}"] == "not_enough_seats"
            assert len(in_series) == len(seen) and series_rows == 1
        else:
            assert outcomes[f"series{attempt}"] == "series_date_taken", outcomes
            assert outcomes[f"rival{attempt}"] == "booked"
            assert in_series == [] and series_rows == 0
        # Afresh for the next round.
        db.session.execute(sa.delete(OutboxMessage))
        db.session.execute(sa.update(Booking).values(series_id=None))
        db.session.execute(sa.delete(Booking))
        db.session.execute(sa.delete(BookingSeries))
        from booking.models import UnitLoad
        db.session.execute(sa.delete(UnitLoad))
        db.session.commit()
    assert set(outcomes.values()) <= {"booked", "not_enough_seats", "series_date_taken"}


# --------------------------------------------------------------------------- cancel


def test_cancel_one_occurrence_sends_its_cancel_with_the_recurrence_id(w, smtp_server):
    desks, booker = w["desks"], w["booker"]
    made = _confirm(desks, booker, _rule(desks, weeks=3))
    db.session.execute(sa.delete(OutboxMessage))
    db.session.commit()
    second = sorted(made.bookings, key=lambda b: b.starts_at)[1]
    series.cancel_one(db.session, made, second.reference, booker)
    db.session.commit()
    assert second.status == BookingStatus.CANCELLED
    assert [b.status for b in _held(desks.id)] == [BookingStatus.CONFIRMED] * 2
    mail.run_once(db.session)
    [to_booker] = [m for m in smtp_server.parsed() if str(m["To"]) == "booker@example.jp"]
    [part] = [p for p in to_booker.walk() if p.get_content_type() == "text/calendar"
            and p.get_content_disposition() != "attachment"]
    assert part.get_param("method") == "CANCEL"
    data = part.get_payload(decode=True)
    _check_text_rules(data)
    [event] = icalendar.Calendar.from_ical(data).walk("VEVENT")
    assert event["UID"] == made.uid
    assert event["STATUS"] == "CANCELLED"
    assert event["RECURRENCE-ID"].dt == second.starts_at
    assert event["SEQUENCE"] == 1
    vobject.readOne(data.decode(), validate=True)


def test_cancel_all_leaves_those_past_the_deadline_and_says_so(w, make):
    desks, booker = w["desks"], w["booker"]
    desks.cancel_deadline_hours = 24 * 9  # the first date (in 7 to 13 days) is past it
    db.session.commit()
    first = next_weekday(2, days=7)
    if (first - clock.today()).days > 8:
        desks.cancel_deadline_hours = 24 * ((first - clock.today()).days + 1)
        db.session.commit()
    made = _confirm(desks, booker, _rule(desks, first=first, weeks=4), accept_late=True)
    db.session.execute(sa.delete(OutboxMessage))
    db.session.commit()
    done = series.cancel_all(db.session, made, booker, reason="プロジェクト終了")
    db.session.commit()
    assert [b.starts_at.date() for b in done.kept] == [first]
    assert len(done.cancelled) == 3
    statuses = [b.status for b in sorted(db.session.get(BookingSeries, made.id).bookings,
                                         key=lambda b: b.starts_at)]
    assert statuses == [BookingStatus.CONFIRMED] + [BookingStatus.CANCELLED] * 3
    # One mail to the booker: the series again, the cancelled dates excluded.
    rows = list(db.session.scalars(sa.select(OutboxMessage).where(
        ~OutboxMessage.kind.startswith("operator_"))))
    assert [(row.kind, row.recipient) for row in rows] == [("series_update", "booker@example.jp")]
    # A second cancel-all cancels nothing more: the kept one is past its deadline.
    again = series.cancel_all(db.session, db.session.get(BookingSeries, made.id), booker)
    assert again.cancelled == [] and len(again.kept) == 1


def test_cancel_all_of_a_series_cancels_every_occurrence_and_the_event(w, smtp_server):
    desks, booker = w["desks"], w["booker"]
    made = _confirm(desks, booker, _rule(desks, weeks=3))
    db.session.execute(sa.delete(OutboxMessage))
    db.session.commit()
    done = series.cancel_all(db.session, made, booker)
    db.session.commit()
    assert len(done.cancelled) == 3 and done.kept == []
    assert _held(desks.id) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "reminder")) == 0
    mail.run_once(db.session)
    [msg] = [m for m in smtp_server.parsed() if str(m["To"]) == "booker@example.jp"]
    [part] = [p for p in msg.walk() if p.get_content_type() == "text/calendar"
            and p.get_content_disposition() != "attachment"]
    assert part.get_param("method") == "CANCEL"
    [event] = icalendar.Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")
    assert event["UID"] == made.uid and event["STATUS"] == "CANCELLED"
    assert "RECURRENCE-ID" not in event and event["SEQUENCE"] == 1


def test_cancel_all_offers_the_freed_seats_to_the_waitlist(w, make):
    desks, booker = w["desks"], w["booker"]
    from booking.models import WaitlistEntry, WaitlistStatus
    from booking.services import waitlist

    made = _confirm(desks, booker, _rule(desks, weeks=2, seats=3))  # every seat, each date
    first = sorted(made.bookings, key=lambda b: b.starts_at)[0]
    other = make.user("waiting@example.jp", organisation=make.company(name="待機商事"))
    entry = waitlist.join(db.session, other, desks, (first.starts_at, first.ends_at), 1)
    db.session.commit()
    series.cancel_all(db.session, made, booker)
    db.session.commit()
    assert db.session.get(WaitlistEntry, entry.id).status == WaitlistStatus.OFFERED


def test_strangers_cannot_see_or_cancel_a_series(w, make):
    desks, booker = w["desks"], w["booker"]
    made = _confirm(desks, booker, _rule(desks, weeks=2))
    stranger = make.user("stranger@example.jp", organisation=make.company())
    with pytest.raises(DomainError) as refused:
        series.find(db.session, made.id, stranger)
    assert refused.value.status == 404
    assert series.find(db.session, made.id, w["owner"]).id == made.id  # the operator


# --------------------------------------------------------------------------- calendars


def test_series_and_cancelled_occurrence_ics_accepted_by_radicale_and_vobject(w, make,
                                                                              radicale):
    room, booker = w["room"], w["booker"]
    wed = next_weekday(2)
    # A Wednesday taken by someone else: EXDATE.
    rival = make.user("rival@example.jp", organisation=make.company(name="競合商事"))
    r.book(db.session, room, rival, [r.hours_period(wed + timedelta(days=7), 600, 720)], 1)
    made = _confirm(room, booker, _rule(room, first=wed, weeks=4))
    request_ics = calendars.series_ics(made, calendars.METHOD_REQUEST)
    _check_text_rules(request_ics)
    parsed = vobject.readOne(request_ics.decode(), validate=True)
    starts = list(parsed.vevent.getrruleset(addRDate=True))
    assert [s.date() for s in starts] == [wed, wed + timedelta(days=14), wed + timedelta(days=21)]
    assert all((s.hour, s.minute) == (10, 0) for s in starts)
    assert parsed.vevent.dtstart.value.tzinfo is not None
    cal = radicale.new_calendar()
    item = f"{cal}{made.uid.split('@')[0]}.ics"
    radicale.put(item, request_ics)
    assert made.uid.encode() in radicale.get(item)
    # One occurrence cancelled: its CANCEL (RECURRENCE-ID), and the series as it is now.
    occurrence = sorted(made.bookings, key=lambda b: b.starts_at)[1]
    r.cancel(db.session, occurrence, booker)
    cancel_ics = calendars.booking_ics(occurrence, calendars.METHOD_CANCEL)
    _check_text_rules(cancel_ics)
    cancelled = vobject.readOne(cancel_ics.decode(), validate=True)
    assert cancelled.vevent.uid.value == made.uid
    assert cancelled.vevent.recurrence_id.value == occurrence.starts_at
    assert cancelled.vevent.status.value == "CANCELLED"
    updated = calendars.series_ics(db.session.get(BookingSeries, made.id),
                                   calendars.METHOD_REQUEST)
    radicale.put(item, updated)  # the same resource, as a CalDAV client updates it
    stored = vobject.readOne(radicale.get(item).decode(), validate=True)
    assert [s.date() for s in stored.vevent.getrruleset(addRDate=True)] == [
        wed, wed + timedelta(days=21)]
    # The CANCEL of the occurrence alone, as a calendar that only ever saw it keeps it
    # (another collection: Radicale refuses a second resource with the series' UID).
    other = f"{radicale.new_calendar()}occurrence-{occurrence.reference}.ics"
    radicale.put(other, cancel_ics)
    assert b"RECURRENCE-ID" in radicale.get(other)
    # The series page's download: PUBLISH, no attendees.
    download = calendars.series_ics(made, calendars.METHOD_PUBLISH)
    assert b"ATTENDEE" not in download and b"METHOD:PUBLISH" in download
    vobject.readOne(download.decode(), validate=True)


def test_day_units_with_other_hours_on_some_weekdays_get_overrides(w, make):
    desks, booker = w["desks"], w["booker"]
    from booking.models import OpeningHours
    hours = db.session.scalar(sa.select(OpeningHours).where(
        OpeningHours.space_id == w["space"].id, OpeningHours.weekday == 4))
    hours.closes_min = 900  # Fridays until 15:00
    db.session.commit()
    monday = next_weekday(0)
    made = _confirm(desks, booker, series.rule_for(desks, series.EVERY_WEEKDAY, monday,
                                                    monday + timedelta(days=4)))
    data = calendars.series_ics(made, calendars.METHOD_REQUEST)
    parsed = vobject.readOne(data.decode(), validate=True)
    events = parsed.vevent_list
    overrides = [e for e in events if hasattr(e, "recurrence_id")]
    assert len(overrides) == 1
    [friday] = overrides
    assert friday.dtend.value.hour == 15
    assert friday.recurrence_id.value.date() == monday + timedelta(days=4)


# --------------------------------------------------------------------------- pages


def _form(rule_first: date, last: date, **extra) -> dict:
    return {"repeat": "weekly", "weekdays": [str(rule_first.weekday())],
            "first_date": rule_first.isoformat(), "last_date": last.isoformat(),
            "seats": "1", "attendees": "", "note": "", **extra}


def test_pages_preview_confirm_show_and_cancel(client, login, w, make):
    desks, booker = w["desks"], w["booker"]
    login(booker)
    wed = next_weekday(2)
    make.booking(desks, *r.day_period(desks, wed + timedelta(days=7)), seats=3)
    # The entry from the booking form.
    page = client.get(f"/bookings/new?unit_id={desks.id}")
    assert f"/series/new?unit_id={desks.id}".encode() in page.data
    assert "毎週の予約" in page.get_data(as_text=True)
    form = client.get(f"/series/new?unit_id={desks.id}&date={wed.isoformat()}")
    assert form.status_code == 200
    data = _form(wed, wed + timedelta(days=20), preview="1")
    shown = client.post(f"/series/new?unit_id={desks.id}", data=data)
    text = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "空きなし" in text and "予約できます" in text
    assert "2日分を予約する" in text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BookingSeries)) == 0
    seen = ",".join(d.isoformat() for d in (wed, wed + timedelta(days=14)))
    assert f'value="{seen}"' in text
    done = client.post(f"/series/new?unit_id={desks.id}",
                       data={**_form(wed, wed + timedelta(days=20)), "seen": seen, "confirm": "1"})
    assert done.status_code == 302
    made = db.session.scalar(sa.select(BookingSeries))
    assert done.headers["Location"].endswith(f"/series/{made.id}")
    page = client.get(f"/series/{made.id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "この日をキャンセル" in text
    first = sorted(made.bookings, key=lambda b: b.starts_at)[0]
    # The occurrence's own page links its series.
    assert f"/series/{made.id}".encode() in client.get(f"/bookings/{first.reference}").data
    assert client.get(f"/series/{made.id}.ics").status_code == 200
    gone = client.post(f"/series/{made.id}/occurrences/{first.reference}/cancel")
    assert gone.status_code == 302
    db.session.expire_all()
    assert db.session.get(Booking, first.id).status == BookingStatus.CANCELLED
    confirm_page = client.get(f"/series/{made.id}/cancel")
    assert confirm_page.status_code == 200
    client.post(f"/series/{made.id}/cancel", data={"reason": ""})
    db.session.expire_all()
    assert all(b.status == BookingStatus.CANCELLED
               for b in db.session.get(BookingSeries, made.id).bookings)


def test_page_refuses_a_date_taken_since_the_preview_and_shows_it_again(client, login, w, make):
    desks, booker = w["desks"], w["booker"]
    login(booker)
    wed = next_weekday(2)
    seen = ",".join(d.isoformat() for d in (wed, wed + timedelta(days=7)))
    make.booking(desks, *r.day_period(desks, wed + timedelta(days=7)), seats=3)
    refused = client.post(f"/series/new?unit_id={desks.id}",
                          data={**_form(wed, wed + timedelta(days=7)), "seen": seen,
                                "confirm": "1"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "確認後に予約が入った" in text and "空きなし" in text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BookingSeries)) == 0
    assert len(_held(desks.id)) == 1


def test_page_errors_beside_the_fields_and_strangers_get_404(client, login, w, make):
    desks, booker = w["desks"], w["booker"]
    login(booker)
    wed = next_weekday(2)
    bad = client.post(f"/series/new?unit_id={desks.id}",
                      data={**_form(wed, wed + timedelta(days=300)), "preview": "1"})
    assert bad.status_code == 422
    assert 'id="last_date-error"' in bad.get_data(as_text=True)
    none = client.post(f"/series/new?unit_id={desks.id}",
                       data={**_form(wed, wed), "weekdays": [], "preview": "1"})
    assert none.status_code == 422 and "曜日を1つ以上" in none.get_data(as_text=True)
    house = make.unit(w["space"], kind=UnitKind.WHOLE_HOUSE, capacity=1,
                      price_per=PricePer.NIGHT)
    assert client.get(f"/series/new?unit_id={house.id}").status_code == 404
    made = _confirm(desks, booker, _rule(desks, weeks=2))
    login(make.user("stranger@example.jp", organisation=make.company()))
    assert client.get(f"/series/{made.id}").status_code == 404
    assert client.post(f"/series/{made.id}/cancel").status_code == 404


def test_the_api_names_the_series_of_a_booking(client, w, make):
    desks, booker = w["desks"], w["booker"]
    from booking.services import tokens

    made = _confirm(desks, booker, _rule(desks, weeks=2))
    secret, _ = tokens.issue(db.session, booker, 1)
    db.session.commit()
    occurrence = made.bookings[0]
    got = client.get(f"/api/v1/bookings/{occurrence.reference}",
                     headers={"Authorization": f"Bearer {secret}"})
    assert got.status_code == 200 and got.json["series_id"] == made.id
    schema = client.get("/api/v1/openapi.json").json
    assert "series_id" in schema["components"]["schemas"]["Booking"]["properties"]


def test_the_operator_cancels_all_on_the_companys_behalf(w):
    desks, booker, owner = w["desks"], w["booker"], w["owner"]
    desks.cancel_deadline_hours = 24 * 60  # past for the company, not for the operator
    db.session.commit()
    made = _confirm(desks, booker, _rule(desks, weeks=3), accept_late=True)
    done = series.cancel_all(db.session, made, owner, reason="設備点検のため")
    db.session.commit()
    assert len(done.cancelled) == 3 and done.kept == []
    assert all(b.cancel_reason == "設備点検のため" for b in done.cancelled)


def test_a_changed_occurrence_keeps_its_recurrence_id(w):
    room, booker = w["room"], w["booker"]
    wed = next_weekday(2)
    made = _confirm(room, booker, _rule(room, first=wed, weeks=3))
    second = sorted(made.bookings, key=lambda b: b.starts_at)[1]
    day = wed + timedelta(days=7)
    db.session.execute(sa.delete(OutboxMessage))
    db.session.commit()
    r.change(db.session, second, booker, period=r.hours_period(day, 780, 900))
    [row] = db.session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.kind == "update", OutboxMessage.recipient == "booker@example.jp"))
    raw = mail.message_of(row)
    from email import message_from_bytes
    from email.policy import default as default_policy
    msg = message_from_bytes(raw, policy=default_policy)
    [part] = [p for p in msg.walk() if p.get_content_type() == "text/calendar"
            and p.get_content_disposition() != "attachment"]
    data = part.get_payload(decode=True)
    event = vobject.readOne(data.decode(), validate=True).vevent
    assert event.uid.value == made.uid
    assert event.recurrence_id.value == at(day, 600)  # the rule's 10:00 of that Wednesday
    assert event.dtstart.value == at(day, 780)
    whole = vobject.readOne(calendars.series_ics(db.session.get(BookingSeries, made.id),
                                                 calendars.METHOD_REQUEST).decode(),
                            validate=True)
    [override] = [e for e in whole.vevent_list if hasattr(e, "recurrence_id")]
    assert override.recurrence_id.value == at(day, 600) and override.dtstart.value == at(day, 780)


def test_libical_itip_check_of_the_series_and_its_occurrences(w, tmp_path):
    """libical (Evolution's library) checks the iTIP rules of each METHOD: the series'
    REQUEST, one occurrence's CANCEL, the series after some dates were cancelled, the
    series' CANCEL and its download."""
    from tests.test_calendars import libical_check

    room, booker = w["room"], w["booker"]
    wed = next_weekday(2)
    made = _confirm(room, booker, _rule(room, first=wed, weeks=4))
    files = {"request": calendars.series_ics(made, calendars.METHOD_REQUEST)}
    _first, second, *_rest = sorted(made.bookings, key=lambda b: b.starts_at)
    series.cancel_one(db.session, made, second.reference, booker)
    db.session.commit()
    files["cancel_one"] = calendars.booking_ics(second, calendars.METHOD_CANCEL)
    files["after_one"] = calendars.series_ics(db.session.get(BookingSeries, made.id),
                                              calendars.METHOD_REQUEST)
    files["download"] = calendars.series_ics(made, calendars.METHOD_PUBLISH)
    series.cancel_all(db.session, db.session.get(BookingSeries, made.id), booker)
    db.session.commit()
    files["cancel_all"] = calendars.series_ics(db.session.get(BookingSeries, made.id),
                                               calendars.METHOD_CANCEL)
    result = libical_check(tmp_path, files)
    assert result == {name: {"ok": True, "errors": []} for name in files}, result


def test_page_asks_to_acknowledge_dates_past_their_deadline(client, login, w):
    desks, booker = w["desks"], w["booker"]
    desks.cancel_deadline_hours = 24 * 400  # every date is past its deadline already
    db.session.commit()
    login(booker)
    wed = next_weekday(2)
    data = _form(wed, wed + timedelta(days=7))
    shown = client.post(f"/series/new?unit_id={desks.id}", data={**data, "preview": "1"})
    assert 'id="accept_late"' in shown.get_data(as_text=True)
    seen = ",".join(d.isoformat() for d in (wed, wed + timedelta(days=7)))
    refused = client.post(f"/series/new?unit_id={desks.id}",
                          data={**data, "seen": seen, "confirm": "1"})
    assert refused.status_code == 422
    assert 'id="accept_late-error"' in refused.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BookingSeries)) == 0
    done = client.post(f"/series/new?unit_id={desks.id}",
                       data={**data, "seen": seen, "confirm": "1", "accept_late": "y"})
    assert done.status_code == 302
    assert len(_held(desks.id)) == 2


def test_the_series_mail_in_english(w, smtp_server):
    desks, booker = w["desks"], w["booker"]
    wed = next_weekday(2)
    _confirm(desks, booker, _rule(desks, first=wed, weeks=2), locale="en")
    mail.run_once(db.session)
    [msg] = [m for m in smtp_server.parsed() if str(m["To"]) == "booker@example.jp"]
    assert str(msg["Subject"]).startswith("[Weekly booking confirmed]")
    assert "Every Wednesday" in str(msg["Subject"])
    text = msg.get_body(("plain",)).get_content()
    assert "Your weekly booking is confirmed." in text and "Dates booked (2)" in text
    html = msg.get_body(("html",)).get_content()
    assert '<html lang="en">' in html


def test_a_weekly_room_books_more_dates_than_its_longest_single_booking(w):
    """The unit's maximum length holds for each date of a series, not for their sum: a
    room bookable for at most 8 hours takes a 2-hour meeting every Wednesday for 8 weeks."""
    room, booker = w["room"], w["booker"]
    room.max_length = 8
    db.session.commit()
    made = _confirm(room, booker, _rule(room, weeks=8))
    assert len([b for b in _held(room.id) if b.series_id == made.id]) == 8
    # A single date longer than the maximum is still refused.
    with pytest.raises(DomainError) as too_long:
        _confirm(room, booker, _rule(room, first=next_weekday(3), weeks=1, weekdays=(3,),
                                     hours=(540, 1080)))
    db.session.rollback()
    assert too_long.value.code == "too_long"


def test_a_date_of_a_series_keeps_its_day_when_changed(w):
    """Calendars know each date of the series by its day (RECURRENCE-ID): a change of hours
    or seats is taken, a move to another day is refused and changes nothing."""
    room, booker = w["room"], w["booker"]
    wed = next_weekday(2)
    made = _confirm(room, booker, _rule(room, first=wed, weeks=2))
    first = sorted(made.bookings, key=lambda b: b.starts_at)[0]
    thursday = wed + timedelta(days=1)
    with pytest.raises(DomainError) as moved:
        r.change(db.session, first, booker, period=r.hours_period(thursday, 600, 720))
    db.session.rollback()
    assert moved.value.code == "series_date_fixed"
    db.session.expire_all()
    assert db.session.get(Booking, first.id).starts_at == at(wed, 600)
    r.change(db.session, db.session.get(Booking, first.id), booker,
             period=r.hours_period(wed, 660, 780))
    db.session.commit()
    assert db.session.get(Booking, first.id).starts_at == at(wed, 660)
