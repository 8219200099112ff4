"""GET /search: the search page (works without JavaScript; the map is an extra), and the
Leaflet files served from the xstatic-leaflet package (no CDN)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, render_template, request, send_from_directory, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, SelectField, StringField
from wtforms.validators import NumberRange, Optional, Regexp, ValidationError

from booking.extensions import db
from booking.forms import DateField, options
from booking.labels import AMENITY_LABELS, UNIT_KINDS
from booking.models import AMENITIES
from booking.services import geocoding
from booking.services import search as search_service
from booking.services.errors import DomainError

bp = Blueprint("search", __name__)

RADII = (5, 10, 30, 50, 100, 300)
_TIME = Regexp(r"^([01]?\d|2[0-4]):[0-5]\d$", message=_l("時刻は 09:00 の形で入力してください。"))


def _minutes(value: str | None) -> int | None:
    if not value:
        return None
    hours, _sep, mins = value.partition(":")
    return int(hours) * 60 + int(mins)


class SearchForm(FlaskForm):
    # A GET form: searching changes nothing, and results must be linkable.
    class Meta:
        csrf = False

    near = StringField(_l("場所"), validators=[Optional()],
                       description=_l("駅名・市町村・都道府県(例: 静岡駅、駒ヶ根、吉川市、Shizuoka)"))
    radius_km = SelectField(_l("範囲"), default="30",
                            choices=options([(str(r), f"{r} km") for r in RADII]))
    date = DateField(_l("日付"), validators=[Optional()])
    end_date = DateField(_l("最終日"), validators=[Optional()],
                         description=_l("複数日のときだけ。一棟貸しは最後に泊まる夜の日付。"))
    start = StringField(_l("開始時刻"), validators=[Optional(), _TIME])
    end = StringField(_l("終了時刻"), validators=[Optional(), _TIME])
    seats = IntegerField(_l("人数"), default=1,
                         validators=[Optional(), NumberRange(min=1, max=search_service.MAX_SEATS,
                                                             message=_l("1から200の間で入力してください。"))])
    kind = SelectField(_l("種類"), default="",
                       choices=options([("", _l("すべて"))] + list(UNIT_KINDS.items())))
    max_price = IntegerField(_l("上限料金(円)"), validators=[
        Optional(), NumberRange(min=0, message=_l("0以上で入力してください。"))])
    free = BooleanField(_l("無料の枠だけ"))
    campaign = HiddenField()
    sort = SelectField(_l("並び順"), default="distance",
                       choices=options([("distance", _l("近い順")), ("price", _l("安い順"))]))

    def validate_end_date(self, field) -> None:
        if field.data and not self.date.data:
            raise ValidationError(_l("最終日を入れるときは日付も入れてください。"))
        if field.data and self.date.data and field.data < self.date.data:
            raise ValidationError(_l("最終日は日付より後にしてください。"))
        if field.data and self.date.data and (field.data - self.date.data).days >= search_service.MAX_DAYS:
            raise ValidationError(_l("検索できる期間は最長31日です。"))

    def validate_end(self, field) -> None:
        if (field.data and self.start.data and not self.start.errors
                and _minutes(field.data) <= _minutes(self.start.data)):
            raise ValidationError(_l("終了時刻は開始時刻より後にしてください。"))


def _amenities() -> tuple[list[str], list[str]]:
    """Checked amenities (a comma list in the API's style or repeated boxes) and unknown ones."""
    values: list[str] = []
    for raw in request.args.getlist("amenities"):
        values += [a.strip() for a in raw.split(",") if a.strip()]
    return [a for a in values if a in AMENITIES], [a for a in values if a not in AMENITIES]


@bp.get("/search")
def search():
    form = SearchForm(request.args)
    amenities, _unknown = _amenities()
    submitted = bool(request.args)
    result = None
    choices = None
    page = request.args.get("page", "1")
    page_number = int(page) if page.isdigit() and 0 < int(page) < 10_000 else 1
    status = 200
    if submitted and form.validate():
        query = search_service.SearchQuery(
            near=form.near.data or None, radius_km=float(form.radius_km.data or 30),
            date=form.date.data, end_date=form.end_date.data,
            start_min=_minutes(form.start.data), end_min=_minutes(form.end.data),
            seats=form.seats.data or 1, kind=form.kind.data or None, amenities=tuple(amenities),
            max_price=form.max_price.data, free=bool(form.free.data),
            campaign=form.campaign.data or None, sort=form.sort.data or "distance",
            page=page_number, per_page=20,
        )
        try:
            result = search_service.search(
                db.session, query, online=geocoding.geocoder_from_config(current_app.config))
        except DomainError as error:
            status = 422
            if error.code in ("unknown_place", "ambiguous_place"):
                form.near.errors = [error.message]
                choices = error.extra.get("choices")
            elif error.code == "bad_seats":
                form.seats.errors = [error.message]
            else:
                form.date.errors = [error.message]
    elif submitted:
        status = 422
    return render_template(
        "search/search.html", form=form, result=result, choices=choices,
        amenity_choices=[(a, AMENITY_LABELS[a]) for a in AMENITIES], checked=set(amenities),
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
