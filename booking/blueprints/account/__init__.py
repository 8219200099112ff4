"""Accounts: sign-up, log-in, log-out (here and everywhere), the user's own page with
password, API tokens, personal data (export, delete) and audit logs."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("account", __name__, url_prefix="/account")

from booking.blueprints.account import views  # noqa: E402, F401  (its routes join bp)
