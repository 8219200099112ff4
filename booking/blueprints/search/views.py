"""The search page and the Leaflet files."""

from __future__ import annotations

from datetime import date

from flask import abort, current_app, render_template, request, send_from_directory, url_for

from booking import unit_of_work
from booking.blueprints.search import bp
from booking.blueprints.search.forms import SearchForm, amenities
from booking.forms import show_error
from booking.labels import AMENITY_LABELS
from booking.models import AMENITIES
from booking.services import geocoding
from booking.services import search as search_service
from booking.services.errors import DomainError


@bp.get("/search")
def search():
    form = SearchForm(request.args)
    checked = amenities(request.args.getlist("amenities"))
    submitted = bool(request.args)
    result = None
    choices = None
    page = request.args.get("page", "1")
    page_number = int(page) if page.isdigit() and 0 < int(page) < 10_000 else 1
    status = 200
    if submitted and form.validate():
        try:
            result = search_service.search(
                unit_of_work.session(), form.query(checked, page_number),
                online=geocoding.geocoder_from_config(current_app.config))
        except DomainError as error:
            status = show_error(form, error)
            choices = error.extra.get("choices")  # an ambiguous place: the places it may be
    elif submitted:
        status = 422
    return render_template(
        "search/search.html", form=form, result=result, choices=choices,
        amenity_choices=[(a, AMENITY_LABELS[a]) for a in AMENITIES], checked=set(checked),
        page_url=_page_url, tile_url=current_app.config["MAP_TILE_URL"],
        tile_attribution=current_app.config.get("MAP_TILE_ATTRIBUTION", ""),
    ), status


def _page_url(page: int) -> str:
    args = request.args.to_dict(flat=False)
    args["page"] = [str(page)]
    return url_for("search.search", **args)


@bp.get("/search/leaflet/<path:filename>")
def leaflet(filename: str):
    """Leaflet's JS, CSS and images from the xstatic-leaflet package."""
    from xstatic.pkg import leaflet as xleaflet

    if filename not in ("leaflet.js", "leaflet.css") and not filename.startswith("images/"):
        abort(404)
    return send_from_directory(xleaflet.BASE_DIR, filename, max_age=86400)


@bp.app_template_filter("iso_date")
def _iso_date(value: date | None) -> str:
    return value.isoformat() if value else ""
