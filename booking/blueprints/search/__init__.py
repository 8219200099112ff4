"""GET /search: the search page (works without JavaScript; the map is an extra), and the
Leaflet files served from the xstatic-leaflet package (no CDN)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("search", __name__)

from booking.blueprints.search import views  # noqa: E402, F401  (its routes join bp)
