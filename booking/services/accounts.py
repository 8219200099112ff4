"""Sign-up, log-in and approval of organisations."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from booking.models import Membership, Organisation, OrgKind, Role, User, utcnow
from booking.services.audit import record

# A hash to compare against when the account does not exist, so that the answer takes
# as long either way and does not tell whether an address is registered.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class EmailTaken(Exception):
    pass


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_taken(session: Session, email: str) -> bool:
    return session.scalar(sa.select(User.id).where(User.email == normalise_email(email))) is not None


def create_user(session: Session, *, email: str, password: str, name: str, locale: str = "ja",
                is_admin: bool = False) -> User:
    if email_taken(session, email):
        raise EmailTaken(email)
    user = User(
        email=normalise_email(email),
        name=name.strip(),
        password_hash=generate_password_hash(password),
        locale=locale,
        is_admin=is_admin,
        session_token=secrets.token_hex(16),
    )
    session.add(user)
    session.flush()
    return user


def create_organisation(session: Session, *, owner: User, kind: OrgKind, name: str,
                        name_en: str = "", prefecture_code: int | None = None,
                        address: str = "") -> Organisation:
    org = Organisation(
        kind=kind,
        name=name.strip(),
        name_en=name_en.strip(),
        prefecture_code=prefecture_code,
        address=address.strip(),
        # Companies need no approval; supporter organisations wait for a site admin.
        approved_at=utcnow() if kind == OrgKind.COMPANY else None,
    )
    session.add(org)
    session.flush()
    session.add(Membership(user_id=owner.id, organisation_id=org.id, role=Role.OWNER))
    session.flush()
    return org


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def rotate_session_token(user: User) -> None:
    """Logs the user out of every other session."""
    user.session_token = secrets.token_hex(16)


def approve(session: Session, organisation: Organisation, admin: User) -> None:
    if organisation.approved_at is None:
        organisation.approved_at = utcnow()
        record(session, admin, "organisation.approve", organisation, organisation.id)


def revoke_approval(session: Session, organisation: Organisation, admin: User) -> None:
    if organisation.approved_at is not None:
        organisation.approved_at = None
        record(session, admin, "organisation.revoke", organisation, organisation.id)
