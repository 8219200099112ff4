"""Campaigns' public pages (Japanese and English, with a map of participating spaces),
companies' registration of participation, and operators' consent to slots on their
spaces: views in views.py, forms in forms.py. The public pages need no log-in; the others
let in companies or operators only (each view asks booking.guards)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

from booking.blueprints.campaigns import views  # noqa: E402, F401 - registers the routes
