"""The search page (results as cards) and the Leaflet files."""

from __future__ import annotations

from datetime import date

from flask import abort, current_app, render_template, request, send_from_directory, url_for
from flask_babel import gettext as _
from flask_login import current_user

from booking import unit_of_work
from booking.blueprints.search import bp
from booking.blueprints.search.forms import SearchForm, amenities
from booking.formatting import hhmm, yen_taxed
from booking.forms import show_error
from booking.labels import AMENITY_LABELS, PER
from booking.models import AMENITIES
from booking.services import geocoding, space_members
from booking.services import search as search_service
from booking.services.errors import DomainError
from booking.services.search import Offer, SearchResult, SpaceResult, UnitResult


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
                online=geocoding.geocoder_from_config(current_app.config), photos=True,
                members=space_members.spaces_of(unit_of_work.session(), current_user),
                alone=True)
        except DomainError as error:
            status = show_error(form, error)
            choices = error.extra.get("choices")  # an ambiguous place: the places it may be
    elif submitted:
        status = 422
    return render_template(
        "search/search.html", form=form, result=result, choices=choices,
        amenity_choices=[(a, AMENITY_LABELS[a]) for a in AMENITIES], checked=set(checked),
        page_url=_page_url, book_url=_book_url, price_groups=_price_groups, badges=_badges,
        unit_price=_unit_price, from_price=_from_price, amenity_codes=set(AMENITIES),
        tile_url=current_app.config["MAP_TILE_URL"],
        tile_attribution=current_app.config.get("MAP_TILE_ATTRIBUTION", ""),
    ), status


def _page_url(page: int) -> str:
    args = request.args.to_dict(flat=False)
    args["page"] = [str(page)]
    return url_for("search.search", **args)


def _book_url(result: SearchResult, unit: UnitResult, offer: Offer) -> str:
    """The booking form of this unit (through the offer's campaign slot, if any) with the
    searched date(s), hours and seats filled in."""
    q = result.query
    args: dict[str, object] = {"unit_id": unit.unit.id, "date": result.first_day.isoformat(),
                               "seats": q.seats}
    if offer.slot is not None:
        args["slot"] = offer.slot.id
    if result.last_day != result.first_day:
        args["end_date"] = result.last_day.isoformat()
    if q.start_min is not None:
        args["start"] = hhmm(q.start_min)
    if q.end_min is not None:
        args["end"] = hhmm(q.end_min)
    return url_for("bookings.new", **args)


def _unit_price(amount: int, per: str) -> str:
    """'¥1,500(税込) / 1時間'; '無料'."""
    if amount == 0:
        return yen_taxed(0)
    return _("%(price)s / %(per)s", price=yen_taxed(amount), per=PER[str(per)])


def _from_price(amount: int, per: str) -> str:
    """The least a kind of unit costs: '¥1,000(税込) / 1日〜'; '無料'."""
    if amount == 0:
        return yen_taxed(0)
    return _("%(price)s / %(per)s〜", price=yen_taxed(amount), per=PER[str(per)])


def _price_groups(r: SpaceResult) -> list[tuple[str, str, int]]:
    """The space's lowest price per kind of unit (and unit of price) it offers here:
    (kind, per, yen), in the order the units come."""
    lowest: dict[tuple[str, str], int] = {}
    for u in r.units:
        key = (str(u.unit.kind), str(u.unit.price_per))
        lowest[key] = min(u.lowest_price, lowest.get(key, u.lowest_price))
    return [(kind, per, price) for (kind, per), price in lowest.items()]


def _badges(r: SpaceResult) -> list[str]:
    """What the card says of its offers at a glance: 'free' (a campaign slot at no
    charge), 'subsidised' (a slot the municipality pays part of), 'members' (a unit
    only members book, open here through a campaign)."""
    offers = [o for u in r.units for o in u.offers if o.slot is not None]
    found = []
    if any(o.price_amount == 0 for o in offers):
        found.append("free")
    if any(o.slot.subsidy_cap for o in offers if o.slot is not None):
        found.append("subsidised")
    if any(u.unit.members_only for u in r.units):
        found.append("members")
    return found


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
