"""The demo's history (booking/seeds/history.py): `flask seed` leaves reports, the day list and the
month view with real figures, made through the booking services (so seats and campaign
rules hold), and running it twice changes nothing. Also the clock's `as_of` and the
coming campaign's core day (booking/seeds/demo.py)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking import clock
from booking.extensions import db
from booking.models import (
    Booking,
    BookingStatus,
    Campaign,
    CampaignSlot,
    Eligibility,
    IdempotencyRecord,
    OutboxMessage,
    Space,
    Unit,
    User,
)
from booking.seeds import demo, history
from booking.services import availability, front_desk, reports
from booking.services.availability import TOKYO, at, tokyo_days

# ------------------------------------------------------------------------- no database


def test_as_of_runs_a_block_at_an_earlier_instant_and_gives_the_clock_back():
    before = clock.now()
    moment = datetime(2019, 7, 23, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
    with clock.as_of(moment):
        assert clock.now() == moment
        assert clock.tokyo_now().hour == 9 and clock.tokyo_now().tzinfo is not None
        assert clock.today() == date(2019, 7, 23)
        with clock.as_of(moment + timedelta(hours=15)):  # nested: the innermost wins
            assert clock.today() == date(2019, 7, 24)
        assert clock.today() == date(2019, 7, 23)
    assert clock.now() >= before and clock.now().year > 2019


def test_as_of_is_given_back_after_an_error_and_refuses_a_naive_time():
    with pytest.raises(RuntimeError), clock.as_of(datetime(2019, 7, 23, tzinfo=UTC)):
        raise RuntimeError
    assert clock.today().year > 2019
    with pytest.raises(ValueError), clock.as_of(datetime(2019, 7, 23)):  # noqa: DTZ001 — the point
        pass


def test_time_machine_still_moves_the_clock_outside_as_of():
    with time_machine.travel(datetime(2030, 1, 1, 15, 30, tzinfo=UTC), tick=False):
        assert clock.now() == datetime(2030, 1, 1, 15, 30, tzinfo=UTC)
        assert clock.today() == date(2030, 1, 2)  # already the 2nd in Tokyo
        with clock.as_of(datetime(2019, 7, 24, 3, tzinfo=UTC)):
            assert clock.today() == date(2019, 7, 24)
        assert clock.today() == date(2030, 1, 2)


@pytest.mark.parametrize(("year", "core_day"), [
    (2019, "2019-07-24"),  # a Wednesday: kept, as in the documents
    (2024, "2024-07-24"),  # a Wednesday too
    (2026, "2026-07-22"),  # 7/24 a Friday: the Wednesday two days before
    (2027, "2027-07-28"),  # 7/24 a Saturday: 7/21 is nearer but before the period (7/22)
    (2021, "2021-07-28"),  # the same calendar as 2027
    (2028, "2028-07-26"),  # 7/24 a Monday
])
def test_the_core_day_is_the_wednesday_nearest_7_24_inside_the_period(year, core_day):
    shape = demo.telework_days(year)
    assert shape["core_days"] == [core_day]
    day = date.fromisoformat(core_day)
    assert day.weekday() == 2 and shape["starts_on"] <= day <= shape["ends_on"]


# ------------------------------------------------------------------------- seeded
#
# Seeding takes seconds (a few hundred booking decisions): one test per database seeds
# (through `flask seed`, twice) and checks what it left, part by part (the helpers below).


def _row_counts() -> dict[str, int]:
    return {table.name: db.session.scalar(sa.select(sa.func.count()).select_from(table))
            for table in db.metadata.sorted_tables}


@pytest.mark.slow
def test_flask_seed_lays_out_a_history_that_keeps_the_rules(app, runner):
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0, first.output
    counts = _row_counts()
    second = runner.invoke(args=["seed"])
    assert second.exit_code == 0, second.output
    _seeding_twice_leaves_the_same_rows_and_sends_no_mail(first.output, second.output, counts)
    _the_report_the_day_list_and_the_month_view_have_figures(app.test_client())
    _the_bookings_keep_to_seats_and_campaign_rules()
    _the_plan_is_the_same_for_the_same_day()


def _last_weekday_before(day: date) -> date:
    day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _log_in(client, email: str) -> None:
    response = client.post("/account/login", data={"email": email,
                                                   "password": demo.DEMO_PASSWORD})
    assert response.status_code == 302, response.data


def _seeding_twice_leaves_the_same_rows_and_sends_no_mail(first: str, second: str,
                                                         counts: dict[str, int]) -> None:
    assert "history: organisations=6" in first and "refused" not in first
    assert "history: loaded already" in second
    assert _row_counts() == counts
    assert counts["bookings"] > 100 and counts["booking_attendees"] > 0
    assert counts["idempotency_records"] > 0  # each booking request carried its key
    # The history's mail (made-up addresses) is not left in the outbox.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.booking_id.is_not(None))) == 0
    # Its users are listed with the demo accounts (they log in with the demo password).
    for email, _company in history.accounts_listed():
        assert email in first


def _user(email: str) -> User:
    return db.session.scalar(sa.select(User).where(User.email == email))


def _slot(slug: str) -> CampaignSlot:
    return db.session.scalar(sa.select(CampaignSlot).join(Campaign).where(Campaign.slug == slug))


def _the_report_the_day_list_and_the_month_view_have_figures(client) -> None:
    # 吉川市's 2019 report (効果測定): bookings, check-ins, companies of several prefectures.
    city = _user("city@example.jp")
    campaign = _slot("telework-days-2019-yoshikawa").campaign
    report = reports.build(db.session, city, campaign)
    statuses = Counter(b.status for b in report.bookings)
    assert report.totals.bookings > 10 and statuses[BookingStatus.CHECKED_IN] > 10
    assert report.totals.no_shows > 0 and report.totals.cancelled > 0
    assert len(report.by_prefecture) >= 3 and report.totals.effect.km > 0
    assert any(d.booked > 0 for d in report.days)
    _log_in(client, "city@example.jp")
    page = client.get(f"/municipality/campaigns/{campaign.id}/report")
    assert page.status_code == 200
    assert f">{report.totals.bookings}<" in page.get_data(as_text=True)
    client.post("/account/logout")

    # エニシア静岡's day list for the last weekday: bookings, checked in by the front desk.
    operator = _user("operator@example.jp")
    enishia = db.session.scalar(sa.select(Space).where(Space.slug == "enishia-shizuoka"))
    day = _last_weekday_before(clock.today())
    sheet = front_desk.day_sheet(db.session, operator, enishia, day)
    assert len(sheet.bookings) >= 2 and sheet.seats["checked_in"] > 0
    _log_in(client, "operator@example.jp")
    page = client.get(f"/operator/spaces/{enishia.id}/day?day={day.isoformat()}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert all(b.reference in text for b in sheet.bookings)
    # Its month view of the desks for that month: seats booked on that day.
    desks = next(u for u in enishia.units if u.name == "コワーキング席")
    cells = front_desk.month_view(db.session, operator, desks, day.year, day.month)
    assert next(c for c in cells if c.day == day).booked > 0
    page = client.get(f"/operator/units/{desks.id}/month?month={day:%Y-%m}")
    assert page.status_code == 200
    client.post("/account/logout")
    # A user of a history company logs in with the demo password and sees its bookings.
    email = history.accounts_listed()[0][0]
    _log_in(client, email)
    page = client.get("/bookings")
    assert page.status_code == 200
    newest = db.session.scalars(sa.select(Booking.reference).where(
        Booking.user_id == _user(email).id).order_by(Booking.starts_at.desc()).limit(3)).all()
    assert newest and all(r in page.get_data(as_text=True) for r in newest)
    # Today and the days ahead have bookings that nothing has happened to yet.
    ahead = db.session.scalars(sa.select(Booking).where(
        Booking.starts_at >= at(clock.today(), 0))).all()
    assert ahead and all(b.status in (BookingStatus.CONFIRMED, BookingStatus.CANCELLED)
                         for b in ahead)


def _the_bookings_keep_to_seats_and_campaign_rules() -> None:
    bookings = db.session.scalars(sa.select(Booking)).all()
    holding = [b for b in bookings if b.holds_seats]
    # No unit is oversold at any moment (physical free seats never below zero).
    units = db.session.scalars(sa.select(Unit).where(Unit.id.in_({b.unit_id for b in holding}))
                               ).all()
    first = min(b.starts_at for b in holding)
    last = max(b.ends_at for b in holding)
    for start, end in ((first, at(date(2019, 10, 1), 0)), (at(clock.today() - timedelta(days=40), 0),
                                                           last)):
        lines = availability.timelines(db.session, units, start, end)
        for unit in units:
            assert all(p.physical >= 0 for p in lines[unit.id].pieces), unit.name
    # Campaign slots: never more seats a day than offered, nor per company than allowed,
    # and the outside-prefecture trial only to companies from outside.
    per_slot: dict[tuple[int, date], int] = defaultdict(int)
    per_company: dict[tuple[int, int, date], int] = defaultdict(int)
    slots = {s.id: s for s in db.session.scalars(sa.select(CampaignSlot))}
    for b in holding:
        if b.campaign_slot_id is None:
            continue
        slot = slots[b.campaign_slot_id]
        assert slot.covers(b.starts_at.astimezone(TOKYO).date(), b.starts_at.astimezone(TOKYO).date())
        if slot.eligibility == Eligibility.OUTSIDE_PREFECTURE:
            assert b.company.prefecture_code != slot.unit.space.prefecture_code
            assert b.subsidy_amount > 0
        for day in tokyo_days(b.starts_at, b.ends_at):
            per_slot[(slot.id, day)] += b.seats
            per_company[(slot.id, b.company_id, day)] += b.seats
    assert per_slot, "the 2019 campaign has bookings"
    assert all(n <= slots[sid].seats for (sid, _d), n in per_slot.items())
    assert all(n <= slots[sid].max_seats_per_company_per_day
               for (sid, _c, _d), n in per_company.items()
               if slots[sid].max_seats_per_company_per_day)
    # What became of them happened in time: checked in on the day, cancelled before it.
    for b in bookings:
        assert b.created_at < b.starts_at
        if b.status == BookingStatus.CHECKED_IN:
            assert b.checked_in_at.astimezone(TOKYO).date() == b.starts_at.astimezone(TOKYO).date()
        if b.status == BookingStatus.CANCELLED:
            deadline = b.starts_at - timedelta(hours=b.unit.cancel_deadline_hours)
            assert b.created_at <= b.cancelled_at <= deadline
        assert b.created_at <= clock.now()
    assert len({b.company_id for b in bookings}) == len(history.COMPANIES) + 1  # + デモ商事
    assert any(b.attendees for b in bookings)
    keys = db.session.scalars(sa.select(IdempotencyRecord.key)).all()
    assert keys and all(k.startswith(history.KEY_PREFIX) for k in keys)


def _the_plan_is_the_same_for_the_same_day() -> None:
    world = history.world_of(db.session)
    assert history.plan(world) == history.plan(history.world_of(db.session))
    days = {step.days[0] for step in history.plan(world)}
    assert date(2019, 7, 24) in days  # 2019 on its own dates
    assert clock.today() - timedelta(days=history.DAYS_BEFORE) <= max(days) \
        <= clock.today() + timedelta(days=history.DAYS_AFTER)  # the rest around today
