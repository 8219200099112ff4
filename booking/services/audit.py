"""The audit log: who changed prices, capacity, closures, campaigns, approvals, bookings."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.models import AuditEntry, Organisation, User
from booking.services import access
from booking.services.errors import DomainError

PER_PAGE = 100


def record(session: Session, user: User | int | None, action: str, target: object,
           organisation_id: int | None, **detail) -> None:
    """`user`: the actor, or their id (a booking transaction has it without rereading
    the user its beginning expired)."""
    session.add(AuditEntry(**entry(user, action, target, organisation_id, **detail)))


def entry(user: User | int | None, action: str, target: object, organisation_id: int | None,
          **detail) -> dict:
    """record's entry as the row's values, for a caller that inserts it with others in
    one statement (booking.db.insert_together)."""
    return {
        "user_id": user if isinstance(user, int) else user.id if user is not None else None,
        "organisation_id": organisation_id,
        "action": action,
        "target": f"{type(target).__name__}:{getattr(target, 'id', '')}",
        "detail": {k: (v if isinstance(v, int | float | bool | None) else str(v))
                   for k, v in detail.items()},
    }


@dataclass(frozen=True)
class Page:
    """One page of a log, newest first, with the people and organisations it names."""

    organisation: Organisation | None  # None: the whole site's log
    entries: list[AuditEntry]
    users: dict[int, User]
    organisations: dict[int, Organisation]
    number: int
    has_next: bool


def page(session: Session, user: User, organisation_id: int | None, number: int = 1) -> Page:
    """Page `number` of an organisation's log (its owners and the site admin) or, with
    None, of the whole site's (the site admin). DomainError "not_found"/"owner_only"."""
    organisation = None
    if organisation_id is None:
        if not access.is_admin(user):
            raise DomainError("not_found")
    else:
        organisation = session.get(Organisation, organisation_id)
        if organisation is None:
            raise DomainError("not_found")
        access.require(user, "audit", organisation)
    number = max(number, 1)
    query = sa.select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if organisation is not None:
        query = query.where(AuditEntry.organisation_id == organisation.id)
    entries = list(session.scalars(query.offset((number - 1) * PER_PAGE).limit(PER_PAGE + 1)))
    users = {u.id: u for u in session.scalars(
        sa.select(User).where(User.id.in_({e.user_id for e in entries if e.user_id})))}
    organisations = {o.id: o for o in session.scalars(
        sa.select(Organisation).where(Organisation.id.in_(
            {e.organisation_id for e in entries if e.organisation_id})))}
    return Page(organisation, entries[:PER_PAGE], users, organisations, number,
                has_next=len(entries) > PER_PAGE)
