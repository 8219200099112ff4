"""Personal data (APPI): what we store about a user, as JSON, and deleting the account.

Deleting keeps the bookings (the operator needs them for seats, invoices and reports) but
takes the person out of them: the booking no longer points at the user, the user's
attendee rows lose e-mail and name, notes written by them are emptied, and mail still
waiting in the outbox for that address is dropped.

What belongs to an ADDRESS rather than to the account (the bookings that invited it, the
mail sent to it for them) is the user's only once they verified that the address is
theirs (User.email_verified_at): until then the export leaves it out and deleting the
account leaves it alone, so that an account made with somebody else's address can neither
read nor erase that person's invitations.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.models import (
    ApiToken,
    AuditEntry,
    Booking,
    BookingAttendee,
    Membership,
    OutboxMessage,
    Role,
    User,
)
from booking.services.audit import record
from booking.services.errors import DomainError

# What the attendee row of a deleted person says instead of the address. `.invalid` is
# reserved (RFC 2606): nothing is ever delivered there.
ANONYMOUS_DOMAIN = "deleted.invalid"


def _iso(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    return value


def _booking(b: Booking) -> dict:
    return {
        "reference": b.reference,
        "status": _iso(b.status),
        "unit": b.unit.name if b.unit else None,
        "space": b.unit.space.name if b.unit and getattr(b.unit, "space", None) else None,
        "starts_at": _iso(b.starts_at),
        "ends_at": _iso(b.ends_at),
        "seats": b.seats,
        "price_amount": b.price_amount,
        "note": b.note,
        "attendees": [{"email": a.email, "name": a.name} for a in b.attendees],
        "created_at": _iso(b.created_at),
        "cancelled_at": _iso(b.cancelled_at),
    }


def export(session: Session, user: User) -> dict:
    """Everything stored about the user, readable by a person and by a program.

    Secrets are described, not shown: the password only as "set", API tokens by their
    dates (we never had the tokens themselves, only their hashes).
    """
    booked = session.scalars(
        sa.select(Booking).where(Booking.user_id == user.id).order_by(Booking.starts_at)
    ).all()
    attending = session.scalars(
        sa.select(Booking).join(BookingAttendee)
        .where(BookingAttendee.email == user.email, sa.or_(Booking.user_id.is_(None),
                                                           Booking.user_id != user.id))
        .order_by(Booking.starts_at)
    ).unique().all() if user.email_verified_at is not None else []
    tokens = session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at)
    ).all()
    audit = session.scalars(
        sa.select(AuditEntry).where(AuditEntry.user_id == user.id).order_by(AuditEntry.at)
    ).all()
    mail = session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.recipient == user.email,
                                       _own_mail(user))
        .order_by(OutboxMessage.created_at)
    ).all()
    return {
        "user": {
            "id": user.id,
            "email": user.email,
            "email_verified_at": _iso(user.email_verified_at),
            "name": user.name,
            "locale": user.locale,
            "is_admin": user.is_admin,
            "created_at": _iso(user.created_at),
            "password": "set (stored only as a salted hash)",
            "calendar_feed": "active" if user.calendar_secret else "none",  # the URL is a secret
        },
        "memberships": [
            {"organisation_id": m.organisation_id, "organisation": m.organisation.name,
             "kind": _iso(m.organisation.kind), "role": _iso(m.role)}
            for m in user.memberships
        ],
        "bookings": [_booking(b) for b in booked],
        "bookings_as_attendee": [_booking(b) for b in attending],
        "api_tokens": [
            {"created_at": _iso(t.created_at), "expires_at": _iso(t.expires_at),
             "revoked_at": _iso(t.revoked_at)}
            for t in tokens
        ],
        "audit_log": [
            {"at": _iso(e.at), "action": e.action, "target": e.target,
             "organisation_id": e.organisation_id, "detail": e.detail}
            for e in audit
        ],
        "mail": [
            {"created_at": _iso(m.created_at), "subject": m.subject, "kind": m.kind,
             "sent_at": _iso(m.sent_at)}
            for m in mail
        ],
    }


def _own_mail(user: User) -> sa.ColumnElement[bool]:
    """Which of the mail to the user's address is theirs: all of it once the address is
    verified; before that, only mail about their own bookings and about the account (the
    verification link), not the invitations somebody else sent to the address."""
    if user.email_verified_at is not None:
        return sa.true()
    own_bookings = sa.select(Booking.id).where(Booking.user_id == user.id)
    return sa.or_(OutboxMessage.booking_id.is_(None), OutboxMessage.booking_id.in_(own_bookings))


def other_members(session: Session, organisation_id: int, user_id: int) -> list[Membership]:
    """The organisation's memberships besides this user's: what an owner rule counts when
    the user leaves or stops being an owner (deleting the account here; removing or
    demoting a member in services/invitations.py)."""
    return [x for x in session.scalars(
        sa.select(Membership).where(Membership.organisation_id == organisation_id)).all()
        if x.user_id != user_id]


def has_owner(memberships: list[Membership]) -> bool:
    return any(x.role == Role.OWNER for x in memberships)


def blocking_organisations(session: Session, user: User) -> list[str]:
    """Organisations that would be left with members but no owner."""
    names = []
    for m in user.memberships:
        if m.role != Role.OWNER:
            continue
        others = other_members(session, m.organisation_id, user.id)
        if others and not has_owner(others):
            names.append(m.organisation.name)
    return names


def delete_account(session: Session, user: User) -> None:
    """Deletes the user; their bookings stay for the operator, without the person.

    DomainError "sole_owner" when an organisation would be left with members but no owner
    (`names`: those organisations). Flushes; the request's edge commits.
    """
    blocking = blocking_organisations(session, user)
    if blocking:
        raise DomainError("sole_owner", names=", ".join(blocking))
    email = user.email
    verified = user.email_verified_at is not None
    own_bookings = sa.select(Booking.id).where(Booking.user_id == user.id)
    # The person as an attendee, on their own bookings and on colleagues' ones (only on
    # their own while the address is unverified: the others invited its real owner). The
    # placeholder address stays unique per booking (unique (booking_id, email)).
    attendees = sa.select(BookingAttendee).where(BookingAttendee.email == email)
    if not verified:
        attendees = attendees.where(BookingAttendee.booking_id.in_(own_bookings))
    for attendee in session.scalars(attendees).all():
        attendee.email = f"attendee-{attendee.id}@{ANONYMOUS_DOMAIN}"
        attendee.name = ""
    mail = _own_mail(user)
    if not verified:
        # Verification links already sent stay (without the account): they count against
        # the address's links of the day, which signing up again must not reset.
        mail = sa.and_(mail, sa.or_(OutboxMessage.booking_id.is_not(None),
                                    OutboxMessage.sent_at.is_(None)))
    session.execute(
        sa.delete(OutboxMessage).where(OutboxMessage.recipient == email, mail)
        .execution_options(synchronize_session=False)
    )
    # Notes are free text the booker wrote: they may name people.
    session.execute(
        sa.update(Booking).where(Booking.user_id == user.id)
        .values(user_id=None, note="").execution_options(synchronize_session=False)
    )
    for membership in list(user.memberships):
        record(session, None, "account.delete", membership.organisation,
               membership.organisation_id, user_id=user.id)
    session.delete(user)  # memberships, API tokens, idempotency records go with it
    session.flush()
