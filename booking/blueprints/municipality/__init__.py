"""The municipality's pages (campaigns, slots, extras, reports, factors): views in
views.py, forms in forms.py. Only members of a municipality enter."""

from __future__ import annotations

from flask import Blueprint

from booking import guards
from booking.models import OrgKind

bp = Blueprint("municipality", __name__, url_prefix="/municipality")
bp.before_request(guards.members_of(OrgKind.MUNICIPALITY))

from booking.blueprints.municipality import views  # noqa: E402, F401 - registers the routes
