"""What one company may do in a while (issue 17, finding 5): bookings created per hour and
per 24 hours, and invitations mailed per 24 hours, whoever of its members books.

Settings (booking/config.py; 0 turns a limit off): COMPANY_BOOKINGS_PER_HOUR,
COMPANY_BOOKINGS_PER_DAY, COMPANY_INVITATIONS_PER_DAY. The windows slide (the last 60
minutes, the last 24 hours), so that nothing refills at midnight. A booking counts when it
is made, whatever becomes of it (a cancelled one was made and mailed). Invitations: each
booking counts one per person it is mailed to, the booker and each attendee (its
reminder, change and cancellation go to the same people and are not counted again).

Over a limit the whole request is refused (DomainError, 429, naming the limit) and
nothing is written. The count is exact under concurrency: reservations.book counts inside
its booking transaction, under a lock per company taken before anything else
(booking.db.company_lock: on PostgreSQL an advisory lock taken by the statement that
begins the transaction, so it costs no round trip; SQLite runs one writer at a time), so
two requests of one company count one after the other. The count is one statement.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from booking import clock
from booking.models import NOT_MADE_STATUSES, Booking, BookingAttendee
from booking.services.errors import DomainError

DEFAULTS = {"COMPANY_BOOKINGS_PER_HOUR": 100, "COMPANY_BOOKINGS_PER_DAY": 300,
            "COMPANY_INVITATIONS_PER_DAY": 500}


def _setting(name: str) -> int:
    return max(int(current_app.config.get(name, DEFAULTS[name])), 0)


def enabled() -> bool:
    """Whether any limit is on (when none is, bookings take no company lock)."""
    return any(_setting(name) for name in DEFAULTS)


def invitations_of(periods: int, attendees: int) -> int:
    """Invitations a request mails: one booking per period, each to the booker and to
    every attendee."""
    return periods * (1 + attendees)


def check(session: Session, company_id: int, *, bookings: int, invitations: int) -> None:
    """Refuse `bookings` new bookings mailing `invitations` invitations when they would
    take the company over a limit. Call it under the company's lock."""
    per_hour = _setting("COMPANY_BOOKINGS_PER_HOUR")
    per_day = _setting("COMPANY_BOOKINGS_PER_DAY")
    invitations_per_day = _setting("COMPANY_INVITATIONS_PER_DAY")
    if not (per_hour or per_day or invitations_per_day):
        return
    now = clock.now()
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(hours=24)
    in_day, in_hour, attendees = session.execute(
        sa.select(
            sa.func.count(sa.distinct(Booking.id)),
            sa.func.count(sa.distinct(sa.case((Booking.created_at >= hour_ago, Booking.id)))),
            sa.func.count(BookingAttendee.id),
        )
        .select_from(Booking)
        .outerjoin(BookingAttendee, BookingAttendee.booking_id == Booking.id)
        .where(Booking.company_id == company_id, Booking.created_at >= day_ago,
               # A waitlist's offer is made by the service, not the company: it counts
               # once the company confirms it (then a confirmed booking).
               Booking.status.not_in(NOT_MADE_STATUSES))
    ).one()
    if per_hour and in_hour + bookings > per_hour:
        raise DomainError("company_bookings_per_hour", limit=per_hour)
    if per_day and in_day + bookings > per_day:
        raise DomainError("company_bookings_per_day", limit=per_day)
    if invitations_per_day and in_day + attendees + invitations > invitations_per_day:
        raise DomainError("company_invitations_per_day", limit=invitations_per_day)
