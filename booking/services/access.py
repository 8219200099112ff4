"""Who may do what: every access rule of the service, decided here and nowhere else.

A policy answers for one kind of object and one action:

    access.allowed(user, "manage", space)     -> bool   (pages: show a control or not)
    access.require(user, "manage", space)     -> None   (services: DomainError otherwise)

Services call `require` before they read another organisation's data or change anything;
the web layer only asks "logged in?" and "which kind of organisation?" (booking.guards).

Actions:
- "view": read it.                "manage": run it day to day (staff and owners).
- "own": the owner's decisions (prices, units, deleting, members, tokens).
- "operate": a booking, as the space's operator (check-in, no-show, cancel on behalf).
- "receipt": a booking's receipts and invoices (the booker, the company's admins, the
  operator, a site admin; not its attendees).
- "consent": a campaign slot, as the operator of the unit it offers.
- "audit": an organisation's audit log (its owners and the site admin).
- "approve": a supporter organisation, by the site admin.
- "campaign": run an organisation's campaigns (a municipality's members).

Refusals hide what exists: anyone outside the organisation gets "not_found" (a booking:
"not_yours"), so that ids are not confirmed; a member who is not an owner gets
"owner_only", which says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from booking.models import (
    ApiToken,
    Booking,
    Campaign,
    CampaignExtra,
    CampaignSlot,
    Organisation,
    OrgKind,
    Photo,
    Role,
    Space,
    Unit,
    User,
)
from booking.services.errors import DomainError


def role_in(user: User | None, organisation_id: int | None) -> Role | None:
    """The user's role in the organisation (None for strangers and anonymous users)."""
    if organisation_id is None or user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.role_in(organisation_id)


def is_member(user: User | None, organisation_id: int | None) -> bool:
    return role_in(user, organisation_id) is not None


def is_owner(user: User | None, organisation_id: int | None) -> bool:
    return role_in(user, organisation_id) == Role.OWNER


def is_admin(user: User | None) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_admin", False))


def _org_id(target: Organisation | int) -> int:
    return target if isinstance(target, int) else target.id


def _operator_of(user: User, booking: Booking) -> bool:
    return is_admin(user) or is_member(user, booking.unit.space.organisation_id)


def _manages_booking(user: User, booking: Booking) -> bool:
    """The booker, their company's admins (a company's members manage the bookings they
    made themselves), the space's operator, a site admin."""
    return (booking.user_id == getattr(user, "id", None)
            or is_owner(user, booking.company_id) or _operator_of(user, booking))


def _views_booking(user: User, booking: Booking) -> bool:
    """Those who may manage it, and its attendees: a user whose address it invited, once
    they have verified that the address is theirs."""
    return _manages_booking(user, booking) or (
        getattr(user, "email_verified_at", None) is not None
        and any(a.email == user.email for a in booking.attendees))


def _runs_campaigns(user: User, target: Organisation | int) -> bool:
    """A member of the municipality: its campaigns, their slots and extras, its report
    factors."""
    return any(o.id == _org_id(target) for o in user.organisations(OrgKind.MUNICIPALITY))


def _manages_campaign(user: User, campaign: Campaign) -> bool:
    return _runs_campaigns(user, campaign.organisation_id)


Policy = Callable[[User, Any], bool]
T = TypeVar("T")

# (kind of object, action) -> policy. An int stands for an organisation's id.
POLICIES: dict[tuple[type, str], Policy] = {
    (Organisation, "view"): lambda u, o: is_member(u, _org_id(o)),
    (Organisation, "manage"): lambda u, o: is_member(u, _org_id(o)),
    (Organisation, "own"): lambda u, o: is_owner(u, _org_id(o)),
    (Organisation, "audit"): lambda u, o: is_admin(u) or is_owner(u, _org_id(o)),
    (Organisation, "approve"): lambda u, _o: is_admin(u),
    (ApiToken, "manage"): lambda u, token: token.user_id == u.id,
    (Organisation, "campaign"): _runs_campaigns,
    (Space, "view"): lambda u, s: is_member(u, s.organisation_id),
    (Space, "manage"): lambda u, s: is_member(u, s.organisation_id),
    (Space, "own"): lambda u, s: is_owner(u, s.organisation_id),
    (Unit, "manage"): lambda u, unit: is_member(u, unit.space.organisation_id),
    (Unit, "own"): lambda u, unit: is_owner(u, unit.space.organisation_id),
    (Photo, "manage"): lambda u, p: is_member(u, p.space.organisation_id),
    (Booking, "view"): _views_booking,
    (Booking, "manage"): _manages_booking,
    (Booking, "operate"): _operator_of,
    # Its receipts and invoices: those who manage it (not its invited attendees).
    (Booking, "receipt"): _manages_booking,
    (Campaign, "view"): _manages_campaign,
    (Campaign, "manage"): _manages_campaign,
    (CampaignSlot, "manage"): lambda u, slot: _manages_campaign(u, slot.campaign),
    (CampaignSlot, "consent"): lambda u, slot: is_member(u, slot.unit.space.organisation_id),
    (CampaignExtra, "manage"): lambda u, extra: _manages_campaign(u, extra.campaign),
}


def _kind(target: object) -> type:
    return Organisation if isinstance(target, int) else type(target)


def allowed(user: User | None, action: str, target: object) -> bool:
    """True when `user` may do `action` to `target`; a policy that does not exist is a
    programming error (KeyError), never a silent yes."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return POLICIES[(_kind(target), action)](user, target)


def fetch(session: Session, user: User | None, action: str, kind: type[T], ident: int) -> T:
    """The `kind` row with this id, loaded through its policy: when it does not exist the
    user is told exactly what a refusal tells them (nothing about what exists)."""
    target = session.get(kind, ident)
    if target is None:
        raise DomainError("not_yours" if kind is Booking else "not_found")
    require(user, action, target)
    return target


def require(user: User | None, action: str, target: object) -> None:
    """Nothing when allowed; otherwise the DomainError a user may see (see the module)."""
    if allowed(user, action, target):
        return
    kind = _kind(target)
    if kind is Booking:
        raise DomainError("not_yours")
    if action in ("own", "audit") and (allowed(user, "manage", target)
                                       if (kind, "manage") in POLICIES else False):
        raise DomainError("owner_only")
    raise DomainError("not_found")
