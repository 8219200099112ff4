"""The web layer's only access questions: is somebody logged in, and of which kind.

Whether that user may touch a given object is a policy of booking.services.access,
which the services ask themselves. Anonymous users go to the log-in page (401 problem
JSON under /api/); a logged-in user of the wrong kind gets 403.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import abort
from flask_login import current_user

from booking.extensions import login_manager
from booking.models import OrgKind


def _need_login() -> None:
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())


def members_of(*kinds: OrgKind) -> Callable[[], None]:
    """A before_request hook: only members of an organisation of one of `kinds` enter."""

    def _check() -> None:
        _need_login()
        if not any(m.organisation.kind in kinds for m in current_user.memberships):
            abort(403)

    return _check


def admin_only() -> Callable[[], None]:
    """A before_request hook: only the site admin enters."""

    def _check() -> None:
        _need_login()
        if not current_user.is_admin:
            abort(403)

    return _check
