"""Members of a space: who books its members-only units directly (Koto's 会員デスク).

A member is a company (all its people) or one person by e-mail. Everyone else books a
members-only unit only through a campaign slot (reservations._check_availability)."""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from booking.models import Organisation, Space, SpaceMember, User
from booking.services import access, addresses
from booking.services.audit import record
from booking.services.errors import DomainError


def admits(session: Session, space_id: int, company_id: int | None, email: str | None) -> bool:
    """The company, or the person with this address, is on the space's member list."""
    who = []
    if company_id is not None:
        who.append(SpaceMember.company_id == company_id)
    if email:
        who.append(SpaceMember.email == email.lower())
    if not who:
        return False
    return session.scalar(
        sa.select(SpaceMember.id).where(SpaceMember.space_id == space_id, sa.or_(*who)).limit(1)
    ) is not None


# --------------------------------------------------------------------------- whose lists
#
# The operator keeps the list (console: booking.blueprints.people). Who may edit it: the
# space's organisation's members, owners and staff alike, as with the rest of the space's
# day-to-day running (access "manage" on the Space): the front desk is who signs members
# up. Everyone else is told the space does not exist ("not_found").


def member_email(user: User | None) -> str | None:
    """The address a person counts as a member by: only once they proved it is theirs
    (an account made with somebody else's address books nothing as that member)."""
    if user is None or getattr(user, "email_verified_at", None) is None:
        return None
    return user.email


def spaces_of(session: Session, user: User | None) -> frozenset[int]:
    """The spaces whose members-only units this user books directly: one small query
    (search and the space page ask it once per request)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return frozenset()
    company = user.company
    email = member_email(user)
    if company is None and not email:
        return frozenset()
    return frozenset(session.scalars(
        _member_statement(company is not None, bool(email)),
        {"company": company.id if company is not None else None, "email": email}))


@cache
def _member_statement(by_company: bool, by_email: bool) -> sa.Select:
    """spaces_of's statement for the terms a user has, built once: built anew for every
    request, the statement and its cache key cost more than the query takes to run."""
    who = []
    if by_company:
        who.append(SpaceMember.company_id == sa.bindparam("company"))
    if by_email:
        who.append(SpaceMember.email == sa.bindparam("email"))
    return sa.select(SpaceMember.space_id).where(sa.or_(*who)).distinct()


def listed(session: Session, actor: User, space_id: int) -> tuple[Space, list[SpaceMember]]:
    """The space and its members (companies first, then people, by name/address)."""
    space = access.fetch(session, actor, "manage", Space, space_id)
    rows = list(session.scalars(
        sa.select(SpaceMember).where(SpaceMember.space_id == space.id)
        .outerjoin(Organisation, SpaceMember.company_id == Organisation.id)
        .options(selectinload(SpaceMember.company))
        .order_by(SpaceMember.email.is_not(None), Organisation.name, SpaceMember.email)))
    return space, rows


def add(session: Session, actor: User, space_id: int, email: str, *,
        whole_company: bool = False, note: str = "") -> SpaceMember:
    """Adds the person with this address, or (`whole_company`) the registered company
    that person belongs to. DomainError "bad_email", "space_member_no_company" (nobody of
    a company has that address), "space_member_exists"."""
    space = access.fetch(session, actor, "manage", Space, space_id)
    try:
        address = addresses.normalise(email)
    except DomainError as error:
        error.field = "email"
        raise
    row = SpaceMember(space_id=space.id, note=note.strip()[:200])
    if whole_company:
        person = session.scalar(sa.select(User).where(
            User.email.in_(addresses.lookup_forms(address))).limit(1))
        company = person.company if person is not None else None
        if company is None:
            raise DomainError("space_member_no_company")
        row.company_id = company.id
        taken = SpaceMember.company_id == company.id
    else:
        row.email = address
        taken = SpaceMember.email == address
    if session.scalar(sa.select(SpaceMember.id).where(SpaceMember.space_id == space.id, taken)):
        raise DomainError("space_member_exists")
    try:
        with session.begin_nested():  # one added at the same instant: the unique index says
            session.add(row)
    except IntegrityError:
        raise DomainError("space_member_exists") from None
    record(session, actor, "space_member.add", row, space.organisation_id,
           space_id=space.id, company_id=row.company_id, email=row.email)
    return row


def remove(session: Session, actor: User, space_id: int, member_id: int) -> None:
    """Takes a member off the space's list (its bookings stay)."""
    space = access.fetch(session, actor, "manage", Space, space_id)
    row = session.get(SpaceMember, member_id)
    if row is None or row.space_id != space.id:
        raise DomainError("not_found")
    record(session, actor, "space_member.remove", row, space.organisation_id,
           space_id=space.id, company_id=row.company_id, email=row.email)
    session.delete(row)
    session.flush()
