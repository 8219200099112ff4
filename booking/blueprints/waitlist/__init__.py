"""The waitlist's pages for companies: join the line of a full unit (from the booking
form's refusal), their entries, an offer's page (confirm or decline), leave the line.

Views in views.py; the rules are booking.services.waitlist's.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("waitlist", __name__, url_prefix="/waitlist")

from booking.blueprints.waitlist import views  # noqa: E402,F401 - registers the routes
