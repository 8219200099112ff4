"""The operator console: spaces, units, opening hours, closures, the day's bookings and
photos, for members of the organisations that own spaces (operators and municipalities).

Views in views.py, forms in forms.py; the rules are the services' (space_admin,
closures, front_desk, exports, photos), who may do what is booking.services.access's.
"""

from __future__ import annotations

from flask import Blueprint

from booking.guards import members_of
from booking.models import OrgKind

bp = Blueprint("operator", __name__, url_prefix="/operator")
# Municipalities own spaces too (駒ヶ根市 runs Koto): the same console.
bp.before_request(members_of(OrgKind.OPERATOR, OrgKind.MUNICIPALITY))

from booking.blueprints.operator import views  # noqa: E402,F401 - registers the routes
