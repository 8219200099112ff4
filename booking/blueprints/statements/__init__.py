"""The operator's monthly statement (月次明細) of a space: the page with a month chooser,
its CSV files and its PDF, in the operator console (members of the space's organisation).

Views in views.py, the form in forms.py; the statement is services/statements.py's, who
may read it is booking.services.access's.
"""

from __future__ import annotations

from flask import Blueprint

from booking.guards import members_of
from booking.models import OrgKind

bp = Blueprint("statements", __name__, url_prefix="/operator")
# The console's audience (operators, and municipalities that own spaces).
bp.before_request(members_of(OrgKind.OPERATOR, OrgKind.MUNICIPALITY))

from booking.blueprints.statements import views  # noqa: E402,F401 - registers the routes
