"""API bearer tokens: random, stored hashed, with expiry and revocation."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking import clock
from booking.models import ApiToken, User
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
    row = session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= clock.now():
        return None
    return session.get(User, row.user_id)


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
