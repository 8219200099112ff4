"""API bearer tokens: random, stored hashed, with expiry and revocation."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from booking import clock
from booking.db import read_outside_a_transaction
from booking.models import ApiToken, Membership, User
from booking.services import access
from booking.services.errors import DomainError


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, user: User, hours: int) -> tuple[str, datetime]:
    """A new token (shown once) and its expiry."""
    token = secrets.token_urlsafe(32)
    expires_at = clock.now() + timedelta(hours=hours)
    session.add(ApiToken(user_id=user.id, token_hash=_digest(token), expires_at=expires_at))
    return token, expires_at


def user_for(session: Session, token: str) -> User | None:
    """The user of a live token (not revoked, not expired), or None.

    One statement: the token, its user, the user's memberships and their organisations
    (User.company, which every API request about bookings asks), joined; a request
    pays no query per relationship after it."""
    return session.scalars(_user_statement(),
                           {"digest": _digest(token), "now": clock.now()}).unique().first()


def user_before_a_decision(session: Session, token: str) -> User | None:
    """user_for, for a request whose writes are all decided in a transaction of their own
    (booking.db.begin_write: a new booking), read without a transaction (PostgreSQL): the
    request then does not begin and end one for this read alone, two round trips of
    every booking. A request that writes otherwise must not use it: its writes would
    follow on the same connection, each committed on its own."""
    read_outside_a_transaction(session)
    return user_for(session, token)


@cache
def _user_statement() -> sa.Select:
    """user_for's statement, built once (its loader options cost more to build than the
    query takes to run)."""
    return (sa.select(User).join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == sa.bindparam("digest"), ApiToken.revoked_at.is_(None),
                   ApiToken.expires_at > sa.bindparam("now", type_=ApiToken.expires_at.type))
            .options(joinedload(User.memberships).joinedload(Membership.organisation)))


def revoke(session: Session, token: str) -> bool:
    row = session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = clock.now()
    return True


def revoke_all(session: Session, user: User) -> None:
    session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )


def of_user(session: Session, user: User) -> list[ApiToken]:
    """The user's tokens, newest first (their account page)."""
    return list(session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == user.id)
        .order_by(ApiToken.created_at.desc())))


def revoke_id(session: Session, user: User, token_id: int) -> None:
    """Revokes one token the user chose on their account page (DomainError "not_found"
    for a token that is not theirs)."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise DomainError("not_found")
    access.require(user, "manage", row)
    if row.revoked_at is None:
        row.revoked_at = clock.now()
