"""The front desk of a space: how full each day of a month is, the day's bookings, and
what staff do with them (check-in, no-show, cancelling on the customer's behalf).

The bookings' own rules (when a check-in is possible, what a cancellation tells the
customer) are booking.services.reservations'; this module asks access whether the user
operates the booking's space, then hands over.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from booking import clock
from booking.models import Booking, BookingStatus, Space, Unit, User
from booking.services import access, availability, reservations
from booking.services.availability import TOKYO, at, regular_window

# --------------------------------------------------------------------------------------
# Loading


def bookings_between(space: Space, start: datetime, end: datetime) -> sa.Select:
    """Every booking of the space's units that meets [start, end), cancelled ones too,
    with what a list of them shows."""
    return (
        sa.select(Booking)
        .join(Unit, Booking.unit_id == Unit.id)
        .where(Unit.space_id == space.id, availability.overlaps(Booking.starts_at,
                                                                Booking.ends_at, start, end),
               # An expired waitlist offer held seats for a while and was never booked.
               Booking.status != BookingStatus.EXPIRED)
        .options(selectinload(Booking.unit), selectinload(Booking.company),
                 selectinload(Booking.user), selectinload(Booking.attendees),
                 selectinload(Booking.campaign_slot))
        .order_by(Booking.starts_at, Booking.id)
    )


def get_booking(session: Session, user: User, booking_id: int) -> Booking:
    """A booking of a space the user operates ("not found" for anyone else's)."""
    return access.fetch(session, user, "operate", Booking, booking_id)


# --------------------------------------------------------------------------------------
# A unit's month


@dataclass(frozen=True)
class DayCell:
    day: date
    capacity: int  # seats that day (the override, or the unit's capacity)
    booked: int  # most seats held at one instant of the day's open hours
    free: int  # fewest seats free during the day's open hours
    bookings: int  # bookings that touch the day
    state: str  # closed | full | few | free


def month_view(session: Session, user: User, unit: Unit, year: int,
               month: int) -> list[DayCell]:
    access.require(user, "manage", unit)
    first = date(year, month, 1)
    last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    start, end = at(first, 0), at(last, 1440)
    data = availability.load(session, [unit], start, end)[unit.id]
    line = availability.timelines(session, [unit], start, end)[unit.id]
    cells = []
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        d0, d1 = at(day, 0), at(day, 1440)
        touching = [b for b in data.bookings if b.starts_at < d1 and b.ends_at > d0]
        capacity = data.overrides.get(day, unit.capacity)
        window = regular_window(unit, day)
        if window is None or any(c.start_date <= day <= c.end_date for c in data.closures):
            cells.append(DayCell(day, capacity, 0, 0, len(touching), "closed"))
            continue
        pieces = [p for p in line.pieces if p.start < window[1] and p.end > window[0]]
        lowest = min((p.physical for p in pieces), default=capacity)
        free = max(lowest, 0)
        if free == 0:
            state = "full"
        elif free <= max(1, capacity // 5):
            state = "few"
        else:
            state = "free"
        cells.append(DayCell(day, capacity, capacity - lowest, free, len(touching), state))
    return cells


# --------------------------------------------------------------------------------------
# The day's bookings


@dataclass(frozen=True)
class Actions:
    """What the desk may do with a booking now: the buttons its row shows, each exactly
    when reservations would accept it (its own predicates)."""

    check_in: bool
    no_show: bool
    cancel: bool  # on the customer's behalf


@dataclass(frozen=True)
class DaySheet:
    day: date
    bookings: list[Booking]  # cancelled ones too: the desk should know who will not come
    seats: dict[str, int]  # seats per status (its value), cancelled bookings left out
    actions: dict[int, Actions]  # by booking id


def _seats_by_status(bookings: Iterable[Booking]) -> dict[str, int]:
    counts: dict[str, int] = {s.value: 0 for s in BookingStatus}
    for b in bookings:
        if b.status != BookingStatus.CANCELLED:
            counts[b.status.value] += b.seats
    return counts


def _actions(booking: Booking, now: datetime) -> Actions:
    """What reservations.check_in, mark_no_show and cancel (on behalf) would accept now."""
    return Actions(reservations.may_check_in(booking, now),
                   reservations.may_mark_no_show(booking, now),
                   reservations.may_cancel_on_behalf(booking, now))


def day_sheet(session: Session, user: User, space: Space, day: date) -> DaySheet:
    access.require(user, "manage", space)
    bookings = list(session.scalars(bookings_between(space, at(day, 0), at(day, 1440))))
    now = clock.now()
    return DaySheet(day, bookings, _seats_by_status(bookings),
                    {b.id: _actions(b, now) for b in bookings})


def day_of(booking: Booking) -> date:
    """The Tokyo date a booking starts on: the day sheet it is listed on first."""
    return booking.starts_at.astimezone(TOKYO).date()


# --------------------------------------------------------------------------------------
# What staff do with a booking


def check_in(session: Session, user: User, booking: Booking) -> Booking:
    access.require(user, "operate", booking)
    return reservations.check_in(session, booking, user)


def mark_no_show(session: Session, user: User, booking: Booking) -> Booking:
    access.require(user, "operate", booking)
    return reservations.mark_no_show(session, booking, user)


def cancel_on_behalf(session: Session, user: User, booking: Booking, reason: str) -> Booking:
    """Cancel for the customer: the reservations service tells them and their attendees."""
    access.require(user, "operate", booking)
    return reservations.cancel(session, booking, user, reason=reason)
