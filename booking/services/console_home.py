"""What the operator console's home lists for today, beside the consents waiting
(campaign_management.waiting_consents): today's arrivals per space, and the no-shows to
mark. The morning digest (services/digest.py) mails the same arrivals.

- Arrivals: bookings of the spaces that start today (Tokyo) and hold seats, confirmed or
  already checked in (or marked 来場なし), by space, in the order they start.
- No-shows to mark: confirmed bookings that started today and are still not checked in
  longer than the unit's release rule allows, or an hour when it has none
  (no_shows.mark_after); the desk marks 来場なし (or checks them in: they may be late).
  With a release rule, the worker releases them at that moment, so they are listed only
  until it runs (or when the worker is not running).

Only the spaces of the user's own organisations (space_admin.organisations_of).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from booking import clock
from booking.models import Booking, BookingStatus, Space, Unit, User
from booking.services import front_desk, no_shows, space_admin
from booking.services.availability import at

# Bookings that are expected (or have come): not cancelled, released or mere offers.
ARRIVING = (BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN, BookingStatus.NO_SHOW)


def arrivals(session: Session, space_ids: Iterable[int], day: date) -> list[Booking]:
    """The bookings of these spaces starting on `day` (Tokyo) that are expected, with what
    a list of them shows, by space and start."""
    ids = list(space_ids)
    if not ids:
        return []
    return list(session.scalars(
        sa.select(Booking).join(Unit, Unit.id == Booking.unit_id)
        .where(Unit.space_id.in_(ids), Booking.status.in_(ARRIVING),
               Booking.starts_at >= at(day, 0), Booking.starts_at < at(day, 1440))
        .options(selectinload(Booking.unit).selectinload(Unit.space),
                 selectinload(Booking.company), selectinload(Booking.user))
        .order_by(Unit.space_id, Booking.starts_at, Unit.id, Booking.id)))


def due_no_shows(bookings: Iterable[Booking], now: datetime) -> list[Booking]:
    """Of today's arrivals, the confirmed ones not checked in long enough after their
    start to be marked 来場なし."""
    return [b for b in bookings if b.status == BookingStatus.CONFIRMED
            and now - b.starts_at >= no_shows.mark_after(b.unit)]


@dataclass
class SpaceArrivals:
    space: Space
    bookings: list[Booking] = field(default_factory=list)

    @property
    def seats(self) -> int:
        return sum(b.seats for b in self.bookings)


@dataclass(frozen=True)
class Home:
    day: date
    arrivals: list[SpaceArrivals]  # only spaces with arrivals
    no_shows: list[Booking]
    actions: dict[int, front_desk.Actions]  # by booking id: the buttons a row shows


def by_space(bookings: Iterable[Booking]) -> list[SpaceArrivals]:
    """Bookings grouped by their space, in the order given."""
    groups: dict[int, SpaceArrivals] = {}
    for booking in bookings:
        space = booking.unit.space
        groups.setdefault(space.id, SpaceArrivals(space)).bookings.append(booking)
    return list(groups.values())


def today_for(session: Session, user: User) -> Home:
    """Today's arrivals and no-shows to mark at the spaces of the user's organisations."""
    spaces = space_admin.spaces_of(session, space_admin.organisations_of(user))
    day, now = clock.today(), clock.now()
    found = arrivals(session, [s.id for s in spaces], day)
    return Home(day, by_space(found), due_no_shows(found, now),
                # The day list's buttons, by its one rule.
                {b.id: front_desk._actions(b, now) for b in found})
