"""Issue 19, the waitlist: a company joins the line of a full unit; freed seats (a
cancellation, a change, more capacity, a reopened day, an expired or declined offer) are
offered first come first served to those whose request fits, held as a booking of status
`offered` until the company confirms or the hold runs out; nothing is booked without the
company's confirmation. Mails through the real SMTP path; races on PostgreSQL with real
threads (an offer against a direct booking for the last seat; confirm against expiry)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking import clock
from booking.extensions import db
from booking.models import (
    HOLDING_STATUSES,
    Booking,
    BookingStatus,
    OutboxMessage,
    Unit,
    User,
    WaitlistEntry,
    WaitlistStatus,
)
from booking.services import closures, mail, space_admin, waitlist
from booking.services.errors import DomainError
from tests.edge import reservations as r
from tests.worlds import future_day, wait_for_connections


@pytest.fixture
def app_config(smtp_port):
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}", "WAITLIST_HOLD_MINUTES": 120,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 8, "max_overflow": 4}}


@pytest.fixture
def w(make):
    """A desk pool of 2 seats, full on DAY (two bookings of other companies), and three
    companies that would like a seat."""
    operator = make.organisation(name="運営", name_en="Operator")
    space = make.space(operator, name="駅前オフィス", name_en="Station Office")
    unit = make.unit(space, capacity=2, name="フリー席", name_en="Hot desks")
    people = {}
    for key in ("holder1", "holder2", "first", "second", "third"):
        company = make.company(name=f"{key}社")
        people[key] = make.user(f"{key}@example.jp", organisation=company,
                                locale="en" if key == "second" else "ja")
    day = future_day(7)
    period = r.day_period(unit, day)
    held = [r.book(db.session, unit, people[k], [period], 1)[0] for k in ("holder1", "holder2")]
    return {"unit": unit, "day": day, "period": period, "held": held, **people}


def _join(w, who: str, seats: int = 1, **kw) -> WaitlistEntry:
    kw.setdefault("locale", w[who].locale)
    entry = waitlist.join(db.session, w[who], w["unit"], w["period"], seats, **kw)
    db.session.commit()
    return entry


def _cancel(w, booking: Booking) -> None:
    r.cancel(db.session, db.session.get(Booking, booking.id), db.session.get(User, booking.user_id))


def _entry(entry_id: int) -> WaitlistEntry:
    db.session.expire_all()
    entry = db.session.get(WaitlistEntry, entry_id)
    assert entry is not None
    return entry


def _held_seats(unit_id: int, period) -> int:
    return db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Booking.seats), 0)).where(
        Booking.unit_id == unit_id, Booking.status.in_(HOLDING_STATUSES),
        Booking.starts_at < period[1], Booking.ends_at > period[0])) or 0


# --------------------------------------------------------------------------- join


def test_join_a_full_unit_and_the_refusals(w, make):
    entry = _join(w, "first", note="窓際希望")
    assert entry.status == WaitlistStatus.WAITING and entry.seats == 1
    assert (entry.starts_at, entry.ends_at) == w["period"]
    # Twice for the same period: refused, nothing written.
    with pytest.raises(DomainError) as twice:
        _join(w, "first")
    assert twice.value.code == "waitlist_duplicate"
    # Seats free on another day: book instead.
    free_day = r.day_period(w["unit"], w["day"] + timedelta(days=1))
    with pytest.raises(DomainError) as free:
        waitlist.join(db.session, w["second"], w["unit"], free_day, 1)
    assert free.value.code == "waitlist_seats_free"
    # The past.
    past = r.day_period(w["unit"], clock.today() - timedelta(days=2))
    with pytest.raises(DomainError) as gone:
        waitlist.join(db.session, w["second"], w["unit"], past, 1)
    assert gone.value.code == "in_past"
    # Members only, without being a member: refused as the booking is.
    members = make.unit(w["unit"].space, capacity=1, members_only=True)
    with pytest.raises(DomainError) as members_only:
        waitlist.join(db.session, w["second"], members, r.day_period(members, w["day"]), 1)
    assert members_only.value.code == "members_only"
    # Not a company.
    with pytest.raises(DomainError) as nobody:
        waitlist.join(db.session, make.user("alone@example.jp"), w["unit"], w["period"], 1)
    assert nobody.value.code == "no_company"
    assert db.session.scalar(sa.select(sa.func.count(WaitlistEntry.id))) == 1


def test_more_seats_than_the_unit_has_on_the_day_are_refused(w, make):
    """The most a line may ask is the unit's seats on its days: an override of another
    day does not count, one of the day does."""
    owner = make.user("owner@example.jp", organisation=w["unit"].space.organisation)
    unit = db.session.get(Unit, w["unit"].id)
    closures.set_override(db.session, owner, [unit], w["day"] + timedelta(days=1),
                          w["day"] + timedelta(days=1), 5)
    db.session.commit()
    with pytest.raises(DomainError) as too_many:
        _join(w, "first", seats=3)
    assert too_many.value.code == "bad_seats"
    assert too_many.value.extra["maximum"] == 2
    closures.set_override(db.session, owner, [unit], w["day"], w["day"], 3)
    db.session.commit()
    r.book(db.session, unit, w["third"], [w["period"]], 1)  # the day's third seat taken
    with pytest.raises(DomainError) as still_too_many:
        _join(w, "first", seats=4)
    assert still_too_many.value.extra["maximum"] == 3
    assert _join(w, "first", seats=3).seats == 3


def test_leave_the_line(w):
    entry = _join(w, "first")
    left = waitlist.leave(db.session, w["first"], entry.id)
    db.session.commit()
    assert left.status == WaitlistStatus.LEFT
    with pytest.raises(DomainError) as again:
        waitlist.leave(db.session, w["first"], entry.id)
    assert again.value.code == "waitlist_not_waiting"
    # Somebody else's entry does not exist for them.
    with pytest.raises(DomainError) as stranger:
        waitlist.leave(db.session, w["second"], entry.id)
    assert stranger.value.code == "not_found"
    # Having left, the company may join again.
    assert _join(w, "first").status == WaitlistStatus.WAITING


# --------------------------------------------------------------------------- offers


def test_a_cancellation_offers_the_seat_to_the_first_in_line(w):
    first, second = _join(w, "first"), _join(w, "second")
    _cancel(w, w["held"][0])
    first, second = _entry(first.id), _entry(second.id)
    assert first.status == WaitlistStatus.OFFERED and second.status == WaitlistStatus.WAITING
    offer = first.offer_booking
    assert offer is not None and offer.status == BookingStatus.OFFERED
    assert offer.company_id == w["first"].company.id and offer.seats == 1
    assert first.offer_expires_at == first.offered_at + timedelta(minutes=120)
    # The offer holds the seat: nobody else can book it meanwhile.
    assert _held_seats(w["unit"].id, w["period"]) == 2
    with pytest.raises(DomainError) as full:
        r.book(db.session, w["unit"], w["third"], [w["period"]], 1)
    assert full.value.code == "not_enough_seats"


def test_a_big_request_does_not_block_the_line(w):
    big = _join(w, "first", seats=2)
    small = _join(w, "second")
    _cancel(w, w["held"][0])
    assert _entry(big.id).status == WaitlistStatus.WAITING  # keeps its place
    assert _entry(small.id).status == WaitlistStatus.OFFERED
    # Two seats free at once: both go, in order, to those who fit.
    third = _join(w, "third")
    _cancel(w, w["held"][1])
    assert _entry(big.id).status == WaitlistStatus.WAITING  # one seat free: still too big
    assert _entry(third.id).status == WaitlistStatus.OFFERED


def test_confirm_books_and_mails_the_confirmation(w, smtp_server):
    entry = _join(w, "second")  # English
    _cancel(w, w["held"][0])
    smtp_server.messages.clear()
    mail.run_once(db.session)
    offers = [m for m in smtp_server.parsed() if m["To"] == "second@example.jp"]
    assert len(offers) == 1
    text = offers[0].get_body(preferencelist=("plain",)).get_content()
    assert "Hot desks" in text and f"/waitlist/{entry.id}" in text
    assert "not booked yet" in text
    booking = waitlist.confirm(db.session, w["second"], entry.id)
    db.session.commit()
    assert booking.status == BookingStatus.CONFIRMED
    assert _entry(entry.id).status == WaitlistStatus.BOOKED
    smtp_server.messages.clear()
    mail.run_once(db.session)
    got = [m for m in smtp_server.parsed() if m["To"] == "second@example.jp"]
    assert got, "the confirmation mail"
    assert any(p.get_content_type() == "text/calendar" for p in got[0].walk())
    with pytest.raises(DomainError) as twice:
        waitlist.confirm(db.session, w["second"], entry.id)
    assert twice.value.code == "waitlist_not_offered"


def test_expiry_offers_the_seat_to_the_next_and_confirm_after_it_is_refused(w, smtp_server):
    first, second = _join(w, "first"), _join(w, "second")
    _cancel(w, w["held"][0])
    offered = _entry(first.id)
    assert waitlist.expire_offers(db.session) == 0  # not yet
    db.session.commit()
    with time_machine.travel(offered.offer_expires_at + timedelta(seconds=1), tick=False):
        # Due, the job not run yet: confirming is refused all the same.
        with pytest.raises(DomainError) as late:
            waitlist.confirm(db.session, w["first"], first.id)
        assert late.value.code == "waitlist_offer_expired"
        assert waitlist.expire_offers(db.session) == 1
        db.session.commit()
        first, second = _entry(first.id), _entry(second.id)
        assert first.status == WaitlistStatus.EXPIRED
        assert first.offer_booking.status == BookingStatus.EXPIRED
        assert second.status == WaitlistStatus.OFFERED
        assert _held_seats(w["unit"].id, w["period"]) == 2  # never more than the capacity
        with pytest.raises(DomainError) as after:
            waitlist.confirm(db.session, w["first"], first.id)
        assert after.value.code == "waitlist_offer_expired"
        smtp_server.messages.clear()
        mail.run_once(db.session)
        assert "second@example.jp" in smtp_server.recipients()


def test_decline_passes_the_offer_on(w):
    first, second = _join(w, "first"), _join(w, "second")
    _cancel(w, w["held"][0])
    waitlist.decline(db.session, w["first"], first.id)
    db.session.commit()
    assert _entry(first.id).status == WaitlistStatus.EXPIRED
    assert _entry(second.id).status == WaitlistStatus.OFFERED
    with pytest.raises(DomainError) as again:
        waitlist.decline(db.session, w["first"], first.id)
    assert again.value.code == "waitlist_not_offered"


def test_an_offer_never_outlives_the_start(w, make):
    """Half an hour before the start the operator cancels a booking on its company's
    behalf (past the company's deadline): the seat is offered until the start only."""
    operator = make.user("op@example.jp", organisation=w["unit"].space.organisation)
    first = _join(w, "first")
    start = w["period"][0]
    with time_machine.travel(start - timedelta(minutes=30), tick=False):
        r.cancel(db.session, db.session.get(Booking, w["held"][0].id), operator,
                 reason="体調不良の連絡")
        entry = _entry(first.id)
        assert entry.status == WaitlistStatus.OFFERED
        assert entry.offer_expires_at == start


def test_seats_lowered_by_a_change_and_more_capacity_are_offered(w, make):
    first, second = _join(w, "first"), _join(w, "second", seats=2)
    # The holder moves to the next day: its seat here is offered.
    booking = db.session.get(Booking, w["held"][0].id)
    r.change(db.session, booking, w["holder1"],
             period=r.day_period(w["unit"], w["day"] + timedelta(days=1)))
    assert _entry(first.id).status == WaitlistStatus.OFFERED
    # Two more seats: the two-seat request fits now.
    owner = make.user("owner@example.jp", organisation=w["unit"].space.organisation)
    space_admin.update_unit(db.session, owner, db.session.get(Unit, w["unit"].id),
                            {"capacity": 4})
    db.session.commit()
    assert _entry(second.id).status == WaitlistStatus.OFFERED
    assert _held_seats(w["unit"].id, w["period"]) == 4


def test_more_seats_on_a_day_and_a_removed_override_are_offered(w, make):
    owner = make.user("owner@example.jp", organisation=w["unit"].space.organisation)
    unit = db.session.get(Unit, w["unit"].id)
    first, second = _join(w, "first"), _join(w, "second")
    # Three seats that day: one more, offered to the first in line.
    override = closures.set_override(db.session, owner, [unit], w["day"], w["day"], 3)[0]
    db.session.commit()
    assert _entry(first.id).status == WaitlistStatus.OFFERED
    assert _entry(second.id).status == WaitlistStatus.WAITING
    waitlist.decline(db.session, w["first"], first.id)
    db.session.commit()
    assert _entry(second.id).status == WaitlistStatus.OFFERED
    waitlist.leave(db.session, w["second"], second.id)
    db.session.commit()
    # The override removed while seats are free: nothing to offer, nothing breaks.
    closures.delete_override(db.session, owner, db.session.get(type(override), override.id))
    db.session.commit()
    assert _held_seats(unit.id, w["period"]) == 2


def test_a_seat_freed_during_the_day_offers_the_rest_of_it(w, make):
    """A seat freed after the start (a no-show released, a cancellation on behalf): the
    rest of the day from a drop-in's start, held at most until the end; confirmed, it
    starts then. Once the day is over, the entry leaves the line."""
    operator = make.user("op@example.jp", organisation=w["unit"].space.organisation)
    first = _join(w, "first")
    start, end = w["period"]
    with time_machine.travel(start + timedelta(minutes=40), tick=False):
        r.cancel(db.session, db.session.get(Booking, w["held"][0].id), operator)
        entry = _entry(first.id)
        assert entry.status == WaitlistStatus.OFFERED
        offer = entry.offer_booking
        assert offer.starts_at == r.drop_in_start(clock.now()) and offer.ends_at == end
        assert entry.offer_expires_at == clock.now() + timedelta(minutes=120)
    with time_machine.travel(start + timedelta(minutes=90), tick=False):
        booked = waitlist.confirm(db.session, w["first"], first.id)
        db.session.commit()
        assert booked.status == BookingStatus.CONFIRMED
        assert booked.starts_at == r.drop_in_start(clock.now())


def test_a_released_no_show_seat_goes_to_the_line(w):
    """The unit's no-show rule releases a seat nobody checked in for (services/no_shows,
    the worker's job): the first in line is offered the rest of the day at once."""
    from booking.services import jobs

    unit = db.session.get(Unit, w["unit"].id)
    unit.no_show_release_minutes = 30
    db.session.commit()
    first = _join(w, "first")
    with time_machine.travel(w["period"][0] + timedelta(minutes=31), tick=False):
        outcome = jobs.run_due(db.session)
        assert outcome["no_show_release"] == ("ok", 2), outcome
        entry = _entry(first.id)
        assert entry.status == WaitlistStatus.OFFERED
        assert entry.offer_booking.starts_at == r.drop_in_start(clock.now())
        assert _held_seats(w["unit"].id, w["period"]) == 1  # one seat offered, one free


def test_entries_leave_the_line_when_their_period_is_over(w):
    first = _join(w, "first")
    with time_machine.travel(w["period"][1] + timedelta(minutes=1), tick=False):
        assert waitlist.expire_offers(db.session) == 0
        db.session.commit()
        assert _entry(first.id).status == WaitlistStatus.LEFT


def test_company_lists_its_entries(w):
    entry = _join(w, "first")
    assert [e.id for e in waitlist.entries_of(db.session, w["first"])] == [entry.id]
    assert waitlist.entries_of(db.session, w["second"]) == []


# --------------------------------------------------------------------------- races


def _threads(app, jobs) -> list[str]:
    barrier = threading.Barrier(len(jobs))
    results: list[str] = [""] * len(jobs)

    def run(i, job) -> None:
        with app.app_context():
            try:
                db.session.commit()
                barrier.wait(timeout=30)
                job()
                db.session.commit()
                results[i] = "done"
            except DomainError as error:
                db.session.rollback()
                results[i] = error.code
            except Exception as error:  # a failure of the test
                results[i] = f"error: {type(error).__name__}: {error}"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert not any(t.is_alive() for t in threads)
    return results


@pytest.mark.parametrize("attempt", range(5))
def test_race_an_offer_and_a_direct_booking_for_the_last_seat(app, w, backend, attempt):
    """A cancellation frees the last seat (and offers it to the line) while another
    company books it directly, at the same moment: one of them gets it, never both."""
    if backend != "postgresql":
        pytest.skip("row locks: the race is PostgreSQL's (SQLite runs one writer at a time)")
    wait_for_connections(6)
    entry = _join(w, "first")
    unit_id, booking_id, holder_id, booker_id = (w["unit"].id, w["held"][0].id,
                                                 w["holder1"].id, w["third"].id)
    period = w["period"]
    db.session.commit()

    def cancel() -> None:
        r.cancel(db.session, db.session.get(Booking, booking_id),
                 db.session.get(User, holder_id))

    def book() -> None:
        r.book(db.session, db.session.get(Unit, unit_id), db.session.get(User, booker_id),
               [period], 1)

    results = _threads(app, [cancel, book])
    assert not any(x.startswith("error") for x in results), results
    db.session.expire_all()
    assert _held_seats(unit_id, period) <= 2
    entry = _entry(entry.id)
    booked = results[1] == "done"
    # Whoever won: the direct booking, or the offer; never both, never none while free.
    assert booked != (entry.status == WaitlistStatus.OFFERED), (results, entry.status)
    assert _held_seats(unit_id, period) == 2


@pytest.mark.parametrize("attempt", range(5))
def test_race_confirm_against_expiry(app, w, backend, attempt):
    """The company confirms as the hold runs out and the expiry job runs: exactly one of
    them applies, and the seat is held once."""
    if backend != "postgresql":
        pytest.skip("row locks: the race is PostgreSQL's")
    wait_for_connections(6)
    first, second = _join(w, "first"), _join(w, "second")
    _cancel(w, w["held"][0])
    offered = _entry(first.id)
    user_id, entry_id = w["first"].id, first.id
    # Both at the instant the hold ends: expiry is due, confirmation refused as expired;
    # a moment before: the confirmation wins and the job finds nothing due.
    moment = offered.offer_expires_at - timedelta(microseconds=1) if attempt % 2 \
        else offered.offer_expires_at
    db.session.commit()
    with time_machine.travel(moment, tick=False):
        results = _threads(app, [
            lambda: waitlist.confirm(db.session, db.session.get(User, user_id), entry_id),
            lambda: waitlist.expire_offers(db.session),
        ])
    assert not any(x.startswith("error") for x in results), results
    first, second = _entry(entry_id), _entry(second.id)
    if first.status == WaitlistStatus.BOOKED:
        assert results[0] == "done" and first.offer_booking.status == BookingStatus.CONFIRMED
        assert second.status == WaitlistStatus.WAITING
    else:
        assert results[0] == "waitlist_offer_expired"
        assert first.status == WaitlistStatus.EXPIRED
        assert first.offer_booking.status == BookingStatus.EXPIRED
        assert second.status == WaitlistStatus.OFFERED
    assert _held_seats(w["unit"].id, w["period"]) == 2


@pytest.mark.parametrize("attempt", range(3))
def test_race_two_expiry_workers_and_a_direct_booking(app, w, backend, attempt):
    """The hold runs out: two workers run the expiry job (which offers the seat to the
    next in line) while another company books the seat directly. One offer expires once,
    and the seat goes to the next in line or to the direct booking, never both."""
    if backend != "postgresql":
        pytest.skip("row locks: the race is PostgreSQL's")
    wait_for_connections(8)
    first, second = _join(w, "first"), _join(w, "second")
    _cancel(w, w["held"][0])
    deadline = _entry(first.id).offer_expires_at
    unit_id, booker_id, period = w["unit"].id, w["third"].id, w["period"]
    db.session.commit()

    def book() -> None:
        r.book(db.session, db.session.get(Unit, unit_id), db.session.get(User, booker_id),
               [period], 1)

    with time_machine.travel(deadline + timedelta(seconds=1), tick=False):
        results = _threads(app, [lambda: waitlist.expire_offers(db.session),
                                 lambda: waitlist.expire_offers(db.session), book])
    assert not any(x.startswith("error") for x in results), results
    first, second = _entry(first.id), _entry(second.id)
    assert first.status == WaitlistStatus.EXPIRED
    booked = results[2] == "done"
    assert booked != (second.status == WaitlistStatus.OFFERED), (results, second.status)
    assert _held_seats(unit_id, period) == 2
    expired_offers = db.session.scalar(sa.select(sa.func.count(Booking.id)).where(
        Booking.unit_id == unit_id, Booking.status == BookingStatus.EXPIRED))
    assert expired_offers == 1


def test_offer_mail_is_in_the_outbox_with_its_kind(w):
    _join(w, "first")
    _cancel(w, w["held"][0])
    kinds = db.session.scalars(sa.select(OutboxMessage.kind).where(
        OutboxMessage.recipient == "first@example.jp")).all()
    assert waitlist.KIND_OFFER in kinds


# --------------------------------------------------------------------------- pages


def test_the_booking_form_offers_the_waitlist_and_the_company_joins(client, login, w):
    login(w["first"])
    unit, day = w["unit"], w["day"]
    form = {"first_date": day.isoformat(), "seats": "1", "note": "窓際希望"}
    refused = client.post(f"/bookings/new?unit_id={unit.id}", data=form)
    assert refused.status_code == 409
    page = refused.get_data(as_text=True)
    assert "空き待ちに登録する" in page and f"/waitlist/join?unit_id={unit.id}" in page
    joined = client.post(f"/waitlist/join?unit_id={unit.id}", data=form)
    assert joined.status_code == 302 and joined.headers["Location"].endswith("/waitlist/")
    entry = db.session.scalars(sa.select(WaitlistEntry)).one()
    assert (entry.starts_at, entry.ends_at, entry.seats, entry.note) == (*w["period"], 1, "窓際希望")
    listed = client.get("/waitlist/").get_data(as_text=True)
    assert "空き待ち中" in listed and "Hot desks" not in listed and "フリー席" in listed
    # Twice: refused, said at the top, nothing more written.
    again = client.post(f"/waitlist/join?unit_id={unit.id}", data=form)
    assert again.status_code == 409
    assert "既に登録しています" in again.get_data(as_text=True)
    # Seats free on another day: book instead.
    other = dict(form, first_date=(day + timedelta(days=1)).isoformat())
    free = client.post(f"/waitlist/join?unit_id={unit.id}", data=other)
    assert free.status_code == 409 and "このまま予約してください" in free.get_data(as_text=True)
    # A range of days: one period per entry.
    many = dict(form, last_date=(day + timedelta(days=2)).isoformat())
    ranged = client.post(f"/waitlist/join?unit_id={unit.id}", data=many)
    assert ranged.status_code == 422 and "1回分" in ranged.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(WaitlistEntry.id))) == 1


def test_the_offer_page_confirms_with_price_and_deadline(client, login, w):
    entry = _join(w, "first")
    _cancel(w, w["held"][0])
    login(w["first"])
    page = client.get(f"/waitlist/{entry.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "空きが出ました" in html and "¥1,000" in html and "確定の期限" in html
    assert "予約を確定する" in html and "お断りする" in html
    done = client.post(f"/waitlist/{entry.id}/confirm")
    booking = _entry(entry.id).offer_booking
    assert done.status_code == 302 and done.headers["Location"].endswith(booking.reference)
    assert booking.status == BookingStatus.CONFIRMED
    # Another company's member cannot see it.
    login(w["second"])
    assert client.get(f"/waitlist/{entry.id}").status_code == 404


def test_the_offer_page_declines_and_refuses_a_late_confirmation(client, login, w):
    first, second = _join(w, "first"), _join(w, "second")
    _cancel(w, w["held"][0])
    login(w["first"])
    deadline = _entry(first.id).offer_expires_at
    with time_machine.travel(deadline + timedelta(minutes=1), tick=False):
        late = client.post(f"/waitlist/{first.id}/confirm")
        assert late.status_code == 409
        assert "期限が過ぎたため" in late.get_data(as_text=True)
    assert _entry(first.id).offer_booking.status == BookingStatus.OFFERED  # nothing written
    login(w["second"])
    assert client.get(f"/waitlist/{second.id}").status_code == 200
    login(w["first"])
    declined = client.post(f"/waitlist/{first.id}/decline")
    assert declined.status_code == 302
    assert _entry(second.id).status == WaitlistStatus.OFFERED


def test_the_offered_bookings_page_says_it_is_not_booked_and_links_the_offer(client, login, w):
    entry = _join(w, "first")
    _cancel(w, w["held"][0])
    offer = _entry(entry.id).offer_booking
    login(w["first"])
    html = client.get(f"/bookings/{offer.reference}").get_data(as_text=True)
    assert "まだ予約は確定していません" in html and f"/waitlist/{entry.id}" in html
    assert f"/bookings/{offer.reference}.ics" not in html and "キャンセルする" not in html
    # Not on the company's list of bookings: on its waitlist page.
    assert offer.reference not in client.get("/bookings").get_data(as_text=True)


def test_offers_do_not_count_against_the_companys_booking_limits(app, w):
    """An offer is made by the service, not the company: with a limit of one booking a
    day, a company offered a seat still books elsewhere, and its confirmed offer then
    counts like any booking it made."""
    app.config.update(COMPANY_BOOKINGS_PER_HOUR=0, COMPANY_BOOKINGS_PER_DAY=1,
                      COMPANY_INVITATIONS_PER_DAY=0)
    entry = _join(w, "first")
    _cancel(w, w["held"][0])
    db.session.commit()
    assert _entry(entry.id).status == WaitlistStatus.OFFERED
    other_day = r.day_period(w["unit"], w["day"] + timedelta(days=1))
    made = r.book(db.session, w["unit"], w["first"], [other_day], 1)
    db.session.commit()
    assert made[0].status == BookingStatus.CONFIRMED
    with pytest.raises(DomainError) as over:
        r.book(db.session, w["unit"], w["first"],
               [r.day_period(w["unit"], w["day"] + timedelta(days=2))], 1)
    db.session.rollback()
    assert over.value.code == "company_bookings_per_day"


def test_an_entry_is_the_joiners_and_their_company_admins(w, make):
    """As for bookings: a company's member sees and answers the entries they made, its
    admin (owner) all of the company's; another member of the company does not."""
    entry = _join(w, "first")
    company_id = entry.company_id
    colleague = make.user("colleague@example.jp", organisation=w["first"].company, role="staff")
    admin = make.user("admin@first.example.jp", organisation=w["first"].company)
    assert [e.id for e in waitlist.entries_of(db.session, w["first"])] == [entry.id]
    assert [e.id for e in waitlist.entries_of(db.session, admin)] == [entry.id]
    assert waitlist.entries_of(db.session, colleague) == []
    with pytest.raises(DomainError) as hidden:
        waitlist.leave(db.session, colleague, entry.id)
    db.session.rollback()
    assert hidden.value.code == "not_found"
    assert _entry(entry.id).status == WaitlistStatus.WAITING
    waitlist.leave(db.session, admin, entry.id)
    db.session.commit()
    assert _entry(entry.id).status == WaitlistStatus.LEFT and company_id == admin.company.id
