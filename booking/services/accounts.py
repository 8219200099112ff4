"""Sign-up, log-in, e-mail verification and approval of organisations."""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections.abc import Iterable
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from booking import clock
from booking.models import Membership, Organisation, OrgKind, OutboxMessage, Role, User
from booking.services import access, addresses
from booking.services.audit import record
from booking.services.errors import DomainError


def hash_password(password: str) -> str:
    """The stored hash of a new password, by the configured method (scrypt but in tests)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


@functools.cache
def _dummy_hash(method: str) -> str:
    """A hash to compare against when the account does not exist, so that the answer takes
    as long either way and does not tell whether an address is registered."""
    return generate_password_hash("not-a-real-password", method=method)


PASSWORD_MIN = 10
PASSWORD_MAX = 200
# zxcvbn scores 0-4; below 2 means "too guessable" (its 30,000 most common leaked
# passwords, keyboard walks, repeats, dates, the user's own name or address).
PASSWORD_MIN_SCORE = 2


def password_problem(password: str, user_inputs: Iterable[str] = ()) -> DomainError | None:
    """Why a new password is refused ("weak_password", beside the password field), or None
    when it is fine.

    Length first (NIST SP 800-63B: at least 8, we ask 10), then zxcvbn, offline, which
    knows common and breached passwords and penalises the user's own e-mail and name.
    """
    if len(password) < PASSWORD_MIN:
        return DomainError("weak_password", variant="too_short", n=PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        return DomainError("weak_password", variant="too_long", n=PASSWORD_MAX)
    inputs = [part for value in user_inputs if value
              for part in [value, *value.replace("@", " ").replace(".", " ").split()]]
    # zxcvbn's cost grows with length; the first 100 characters decide well enough.
    if zxcvbn(password[:100], user_inputs=inputs)["score"] < PASSWORD_MIN_SCORE:
        return DomainError("weak_password")
    return None


def check_password(password: str, user_inputs: Iterable[str] = ()) -> None:
    """DomainError "weak_password" when a new password is refused (password_problem)."""
    problem = password_problem(password, user_inputs)
    if problem is not None:
        raise problem


def normalise_email(email: str) -> str:
    """The form an address is looked up by (booking.services.addresses.lookup_key)."""
    return addresses.lookup_key(email)


def email_taken(session: Session, email: str) -> bool:
    forms = addresses.lookup_forms(email)
    return session.scalar(sa.select(User.id).where(User.email.in_(forms)).limit(1)) is not None


def create_user(session: Session, *, email: str, password: str, name: str, locale: str = "ja",
                is_admin: bool = False, verified: bool = False) -> User:
    """A new account. Its address is unverified, and a link that verifies it is queued in
    the outbox (send_verification), unless `verified` (demo data and tests only: nobody
    has proved anything by signing up). DomainError "bad_email" or "email_taken" (in any
    letter case). The password is taken as it is: sign_up checks a new user's."""
    email = addresses.normalise(email)  # AddressError (a DomainError) when refused
    if email_taken(session, email):
        raise DomainError("email_taken")
    user = User(
        email=email,
        name=name.strip(),
        password_hash=hash_password(password),
        locale=locale,
        is_admin=is_admin,
        session_token=secrets.token_hex(16),
        email_verified_at=clock.now() if verified else None,
    )
    session.add(user)
    session.flush()
    if not verified:
        # Over the address's links of the day (an address signed up, deleted and signed up
        # again): the account is made all the same; its page sends a link later.
        with contextlib.suppress(DomainError):
            send_verification(session, user)
    return user


# --------------------------------------------------------------------------- verification
#
# The link carries (user id, address), signed with SECRET_KEY and timed by booking.clock;
# it works for EMAIL_VERIFY_HOURS. It verifies only the account it was made for, opened
# while logged in to that account: whoever reads the mailbox AND knows the password. So
# a mail scanner that follows links, or the real owner of an address somebody else signed
# up with, verifies nothing. A link for an address the account no longer has does not
# verify the new one.

VERIFY_MAIL_KIND = "verify_email"
VERIFY_PATH = "/account/verify/"  # + token: the page of booking.blueprints.account
_VERIFY_SALT = "email-verification"


class _ClockSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(clock.now().timestamp())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_VERIFY_SALT,
                                  signer=_ClockSigner)


def verify_hours() -> int:
    return max(int(current_app.config.get("EMAIL_VERIFY_HOURS", 72)), 1)


def verification_token(user: User) -> str:
    return _serializer().dumps({"u": user.id, "e": user.email})


def verification_url(user: User) -> str:
    from booking.services.calendars import public_url

    return public_url() + VERIFY_PATH + verification_token(user)


def mark_verified(user: User) -> None:
    if user.email_verified_at is None:
        user.email_verified_at = clock.now()


def verify_email(user: User, token: str) -> None:
    """Verify `user`'s address with the token of a mailed link. DomainError otherwise:
    verify_link_expired, verify_link_invalid (altered, or for an address the account no
    longer has), verify_link_other_account."""
    try:
        data, signed_at = _serializer().loads(token, return_timestamp=True)
    except BadSignature:
        raise DomainError("verify_link_invalid") from None
    # Measured here rather than by itsdangerous, which refuses a link signed a moment
    # "in the future" (another app server's clock a little ahead).
    if clock.now() - signed_at > timedelta(hours=verify_hours()):
        raise DomainError("verify_link_expired", hours=verify_hours())
    if not isinstance(data, dict):
        raise DomainError("verify_link_invalid")
    if data.get("u") != user.id:
        raise DomainError("verify_link_other_account")
    if data.get("e") != user.email:
        raise DomainError("verify_link_invalid")
    mark_verified(user)


def _verification_message(user: User, url: str) -> tuple[str, bytes]:
    """(subject, RFC 5322 bytes) of the verification mail. It says nothing that the
    sign-up typed (name, company): the address is nobody's until it is verified."""
    from booking.services import mail

    loc = user.locale if user.locale in ("ja", "en") else "ja"
    with force_locale(loc):
        subject = _("【テレワーク予約】メールアドレスの確認")
        context = {"url": url, "hours": verify_hours(), "loc": loc}
        text = render_template("account/mail/verify.txt", **context)
        html = render_template("account/mail/verify.html", **context)
    return subject, mail.message_bytes(mail.mime_text(text, html), subject, user.email)


def verification_mails_today(session: Session, user: User) -> int:
    return session.scalar(
        sa.select(sa.func.count()).select_from(OutboxMessage).where(
            OutboxMessage.kind == VERIFY_MAIL_KIND, OutboxMessage.recipient == user.email,
            OutboxMessage.created_at >= clock.now() - timedelta(hours=24))) or 0


def send_verification(session: Session, user: User) -> OutboxMessage | None:
    """Queue a mail with a new verification link to the user's address (None when it is
    verified already). At most EMAIL_VERIFY_MAILS_PER_DAY in 24 hours per address, so
    that an account made with somebody else's address cannot be used to flood it
    (DomainError "verify_mail_limit"). Two requests at the same instant could both pass
    the count: one mail more, at most one per concurrent request of that one account."""
    if user.email_verified_at is not None:
        return None
    limit = int(current_app.config.get("EMAIL_VERIFY_MAILS_PER_DAY", 5))
    if limit > 0 and verification_mails_today(session, user) >= limit:
        raise DomainError("verify_mail_limit", limit=limit)
    subject, message = _verification_message(user, verification_url(user))
    row = OutboxMessage(kind=VERIFY_MAIL_KIND, recipient=user.email, subject=subject[:300],
                        message=message, booking_id=None, next_attempt_at=clock.now())
    session.add(row)
    session.flush()
    return row


def create_organisation(session: Session, *, owner: User, kind: OrgKind, name: str,
                        name_en: str = "", prefecture_code: int | None = None,
                        address: str = "", postal_code: str = "") -> Organisation:
    org = Organisation(
        kind=kind,
        name=name.strip(),
        name_en=name_en.strip(),
        prefecture_code=prefecture_code,
        address=address.strip(),
        postal_code=postal_code.strip(),
        # Companies need no approval; supporter organisations wait for a site admin.
        approved_at=clock.now() if kind == OrgKind.COMPANY else None,
    )
    session.add(org)
    session.flush()
    session.add(Membership(user_id=owner.id, organisation_id=org.id, role=Role.OWNER))
    session.flush()
    return org


def sign_up(session: Session, *, email: str, password: str, name: str, kind: OrgKind,
            organisation_name: str, organisation_name_en: str = "",
            prefecture_code: int | None = None, address: str = "",
            postal_code: str = "") -> tuple[User, Organisation]:
    """Somebody signs up (the web forms and the API): a new account and the organisation
    it owns, a company (ready at once) or a supporter organisation (waiting for a site
    admin). DomainError "weak_password", "bad_email" or "email_taken"."""
    check_password(password, (email, name))
    user = create_user(session, email=email, password=password, name=name)
    organisation = create_organisation(
        session, owner=user, kind=kind, name=organisation_name, name_en=organisation_name_en,
        prefecture_code=prefecture_code, address=address, postal_code=postal_code)
    return user, organisation


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.scalar(sa.select(User).where(User.email.in_(addresses.lookup_forms(email)))
                          .order_by(User.id).limit(1))
    if user is None:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]),
                            password)
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


def confirm_password(user: User, password: str, field: str = "password") -> None:
    """The user proves it is them before a change that cannot be undone: DomainError
    "wrong_password" (beside `field`) otherwise."""
    if not check_password_hash(user.password_hash, password):
        raise DomainError("wrong_password", field=field,
                          variant="current" if field == "current" else None)


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """Other sessions and API tokens stop working. DomainError "wrong_password" (beside
    the current password) or "weak_password"."""
    confirm_password(user, current, field="current")
    check_password(new, (user.email, user.name))
    user.password_hash = hash_password(new)
    rotate_session_token(user)
    from booking.services import tokens

    tokens.revoke_all(session, user)


def logout_everywhere(session: Session, user: User) -> None:
    """Every browser session and every API token of the user stop working."""
    rotate_session_token(user)
    from booking.services import tokens

    tokens.revoke_all(session, user)


def supporter_organisations(session: Session) -> list[Organisation]:
    """Municipalities and operators, those waiting for approval first (the admin's list)."""
    return list(session.scalars(
        sa.select(Organisation)
        .where(Organisation.kind != OrgKind.COMPANY)
        .order_by(Organisation.approved_at.is_not(None), Organisation.created_at)
    ))


def _organisation_to_approve(session: Session, organisation_id: int, admin: User) -> Organisation:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise DomainError("not_found")
    access.require(admin, "approve", organisation)
    return organisation


def approve(session: Session, organisation_id: int, admin: User) -> Organisation:
    """A site admin approves a supporter organisation: its published spaces go public."""
    organisation = _organisation_to_approve(session, organisation_id, admin)
    if not organisation.is_approved:
        organisation.approved_at = clock.now()
        record(session, admin, "organisation.approve", organisation, organisation.id)
    return organisation


def revoke_approval(session: Session, organisation_id: int, admin: User) -> Organisation:
    organisation = _organisation_to_approve(session, organisation_id, admin)
    if organisation.is_approved:
        organisation.approved_at = None
        record(session, admin, "organisation.revoke", organisation, organisation.id)
    return organisation


# --------------------------------------------------------------------------- notifications

# The per-person mail switches (User.notify_*), in the order the account page lists them.
NOTIFY_SWITCHES = ("notify_bookings", "notify_digest", "notify_consents")


def notification_switches(user: User) -> list[str]:
    """The switches that mean something to this person: bookings of their spaces to
    members of an operator; consents (requests to operators, answers to municipalities)
    to members of either. A company's people have none (their own bookings' mails are not
    optional). The morning digest of the day's arrivals (services/digest.py) goes to
    members of an operator too."""
    kinds = {m.organisation.kind for m in user.memberships}
    shown = []
    if OrgKind.OPERATOR in kinds:
        shown += ["notify_bookings", "notify_digest"]
    if kinds & {OrgKind.OPERATOR, OrgKind.MUNICIPALITY}:
        shown.append("notify_consents")
    return shown


def set_notifications(session: Session, user: User, choices: dict[str, bool]) -> None:
    """Save the person's switches; DomainError "not_found" for a switch they do not have
    (notification_switches), so that a form cannot set one the page does not show."""
    allowed = notification_switches(user)
    if any(name not in allowed for name in choices):
        raise DomainError("not_found")
    for name, on in choices.items():
        setattr(user, name, bool(on))
    session.flush()
