"""Sign-up, log-in and approval of organisations."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from booking import clock
from booking.models import Membership, Organisation, OrgKind, Role, User
from booking.services import addresses
from booking.services.audit import record

# A hash to compare against when the account does not exist, so that the answer takes
# as long either way and does not tell whether an address is registered.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


PASSWORD_MIN = 10
PASSWORD_MAX = 200
# zxcvbn scores 0-4; below 2 means "too guessable" (its 30,000 most common leaked
# passwords, keyboard walks, repeats, dates, the user's own name or address).
PASSWORD_MIN_SCORE = 2


class EmailTaken(Exception):
    pass


class WeakPassword(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def password_problem(password: str, user_inputs: Iterable[str] = ()) -> str | None:
    """Why a new password is refused (a translatable message), or None when it is fine.

    Length first (NIST SP 800-63B: at least 8, we ask 10), then zxcvbn, offline, which
    knows common and breached passwords and penalises the user's own e-mail and name.
    """
    if len(password) < PASSWORD_MIN:
        return _l("パスワードは%(n)d文字以上にしてください。", n=PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        return _l("パスワードは%(n)d文字以内にしてください。", n=PASSWORD_MAX)
    inputs = [part for value in user_inputs if value
              for part in [value, *value.replace("@", " ").replace(".", " ").split()]]
    # zxcvbn's cost grows with length; the first 100 characters decide well enough.
    if zxcvbn(password[:100], user_inputs=inputs)["score"] < PASSWORD_MIN_SCORE:
        return _l("このパスワードはよく使われているか推測されやすいため使えません。")
    return None


def check_password_rules(password: str, user_inputs: Iterable[str] = ()) -> None:
    problem = password_problem(password, user_inputs)
    if problem is not None:
        raise WeakPassword(str(problem))


def normalise_email(email: str) -> str:
    """The form an address is looked up by (booking.services.addresses.lookup_key)."""
    return addresses.lookup_key(email)


def email_taken(session: Session, email: str) -> bool:
    forms = addresses.lookup_forms(email)
    return session.scalar(sa.select(User.id).where(User.email.in_(forms)).limit(1)) is not None


def create_user(session: Session, *, email: str, password: str, name: str, locale: str = "ja",
                is_admin: bool = False) -> User:
    email = addresses.normalise(email)  # AddressError (a DomainError) when refused
    if email_taken(session, email):
        raise EmailTaken(email)
    user = User(
        email=email,
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
        approved_at=clock.now() if kind == OrgKind.COMPANY else None,
    )
    session.add(org)
    session.flush()
    session.add(Membership(user_id=owner.id, organisation_id=org.id, role=Role.OWNER))
    session.flush()
    return org


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.scalar(sa.select(User).where(User.email.in_(addresses.lookup_forms(email)))
                          .order_by(User.id).limit(1))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def rotate_session_token(user: User) -> None:
    """Ends every browser session of the user: the token is part of each session's
    identity (User.get_id), compared on every request by the user loader."""
    user.session_token = secrets.token_hex(16)


def log_out(user: User) -> None:
    """Log-out ends the session on the server, so a copy of its cookie stops working too.

    The token is one per account, so every browser session of the user ends (the other
    devices log in again); API tokens stay (logout_everywhere revokes those as well)."""
    rotate_session_token(user)


def change_password(session: Session, user: User, current: str, new: str) -> bool:
    """False when `current` is wrong. Other sessions and API tokens stop working."""
    if not check_password_hash(user.password_hash, current):
        return False
    check_password_rules(new, (user.email, user.name))
    user.password_hash = generate_password_hash(new)
    rotate_session_token(user)
    from booking.services import tokens

    tokens.revoke_all(session, user)
    return True


def logout_everywhere(session: Session, user: User) -> None:
    """Every browser session and every API token of the user stop working."""
    rotate_session_token(user)
    from booking.services import tokens

    tokens.revoke_all(session, user)


def approve(session: Session, organisation: Organisation, admin: User) -> None:
    if organisation.approved_at is None:
        organisation.approved_at = clock.now()
        record(session, admin, "organisation.approve", organisation, organisation.id)


def revoke_approval(session: Session, organisation: Organisation, admin: User) -> None:
    if organisation.approved_at is not None:
        organisation.approved_at = None
        record(session, admin, "organisation.revoke", organisation, organisation.id)
