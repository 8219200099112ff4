"""Authorisation in one place: who may act for which organisation.

Every blueprint asks here instead of hiding links or repeating membership checks:

    from booking.services.authz import require_member, require_kind, require_admin

    org = require_member(space.organisation_id)                 # any member, else 403
    org = require_member(org_id, roles=(Role.OWNER,))           # owners only
    orgs = require_kind(OrgKind.OPERATOR)                       # the user's operator orgs
    bp.before_request(kind_required(OrgKind.MUNICIPALITY))      # a whole blueprint

Anonymous users are sent to the log-in page (401 problem+json under /api/), members of
other organisations get 403. The plain functions (`is_member`, `may_manage`) take a user
and work outside a request too, e.g. in services and the API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import abort
from flask_login import current_user

from booking.extensions import db, login_manager
from booking.models import Organisation, OrgKind, Role, User


def role_in(user: User | None, organisation_id: int) -> Role | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.role_in(organisation_id)


def is_member(user: User | None, organisation_id: int,
              roles: Iterable[Role] | None = None) -> bool:
    """True when the user belongs to the organisation (with one of `roles`, if given)."""
    role = role_in(user, organisation_id)
    if role is None:
        return False
    return roles is None or role in tuple(roles)


def may_see_audit(user: User | None, organisation_id: int) -> bool:
    """Owners of the organisation and the site admin read its audit log."""
    if user is not None and getattr(user, "is_admin", False):
        return True
    return is_member(user, organisation_id, roles=(Role.OWNER,))


def _need_login() -> None:
    """Anonymous: the log-in page (Flask-Login's handler), or a 401 for the API."""
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())


def require_login() -> User:
    _need_login()
    return current_user._get_current_object()  # type: ignore[attr-defined]


def require_member(organisation_id: int, roles: Iterable[Role] | None = None,
                   kind: OrgKind | None = None) -> Organisation:
    """The organisation, when the current user may act for it; otherwise 401/403/404.

    404 when the organisation does not exist; 403 when the user is not a member (with a
    fitting role), or when the organisation is not of `kind`.
    """
    _need_login()
    org = db.session.get(Organisation, organisation_id)
    if org is None:
        abort(404)
    if kind is not None and org.kind != kind:
        abort(403)
    if not is_member(current_user, organisation_id, roles):
        abort(403)
    return org


def require_kind(kind: OrgKind, roles: Iterable[Role] | None = None) -> list[Organisation]:
    """The current user's organisations of `kind` (non-empty), else 401/403."""
    _need_login()
    wanted = tuple(roles) if roles is not None else None
    orgs = [m.organisation for m in current_user.memberships
            if m.organisation.kind == kind and (wanted is None or m.role in wanted)]
    if not orgs:
        abort(403)
    return orgs


def require_admin() -> User:
    _need_login()
    if not current_user.is_admin:
        abort(403)
    return current_user._get_current_object()  # type: ignore[attr-defined]


def kind_required(kind: OrgKind, roles: Iterable[Role] | None = None) -> Callable[[], None]:
    """A before_request hook: only members of an organisation of `kind` enter the blueprint."""

    def _check() -> None:
        require_kind(kind, roles)

    return _check


def admin_required() -> Callable[[], None]:
    """A before_request hook: only the site admin enters the blueprint."""

    def _check() -> None:
        require_admin()

    return _check
