"""People: an organisation's members and invitations (every kind of organisation), the
invitation link's page, and a space's member list in the operator's console.

Views in views.py, forms in forms.py; the rules are services/invitations.py's and
services/space_members.py's, who may do what is booking.services.access's.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("people", __name__)

from booking.blueprints.people import views  # noqa: E402,F401 - registers the routes
