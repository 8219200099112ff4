"""Recurring bookings ("毎週の予約"): the series form with its preview, the series page
(its occurrences, cancel one or all), the series' .ics.

Views in views.py, forms in forms.py; the rules are booking.services.series'.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("series", __name__)

from booking.blueprints.series import views  # noqa: E402,F401 - registers the routes
