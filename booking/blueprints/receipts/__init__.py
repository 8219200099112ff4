"""Receipts: a booking's receipt, qualified invoice, credit note or usage certificate as
a PDF, and the page where an operator's or municipality's owners set the invoice
registration number. The rules are booking.services.receipts'; who may download is
booking.services.access's ("receipt" on a booking)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("receipts", __name__)

from booking.blueprints.receipts import views  # noqa: E402,F401 - registers the routes
