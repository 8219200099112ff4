"""The open-data files and the page that lists them. Public, read-only: no form, no
login; the rules (which spaces, which columns) live in services/opendata.py."""

from __future__ import annotations

import json

from flask import Response, abort, render_template, url_for

from booking import unit_of_work
from booking.blueprints.opendata import bp
from booking.models import Space
from booking.services import opendata

# Public and the same for everyone; an hour old at most is fine for open data.
_CACHE = "public, max-age=3600"


def _space_url(space: Space) -> str:
    return url_for("public.space", slug=space.slug, _external=True)


def _headers(content_type: str, filename: str) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "Content-Disposition": f'inline; filename="{filename}"',
        "Cache-Control": _CACHE,
        "Link": f'<{opendata.LICENCE_URL}>; rel="license"',
        "Access-Control-Allow-Origin": "*",
    }


def _code_or_404(code: str) -> str:
    if not opendata.known(unit_of_work.session(), code):
        abort(404)
    return code


@bp.get("/")
def index():
    return render_template("opendata/index.html",
                           municipalities=opendata.municipalities(unit_of_work.session()),
                           licence=opendata.LICENCE, licence_url=opendata.LICENCE_URL)


@bp.get("/facilities.csv")
def facilities_csv():
    table = opendata.rows(unit_of_work.session(), _space_url)
    return Response(opendata.to_csv(table),
                    headers=_headers("text/csv; charset=utf-8", "000000_public_facility.csv"))


@bp.get("/facilities.json")
def facilities_json():
    table = opendata.rows(unit_of_work.session(), _space_url)
    body = opendata.to_json(table, title="公共施設一覧(全体)",
                            url=url_for("opendata.facilities_json", _external=True))
    return Response(json.dumps(body, ensure_ascii=False),
                    headers=_headers("application/json; charset=utf-8", "public_facility.json"))


@bp.get("/<code>/facilities.csv")
def municipality_csv(code: str):
    table = opendata.rows(unit_of_work.session(), _space_url, _code_or_404(code))
    return Response(opendata.to_csv(table),
                    headers=_headers("text/csv; charset=utf-8", f"{code}_public_facility.csv"))


@bp.get("/<code>/facilities.json")
def municipality_json(code: str):
    table = opendata.rows(unit_of_work.session(), _space_url, _code_or_404(code))
    body = opendata.to_json(table, title=f"公共施設一覧({code})",
                            url=url_for("opendata.municipality_json", code=code, _external=True))
    return Response(json.dumps(body, ensure_ascii=False),
                    headers=_headers("application/json; charset=utf-8",
                                     f"{code}_public_facility.json"))


@bp.get("/columns.json")
def columns():
    """The column list with its source and what we cannot fill (the file in the repo)."""
    return Response(json.dumps(opendata.definition(), ensure_ascii=False),
                    headers=_headers("application/json; charset=utf-8", "columns.json"))
