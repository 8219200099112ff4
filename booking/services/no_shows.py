"""No-show release: a unit's rule gives back a seat nobody checked in to.

`Unit.no_show_release_minutes` (None: off, the default; 1 to 1440): a confirmed booking
of the unit that is still not checked in N minutes after its start, and has not ended,
is released (status "released", reservations.TRANSITIONS["release"]) by the worker's
scheduled job (`run`, listed in booking.services.jobs): its seats return to search at
once (the unit loads follow the status change in the same transaction) and to the
unit's waitlist, and the booker is told by mail (kind "no_show_released", in the
booking's language). A check-in after that is refused ("released").

Rooms are released like desks (the room is free again for the rest of its hours).
Whole houses never are, whatever the unit says: a stay's guests arrive any time in the
evening, and giving the house away an hour after check-in time would turn late guests
away; the operator marks 来場なし or cancels on the guest's behalf instead. The unit form
refuses the setting for a house.

Safe with several workers: each booking is released in a transaction of its own, under
its unit's lock (reservations._lock_unit, as every booking decision), re-read there and
moved with its expected status in the UPDATE's WHERE (reservations._transition): of two
workers releasing the same booking, the second finds it released and does nothing, so
there is one release, one audit entry and one mail.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from booking import clock
from booking.db import begin_write, is_lock_timeout
from booking.formatting import local_period
from booking.models import Booking, BookingStatus, Unit, UnitKind
from booking.services import audit, calendars, mail, reservations, waitlist
from booking.services.errors import DomainError

log = logging.getLogger(__name__)

KIND = "no_show_released"
ACTION = "booking.release"
MAX_MINUTES = 1440  # a day: the form's limit
# Units whose bookings may be released (not whole houses: see the module's docstring).
RELEASABLE = (UnitKind.DESK, UnitKind.MEETING_ROOM, UnitKind.PRIVATE_ROOM)
# The console home lists a booking under 来場なし to mark this long after its start when
# its unit has no release rule (with one: after the rule's minutes).
MARK_AFTER_WITHOUT_RULE = timedelta(hours=1)


def releases(unit: Unit) -> bool:
    """Whether the unit's rule releases its bookings."""
    return unit.no_show_release_minutes is not None and unit.kind in RELEASABLE


def release_at(booking: Booking) -> datetime | None:
    """When the booking is released if nobody checks in; None: never."""
    unit = booking.unit
    if not releases(unit):
        return None
    return booking.starts_at + timedelta(minutes=unit.no_show_release_minutes or 0)


def due(booking: Booking, now: datetime) -> bool:
    """Confirmed, not checked in, its release time passed, not ended."""
    when = release_at(booking)
    return (booking.status == BookingStatus.CONFIRMED and when is not None
            and when <= now < booking.ends_at)


def mark_after(unit: Unit) -> timedelta:
    """How long after its start a booking not checked in counts as a no-show to mark."""
    minutes = unit.no_show_release_minutes
    return timedelta(minutes=minutes) if minutes else MARK_AFTER_WITHOUT_RULE


def candidates(session: Session, now: datetime) -> list[int]:
    """Ids of the bookings due for release now, oldest start first. The database narrows
    them to confirmed bookings of units with a rule that began at least a minute ago and
    have not ended (a handful: a released one is no longer confirmed); the start plus the
    unit's minutes is compared here, the same on both databases."""
    rows = session.execute(
        sa.select(Booking.id, Booking.starts_at, Unit.no_show_release_minutes)
        .join(Unit, Unit.id == Booking.unit_id)
        .where(Booking.status == BookingStatus.CONFIRMED,
               Unit.no_show_release_minutes.is_not(None), Unit.kind.in_(RELEASABLE),
               Booking.starts_at <= now - timedelta(minutes=1), Booking.ends_at > now)
        .order_by(Booking.starts_at, Booking.id)).all()
    return [booking_id for booking_id, start, minutes in rows
            if start + timedelta(minutes=minutes or 0) <= now]


def _subject(booking: Booking) -> str:
    return _("【席を解放しました】%(space)s %(when)s",
             space=booking.unit.space.display_name(booking.locale),
             when=local_period(booking.starts_at, booking.ends_at, booking.locale))


def _notify(session: Session, booking: Booking) -> None:
    """The booker (the company's person who booked) is told, in the booking's language.
    Nobody to tell when the booker's account is gone."""
    user = booking.user
    if user is None:
        return
    unit, space = booking.unit, booking.unit.space
    context = {
        "booking": booking, "unit": unit, "space": space,
        "recipient_name": user.name, "minutes": unit.no_show_release_minutes,
        "when": local_period(booking.starts_at, booking.ends_at, booking.locale),
        "url": calendars.booking_url(booking),
    }
    mail.enqueue_notice(session, KIND, user.email, booking.locale,
                        "operator/mail/no_show_released", lambda: _subject(booking), context,
                        booking_id=booking.id)


def release(session: Session, booking_id: int) -> bool:
    """Release one booking if it is still due, in a transaction of its own (committed
    here: the job's unit of work is one booking). False when it is not due (any more:
    another worker released it, someone checked in) or its unit is busy (next round)."""
    unit_id = session.scalar(sa.select(Booking.unit_id).where(Booking.id == booking_id))
    session.rollback()
    if unit_id is None:
        return False
    try:
        begin_write(session)
        unit = reservations._lock_unit(session, unit_id)
        current = reservations._reread(session, booking_id)  # as locked
        now = clock.now()
        if not due(current, now):
            session.rollback()
            return False
        reservations._transition(session, current, "release",
                                 sequence=Booking.sequence + 1)
        audit.record(session, None, ACTION, current, unit.space.organisation_id,
                     reference=current.reference,
                     minutes=unit.no_show_release_minutes or 0)
        _notify(session, current)
        # The seats go to the unit's waitlist at once, in this transaction.
        waitlist.offer_freed(session, current.unit_id, current.starts_at, current.ends_at)
        session.commit()
        return True
    except DomainError:  # lost a race: the booking is as the winner left it
        session.rollback()
        return False
    except sa.exc.DBAPIError as error:
        session.rollback()
        if is_lock_timeout(error):
            return False  # the unit is busy: tried again next round
        raise


def run(session: Session) -> int:
    """The scheduled job: release every booking due now; how many were released."""
    released = 0
    for booking_id in candidates(session, clock.now()):
        if release(session, booking_id):
            released += 1
    session.rollback()
    return released
