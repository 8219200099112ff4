"""Booking pages for companies: book, confirmation, my bookings, change, cancel, .ics, feeds.

Views in views.py, forms in forms.py; the rules are booking.services.booking_requests'
and reservations', who may do what is booking.services.access's.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("bookings", __name__)

from booking.blueprints.bookings import views  # noqa: E402,F401 - registers the routes
