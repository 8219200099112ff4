"""Open data: the public spaces as the 公共施設一覧 of the 自治体標準オープンデータセット,
per municipality and for the whole site, CSV and JSON; anyone may fetch them."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("opendata", __name__, url_prefix="/opendata")

from booking.blueprints.opendata import views  # noqa: E402, F401  (its routes join bp)
