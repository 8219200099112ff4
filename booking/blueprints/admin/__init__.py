"""The site admin's pages: approve supporter organisations, read the whole audit log,
see the mail that could not be sent (parked in the outbox) and send one again."""

from __future__ import annotations

from flask import Blueprint

from booking.guards import admin_only

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(admin_only())

from booking.blueprints.admin import views  # noqa: E402, F401  (its routes join bp)
