"""Public pages: home, space pages, language switch, health probes, photos."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("public", __name__)

from booking.blueprints.public import views  # noqa: E402, F401  (its routes join bp)
