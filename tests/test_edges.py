"""Both sides of the edges that a one-line change could move unseen.

- The cancellation deadline: a minute before it the company may cancel (and change), a
  minute after it may not.
- The campaign caps per company: a cancelled booking frees its place under the cap (cancel
  then rebook), a booking being changed does not count against itself (change seats or
  times on a capped slot), while a second booking or one seat too many is still refused.
- The CSV formula guard: every character a spreadsheet starts a formula with
  (= + - @, tab, CR, LF and the full-width ＝ ＋ － ＠) is defused in the operator's export
  and in the campaign report, read back with the csv module; other text is left as typed.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking.extensions import db
from booking.models import Booking, BookingStatus, OrgKind
from booking.services.availability import TOKYO, at
from booking.services.errors import DomainError
from tests.edge import reservations as r
from tests.worlds import future_day

FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠"]
# Text that looks close but starts no formula: written as typed.
PLAIN = ["田中=1", "a+b", "'quoted", "#1", "（株）－"]


def _code(excinfo) -> str:
    return excinfo.value.code


@pytest.fixture
def site(make):
    company = make.company(name="境界商事")
    booker = make.user("edge-booker@example.jp", organisation=company)
    operator_org = make.organisation(OrgKind.OPERATOR, name="境界の運営会社")
    operator = make.user("edge-operator@example.jp", organisation=operator_org)
    space = make.space(operator_org)
    unit = make.unit(space, capacity=20, cancel_deadline_hours=24)
    return {"company": company, "booker": booker, "operator": operator, "space": space,
            "unit": unit}


# --------------------------------------------------------------------------- deadline

def _status(booking_id: int) -> BookingStatus:
    db.session.expire_all()
    return db.session.get(Booking, booking_id).status


def test_a_company_may_cancel_until_a_minute_before_the_deadline(site):
    unit, user = site["unit"], site["booker"]
    day = future_day(10)
    [booking] = r.book(db.session, unit, user, [r.day_period(unit, day)], 1)
    deadline = booking.starts_at - timedelta(hours=24)  # 09:00 Tokyo the day before
    assert deadline == at(day - timedelta(days=1), 540)
    with time_machine.travel(deadline - timedelta(minutes=1), tick=False):
        done = r.cancel(db.session, booking, user)
    assert done.status == BookingStatus.CANCELLED
    assert _status(booking.id) == BookingStatus.CANCELLED


def test_a_company_may_not_cancel_a_minute_after_the_deadline(site):
    unit, user = site["unit"], site["booker"]
    day = future_day(10)
    [booking] = r.book(db.session, unit, user, [r.day_period(unit, day)], 1)
    deadline = booking.starts_at - timedelta(hours=24)
    with time_machine.travel(deadline + timedelta(minutes=1), tick=False), \
            pytest.raises(DomainError) as refused:
        r.cancel(db.session, booking, user)
    assert _code(refused) == "cancel_deadline"
    assert refused.value.extra["deadline"] == deadline.astimezone(TOKYO).isoformat()
    assert _status(booking.id) == BookingStatus.CONFIRMED


def test_a_company_may_change_a_minute_before_the_deadline_but_not_a_minute_after(site):
    unit, user = site["unit"], site["booker"]
    day = future_day(10)
    [booking] = r.book(db.session, unit, user, [r.day_period(unit, day)], 1)
    deadline = booking.starts_at - timedelta(hours=24)
    with time_machine.travel(deadline - timedelta(minutes=1), tick=False):
        assert r.change(db.session, booking, user, seats=2).seats == 2
    with time_machine.travel(deadline + timedelta(minutes=1), tick=False), \
            pytest.raises(DomainError) as refused:
        r.change(db.session, booking, user, seats=3)
    assert _code(refused) == "cancel_deadline"
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).seats == 2


# --------------------------------------------------------------------------- campaign caps

@pytest.fixture
def capped(site, make):
    """A campaign slot over the next weeks on the site's unit; caps set per test."""
    first, last = future_day(5), future_day(40)
    campaign = make.campaign(starts_on=first, ends_on=last)
    slot = make.slot(campaign, site["unit"], seats=10)
    return {**site, "slot": slot}


def _book_slot(world, day: date, seats: int = 1) -> Booking:
    unit, slot = world["unit"], world["slot"]
    [made] = r.book(db.session, unit, world["booker"], [r.day_period(unit, day, slot)], seats,
                    slot=slot)
    return made


def _set_caps(slot, *, bookings: int | None = None, seats_per_day: int | None = None) -> None:
    slot.max_bookings_per_company = bookings
    slot.max_seats_per_company_per_day = seats_per_day
    db.session.commit()


def _holding(slot_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Booking).where(
        Booking.campaign_slot_id == slot_id, Booking.status != BookingStatus.CANCELLED))


def test_one_booking_per_company_refuses_a_second_but_a_cancelled_one_frees_the_place(capped):
    _set_caps(capped["slot"], bookings=1)
    first = _book_slot(capped, future_day(10))
    with pytest.raises(DomainError) as refused:
        _book_slot(capped, future_day(11))
    assert _code(refused) == "campaign_bookings_per_company"
    r.cancel(db.session, first, capped["booker"])
    again = _book_slot(capped, future_day(11))  # the cancelled booking no longer counts
    assert again.status == BookingStatus.CONFIRMED
    assert _holding(capped["slot"].id) == 1


def test_seats_per_day_cap_counts_no_cancelled_seats(capped):
    _set_caps(capped["slot"], seats_per_day=2)
    day = future_day(10)
    first = _book_slot(capped, day, seats=2)
    with pytest.raises(DomainError) as refused:
        _book_slot(capped, day, seats=1)
    assert _code(refused) == "campaign_seats_per_day"
    r.cancel(db.session, first, capped["booker"])
    assert _book_slot(capped, day, seats=2).seats == 2


def test_a_booking_under_a_one_booking_cap_can_change_its_seats_and_its_day(capped):
    _set_caps(capped["slot"], bookings=1)
    booking = _book_slot(capped, future_day(10))
    changed = r.change(db.session, booking, capped["booker"], seats=3)
    assert changed.seats == 3
    moved = r.change(db.session, booking, capped["booker"],
                     period=r.day_period(capped["unit"], future_day(12), capped["slot"]))
    assert moved.starts_at == at(future_day(12), 540)
    # The cap itself still holds: a second booking is refused.
    with pytest.raises(DomainError) as refused:
        _book_slot(capped, future_day(11))
    assert _code(refused) == "campaign_bookings_per_company"


def test_a_booking_can_grow_to_the_seats_per_day_cap_but_not_past_it(capped):
    _set_caps(capped["slot"], seats_per_day=3)
    booking = _book_slot(capped, future_day(10), seats=2)
    assert r.change(db.session, booking, capped["booker"], seats=3).seats == 3  # not 2 + 3
    with pytest.raises(DomainError) as refused:
        r.change(db.session, booking, capped["booker"], seats=4)
    assert _code(refused) == "campaign_seats_per_day"
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).seats == 3


# --------------------------------------------------------------------------- CSV guard

def _read_csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/csv"
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline="")))


def _names() -> list[str]:
    """One company name per formula-starting character, then the plain controls."""
    return [f"{ch}HYPERLINK(\"http://evil.example\")" for ch in FORMULA_STARTS] + PLAIN


def _expected(name: str) -> str:
    return "'" + name if name[:1] in FORMULA_STARTS else name


def _book_for_each_name(make, unit, day: date, *, slot=None) -> dict[str, str]:
    """One booking per company name; reference → the company's name."""
    made = {}
    start, end = r.day_period(unit, day)
    for name in _names():
        company = make.company(name=name)
        booking = make.booking(unit, start, end, company=company,
                               campaign_slot_id=slot.id if slot is not None else None)
        made[booking.reference] = name
    return made


def _cells_by_reference(rows: list[list[str]], references: dict[str, str],
                        column: int) -> dict[str, str]:
    found = {row[0]: row[column] for row in rows if row and row[0] in references}
    assert set(found) == set(references), "a booking is missing from the CSV"
    return found


def test_the_operator_export_defuses_every_formula_start(site, make, client, login):
    unit = site["unit"]
    day = future_day(10)
    made = _book_for_each_name(make, unit, day)
    login(site["operator"])
    response = client.get(f"/operator/spaces/{site['space'].id}/export.csv",
                          query_string={"start": day.isoformat(), "end": day.isoformat()})
    rows = _read_csv(response)
    company_column = rows[0].index("会社")
    cells = _cells_by_reference(rows, made, company_column)
    wrong = [(repr(name), repr(cells[ref])) for ref, name in made.items()
             if cells[ref] != _expected(name)]
    assert not wrong, f"cells not defused or changed: {wrong}"


def test_the_campaign_report_defuses_every_formula_start(site, make, client, login):
    municipality = make.organisation(OrgKind.MUNICIPALITY, name="境界市")
    official = make.user("edge-city@example.jp", organisation=municipality)
    day = future_day(10)
    campaign = make.campaign(municipality, starts_on=day, ends_on=day)
    slot = make.slot(campaign, site["unit"], seats=20)
    made = _book_for_each_name(make, site["unit"], day, slot=slot)
    login(official)
    rows = _read_csv(client.get(f"/municipality/campaigns/{campaign.id}/report.csv"))
    # The bookings table: reference, company, space, ... (reports.to_csv).
    cells = _cells_by_reference(rows, made, 1)
    wrong = [(repr(name), repr(cells[ref])) for ref, name in made.items()
             if cells[ref] != _expected(name)]
    assert not wrong, f"cells not defused or changed: {wrong}"
    # Numbers are written as numbers, unquoted (the seats column).
    assert {row[5] for row in rows if row and row[0] in made} == {"1"}
