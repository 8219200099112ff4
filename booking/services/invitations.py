"""Members and staff: an organisation's owner invites a person by e-mail with a role; the
person joins through the mailed link (logged in with that address, or signing up from
it); owners change members' roles and remove members.

Roles (models.Role): a company's OWNER is its 管理者 (sees and manages every booking of
the company), its STAFF a メンバー (the bookings they made themselves); an operator's or
municipality's are オーナー and スタッフ (services/access.py says what each may do).

The link's secret is shown once, in the mail; only its sha256 is stored (as API tokens,
services/tokens.py), so a copy of the database opens no invitation. Every status change
carries the state it was decided in, in its UPDATE's WHERE: of two acceptances of one
invitation at the same instant, one joins and the other is told it was used.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, selectinload

from booking import clock
from booking.models import Invitation, Membership, Organisation, OrgKind, Role, User
from booking.services import access, accounts, addresses, mail, privacy
from booking.services.audit import record
from booking.services.calendars import public_url
from booking.services.errors import DomainError

MAIL_KIND = "invitation"
PATH = "/invitations/"  # + token: the page of booking.blueprints.people
# Seven days: long enough for somebody away for a week (or a long weekend and a busy
# Monday) to open it; short enough that a link left in an old mailbox or forwarded by
# mistake stops working soon. An owner sends a new one in a click when it lapsed.
VALID_DAYS = 7


def role_label(kind: OrgKind | str, role: Role | str) -> str:
    """What a role is called in this kind of organisation: a company has 管理者 and
    メンバー, operators and municipalities オーナー and スタッフ."""
    owner = Role(role) == Role.OWNER
    if OrgKind(kind) == OrgKind.COMPANY:
        return str(_l("管理者") if owner else _l("メンバー"))
    return str(_l("オーナー") if owner else _l("スタッフ"))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def url_of(token: str) -> str:
    return public_url() + PATH + token


def state_of(invitation: Invitation, now: datetime | None = None) -> str:
    """"accepted", "revoked", "expired" or "pending"."""
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= (now or clock.now()):
        return "expired"
    return "pending"


_REFUSAL = {"accepted": "invitation_used", "revoked": "invitation_revoked",
            "expired": "invitation_expired"}


def _open(invitation: Invitation) -> None:
    state = state_of(invitation)
    if state != "pending":
        raise DomainError(_REFUSAL[state])


def _email_field(raw: str) -> str:
    try:
        return addresses.normalise(raw)
    except DomainError as error:
        error.field = "email"
        raise


# --------------------------------------------------------------------------- owners


@dataclass(frozen=True)
class People:
    """An organisation's people page: members, open invitations, whether the viewer owns
    it (and so may change anything)."""

    organisation: Organisation
    members: list[Membership]
    invitations: list[Invitation]
    owner: bool


def people(session: Session, actor: User, organisation_id: int) -> People:
    """Every member of the organisation sees its people; owners manage them."""
    org = access.fetch(session, actor, "view", Organisation, organisation_id)
    members = list(session.scalars(
        sa.select(Membership).where(Membership.organisation_id == org.id)
        .join(User, Membership.user_id == User.id)
        .options(selectinload(Membership.user))
        .order_by(Membership.role, User.name, User.id)))
    invitations = list(session.scalars(
        sa.select(Invitation).where(
            Invitation.organisation_id == org.id, Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None), Invitation.expires_at > clock.now())
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())))
    return People(org, members, invitations, access.allowed(actor, "own", org))


def invite(session: Session, actor: User, organisation_id: int, email: str, role: Role,
           locale: str = "ja") -> tuple[Invitation, str]:
    """The owner invites `email` to join with `role`: (the invitation, its secret token,
    which is in the mail only). An open invitation of the same address is replaced (its
    link stops working). DomainError "owner_only", "bad_email", "already_member",
    "second_company" (a company user who belongs to another company already)."""
    org = access.fetch(session, actor, "own", Organisation, organisation_id)
    address = _email_field(email)
    existing = session.scalar(sa.select(User).where(
        User.email.in_(addresses.lookup_forms(address))).limit(1))
    if existing is not None:
        _may_join(session, existing, org)
    now = clock.now()
    session.execute(
        sa.update(Invitation).where(
            Invitation.organisation_id == org.id, Invitation.email == address,
            Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False))
    token = secrets.token_urlsafe(32)
    invitation = Invitation(organisation_id=org.id, email=address, role=Role(role),
                            token_hash=_digest(token), invited_by_id=actor.id,
                            created_at=now, expires_at=now + timedelta(days=VALID_DAYS))
    session.add(invitation)
    session.flush()
    loc = existing.locale if existing is not None else locale

    def subject() -> str:
        return _("【テレワーク予約】%(organisation)sへの招待",
                 organisation=org.display_name(loc))

    def context() -> dict:
        return {"organisation": org.display_name(loc), "inviter": actor.name,
                "role": role_label(org.kind, role), "url": url_of(token),
                "expires_at": invitation.expires_at, "days": VALID_DAYS}

    mail.enqueue_notice(session, MAIL_KIND, address, loc, "people/mail/invitation",
                        subject, context)
    record(session, actor, "invitation.create", invitation, org.id, email=address,
           role=Role(role).value)
    return invitation, token


def revoke(session: Session, actor: User, invitation_id: int) -> Invitation:
    """The owner takes an open invitation back; its link stops working. A used or
    already revoked one is refused ("invitation_used", "invitation_revoked")."""
    invitation = session.get(Invitation, invitation_id)
    if invitation is None:
        raise DomainError("not_found")
    access.require(actor, "own", invitation.organisation_id)
    done = session.execute(
        sa.update(Invitation).where(
            Invitation.id == invitation.id, Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None))
        .values(revoked_at=clock.now()).execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(invitation)
    if done != 1:
        raise DomainError(_REFUSAL[state_of(invitation)])
    record(session, actor, "invitation.revoke", invitation, invitation.organisation_id,
           email=invitation.email)
    return invitation


def _lock_organisation(session: Session, organisation_id: int) -> None:
    """Owners' changes of one organisation's members one at a time (PostgreSQL: the
    organisation row; SQLite has one writer anyway), so that two owners demoting each
    other cannot both pass the owner rule."""
    session.execute(sa.select(Organisation.id).where(Organisation.id == organisation_id)
                    .with_for_update())


def _membership(session: Session, actor: User, membership_id: int) -> Membership:
    found = session.get(Membership, membership_id)
    if found is None:
        raise DomainError("not_found")
    access.require(actor, "own", found.organisation_id)
    _lock_organisation(session, found.organisation_id)
    session.refresh(found)  # as it is now, under the lock
    return found


def _keeps_an_owner(session: Session, membership: Membership) -> None:
    """The owner rule of services/privacy.py: never an organisation without an owner."""
    if membership.role == Role.OWNER and not privacy.has_owner(
            privacy.other_members(session, membership.organisation_id, membership.user_id)):
        raise DomainError("last_owner")


def change_role(session: Session, actor: User, membership_id: int, role: Role) -> Membership:
    """The owner gives a member another role; the last owner stays one ("last_owner")."""
    membership = _membership(session, actor, membership_id)
    role = Role(role)
    if membership.role == role:
        return membership
    _keeps_an_owner(session, membership)
    before = membership.role
    done = session.execute(
        sa.update(Membership).where(Membership.id == membership.id, Membership.role == before)
        .values(role=role).execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if done != 1:
        raise DomainError("member_changed")
    session.refresh(membership)
    record(session, actor, "member.role", membership, membership.organisation_id,
           user_id=membership.user_id, before=before.value, after=role.value)
    return membership


def remove(session: Session, actor: User, membership_id: int) -> None:
    """The owner removes a member (themselves too, when another owner remains). The
    bookings the person made stay the company's."""
    membership = _membership(session, actor, membership_id)
    _keeps_an_owner(session, membership)
    done = session.execute(
        sa.delete(Membership).where(Membership.id == membership.id,
                                    Membership.role == membership.role)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if done != 1:
        raise DomainError("member_changed")
    record(session, actor, "member.remove", membership, membership.organisation_id,
           user_id=membership.user_id)
    session.expire_all()  # the removed row is gone from every loaded collection


# --------------------------------------------------------------------------- the invited


def find(session: Session, token: str) -> Invitation:
    """The invitation of a link, in whatever state ("invitation_invalid" when there is
    none: a mistyped or made-up link)."""
    found = session.scalar(sa.select(Invitation).where(Invitation.token_hash == _digest(token))
                           .options(selectinload(Invitation.organisation)))
    if found is None:
        raise DomainError("invitation_invalid")
    return found


def _may_join(session: Session, user: User, org: Organisation) -> None:
    """Refusals of a person joining: already a member; a second company (User.company
    is the first company a person belongs to: bookings, limits and lists would silently
    follow only that one, so a company user belongs to one company)."""
    kinds = dict(session.execute(
        sa.select(Membership.organisation_id, Organisation.kind)
        .join(Organisation, Membership.organisation_id == Organisation.id)
        .where(Membership.user_id == user.id)).all())
    if org.id in kinds:
        raise DomainError("already_member")
    if org.kind == OrgKind.COMPANY and OrgKind.COMPANY in kinds.values():
        raise DomainError("second_company")


def _join(session: Session, invitation: Invitation, user: User) -> Membership:
    """Under a lock of the person (two invitations accepted at once by one person are
    decided one after the other), the refusals, then the invitation claimed with its
    open state in the WHERE: of two acceptances one joins."""
    session.execute(sa.select(User.id).where(User.id == user.id).with_for_update())
    _may_join(session, user, invitation.organisation)
    now = clock.now()
    done = session.execute(
        sa.update(Invitation).where(
            Invitation.id == invitation.id, Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None), Invitation.expires_at > now)
        .values(accepted_at=now, accepted_user_id=user.id)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(invitation)
    if done != 1:
        raise DomainError(_REFUSAL.get(state_of(invitation, now), "invitation_used"))
    membership = Membership(user_id=user.id, organisation_id=invitation.organisation_id,
                            role=invitation.role)
    session.add(membership)
    session.flush()
    record(session, user, "invitation.accept", invitation, invitation.organisation_id,
           role=invitation.role.value)
    session.refresh(user)  # its memberships, with the new one
    return membership


def accept(session: Session, user: User, token: str) -> Membership:
    """A logged-in person accepts: only the account of the invited address
    ("invitation_other_account" otherwise). Opening the link proves the address, as the
    verification link does, so an unverified address is verified by it."""
    invitation = find(session, token)
    _open(invitation)
    if user.email != invitation.email:
        raise DomainError("invitation_other_account", email=invitation.email)
    accounts.mark_verified(user)
    return _join(session, invitation, user)


def sign_up(session: Session, token: str, *, name: str, password: str,
            locale: str = "ja") -> User:
    """A person without an account signs up from the link and joins: the address is the
    invitation's, proven by the link (so verified). DomainError "invitation_has_account"
    (log in instead), "weak_password"."""
    invitation = find(session, token)
    _open(invitation)
    if accounts.email_taken(session, invitation.email):
        raise DomainError("invitation_has_account")
    accounts.check_password(password, (invitation.email, name))
    user = accounts.create_user(session, email=invitation.email, password=password,
                                name=name, locale=locale, verified=True)
    _join(session, invitation, user)
    return user
