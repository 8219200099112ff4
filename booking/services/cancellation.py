"""The cancellation policy a customer is told before booking and sees on the booking.

A company may cancel or change a booking until the unit's deadline, cancel_deadline_hours
before the start (reservations.cancel and change refuse it after, "cancel_deadline"); the
space's operator may still cancel on the customer's behalf, so after the deadline the
customer is given the operator's contact instead of a button that would be refused.

    deadline_of(unit, start) -> datetime         the last instant a company may cancel
    has_passed(deadline) -> bool                 by booking.clock
    policy_of(booking, user) -> Policy           what the booking page offers this user
    contact_of(space) -> Contact                 whom to call or write to
    require_acknowledged(unit, start, ok)        a booking that can no longer be cancelled
                                                 is made only when the user said they know
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from booking import clock
from booking.models import Booking, BookingStatus, Space, Unit, User
from booking.services import access
from booking.services.errors import DomainError


def deadline_of(unit: Unit, start: datetime) -> datetime:
    """The last instant a company may cancel or change a booking starting at `start`."""
    return start - timedelta(hours=unit.cancel_deadline_hours)


def has_passed(deadline: datetime) -> bool:
    """After the deadline (the deadline itself still counts as before it)."""
    return clock.now() > deadline


@dataclass(frozen=True)
class Contact:
    """Whom a customer asks about a booking: the space's phone and e-mail when it has
    them; always its operator's name and the space's address to fall back on."""

    space: Space  # its organisation (the operator) and address to fall back on
    phone: str
    email: str

    @property
    def given(self) -> bool:
        return bool(self.phone or self.email)


def contact_of(space: Space) -> Contact:
    return Contact(space, space.contact_phone or "", space.contact_email or "")


@dataclass(frozen=True)
class Policy:
    """What the booking's page says about cancelling it, for one user."""

    deadline: datetime
    passed: bool  # the company's deadline is behind us
    ongoing: bool  # confirmed and not over: cancelling it would mean something
    may_cancel: bool  # this user may cancel it now (a button that will not be refused)
    contact: Contact

    @property
    def may_change(self) -> bool:
        """Changes apply to confirmed bookings only (one checked in is not moved)."""
        return self.may_cancel and self.ongoing


def policy_of(booking: Booking, user: User | None) -> Policy:
    """As reservations.cancel decides: a company until the deadline, the space's operator
    (and a site admin) until the end; nobody once it is cancelled, used or over."""
    from booking.services.reservations import may_cancel_on_behalf  # (it imports this)

    deadline = deadline_of(booking.unit, booking.starts_at)
    passed = has_passed(deadline)
    now = clock.now()
    ongoing = booking.status == BookingStatus.CONFIRMED and now < booking.ends_at
    if access.allowed(user, "operate", booking):  # as the operator's day list offers it
        may = may_cancel_on_behalf(booking, now)
    else:
        may = ongoing and not passed and access.allowed(user, "manage", booking)
    return Policy(deadline, passed, ongoing, may, contact_of(booking.unit.space))


def require_acknowledged(unit: Unit, start: datetime, acknowledged: bool) -> None:
    """A booking whose deadline has passed already (same-day or late) cannot be cancelled
    once made: made only when the user confirmed they know ("late_unacknowledged", beside
    the form's accept_late box)."""
    if has_passed(deadline_of(unit, start)) and not acknowledged:
        raise DomainError("late_unacknowledged", field="accept_late")
