"""GET /api/v1/spaces (search), /api/v1/spaces/<id>, /api/v1/units/<id>/availability."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Literal
from urllib.parse import quote

from flask import current_app, g, request, url_for
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from booking import clock, unit_of_work
from booking.blueprints.api.common import (
    ApiDate,
    InvalidInput,
    bp,
    problem,
    token_optional,
    validation_errors,
)
from booking.blueprints.api.openapi import operation
from booking.blueprints.api.schemas import SearchResult, SpaceDetail, UnitAvailability
from booking.formatting import hhmm, parse_hhmm
from booking.models import AMENITIES, PricePer, Unit
from booking.prefectures import by_code
from booking.services import availability, geocoding, space_members
from booking.services import search as search_service
from booking.services import spaces as space_service
from booking.services.availability import TOKYO, at
from booking.services.closures import closures_ahead

MAX_AVAILABILITY_DAYS = 62
_HHMM = {"pattern": r"^\d{1,2}:\d{2}$"}


class SearchParams(BaseModel):
    """Query parameters of GET /api/v1/spaces (shared/API.md)."""

    near: str | None = Field(default=None, max_length=200,
                             description="place text: 静岡駅, 駒ヶ根, Yoshikawa, a postal code")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    radius_km: float = Field(default=search_service.DEFAULT_RADIUS_KM, gt=0,
                             le=search_service.MAX_RADIUS_KM)
    prefecture: str | None = Field(default=None, max_length=20, description="name or JIS code")
    date: ApiDate | None = None
    end_date: ApiDate | None = None
    start: str | None = Field(default=None, json_schema_extra=_HHMM, description="HH:MM, Tokyo")
    end: str | None = Field(default=None, json_schema_extra=_HHMM, description="HH:MM, Tokyo")
    seats: int = Field(default=1, ge=1, le=search_service.MAX_SEATS)
    kind: Literal["desk", "meeting_room", "private_room", "whole_house"] | None = None
    amenities: Annotated[list[str], WithJsonSchema({
        "type": "string", "description": f"comma separated, all required: {', '.join(AMENITIES)}"
    })] = Field(default_factory=list)
    max_price: int | None = Field(default=None, ge=0)
    free: bool = False
    campaign: str | None = Field(default=None, max_length=80)
    sort: Literal["distance", "price"] = "distance"
    page: int = Field(default=1, ge=1, le=10_000)
    per_page: int = Field(default=20, ge=1, le=search_service.MAX_PER_PAGE)

    @field_validator("amenities", mode="before")
    @classmethod
    def _split(cls, value):
        if isinstance(value, str):
            return [a.strip() for a in value.split(",") if a.strip()]
        return value

    @field_validator("amenities")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [a for a in value if a not in AMENITIES]
        if unknown:
            raise ValueError(f"unknown amenities: {', '.join(unknown)}")
        return value

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        parse_hhmm(value)
        return value or None

    @model_validator(mode="after")
    def _coherent(self):
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together")
        if self.end_date is not None and self.date is None:
            raise ValueError("end_date needs date")
        if self.end_date is not None and self.date is not None and self.end_date < self.date:
            raise ValueError("end_date must not be before date")
        if (self.start and self.end and parse_hhmm(self.start) >= parse_hhmm(self.end)):
            raise ValueError("start must be before end")
        return self

    def to_query(self) -> search_service.SearchQuery:
        return search_service.SearchQuery(
            near=self.near, lat=self.lat, lon=self.lon, radius_km=self.radius_km,
            prefecture=self.prefecture, date=self.date, end_date=self.end_date,
            start_min=parse_hhmm(self.start), end_min=parse_hhmm(self.end), seats=self.seats,
            kind=self.kind, amenities=tuple(self.amenities), max_price=self.max_price,
            free=self.free, campaign=self.campaign, sort=self.sort, page=self.page,
            per_page=self.per_page,
        )


def _params(model: type[BaseModel]) -> BaseModel:
    data = {k: v for k, v in request.args.items() if v != ""}
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(validation_errors(error)) from None


def price_json(amount: int, per: str) -> dict:
    return {"amount": amount, "currency": "JPY", "per": str(per)}


def place_json(place: geocoding.Place | None) -> dict | None:
    if place is None:
        return None
    return {"name": place.name, "label": place.label, "kind": place.kind, "lat": place.lat,
            "lon": place.lon, "prefecture": place.prefecture_name or None,
            # the point stands for an area (a town at its municipality), not an address
            "approximate": place.approximate}


def result_json(result: search_service.SearchResult) -> dict:
    q = result.query
    space_url = _space_urls()
    return {
        "query": {
            "near": q.near, "place": place_json(result.place),
            "lat": result.place.lat if result.place else None,
            "lon": result.place.lon if result.place else None,
            "radius_km": q.radius_km if result.place and not result.prefecture else None,
            "prefecture": result.prefecture.name if result.prefecture else None,
            "date": result.first_day.isoformat(), "end_date": result.last_day.isoformat(),
            "start": hhmm(q.start_min) if q.start_min is not None else None,
            "end": hhmm(q.end_min) if q.end_min is not None else None,
            "seats": q.seats, "kind": q.kind, "amenities": list(q.amenities),
            "max_price": q.max_price, "free": q.free, "campaign": q.campaign, "sort": q.sort,
            "per_page": q.per_page,
        },
        "total": result.total,
        "page": result.page,
        "per_page": result.per_page,
        "pages": result.pages,
        "results": [space_result_json(r, space_url) for r in result.results],
    }


# What the space page's URL rule quotes a slug with (werkzeug's default converter).
_SLUG_SAFE = "!$&'()*+,/:;=@"


def _space_urls() -> Callable[[str], str]:
    """The space page's external URL of a slug, as url_for gives it: built once per
    answer and completed per space (url_for per result was a tenth of a search)."""
    marker = "s"
    base = url_for("public.space", slug=marker, _external=True)
    prefix = base[:-len(marker)]
    return lambda slug: prefix + quote(slug, safe=_SLUG_SAFE)


def space_result_json(r: search_service.SpaceResult,
                      space_url: Callable[[str], str] | None = None) -> dict:
    s = r.space
    pref = by_code(s.prefecture_code)
    return {
        "id": s.id, "name": s.name, "name_en": s.name_en, "kind": str(s.kind),
        "address": s.address, "prefecture": pref.name if pref else None, "city": s.city,
        "lat": s.lat, "lon": s.lon, "distance_km": r.distance_km,
        "amenities": list(s.amenities or []),
        "url": (space_url or _space_urls())(s.slug),
        "units": [unit_result_json(u) for u in r.units],
    }


def unit_result_json(u: search_service.UnitResult) -> dict:
    unit = u.unit
    offer = u.campaign
    return {
        "id": unit.id, "name": unit.name, "name_en": unit.name_en, "kind": str(unit.kind),
        "capacity": unit.capacity, "fits_people": unit.fits_people,
        "available_seats": u.available_seats,
        # An hourly unit searched by date alone: the hours free (added in issue 18).
        "free_hours": [{"start": hhmm(a), "end": hhmm(b)} for a, b in u.free_hours],
        "price": price_json(unit.price_amount, unit.price_per),
        "members_only": unit.members_only,
        "campaign": None if offer is None or offer.slot is None else {
            "slug": offer.slot.campaign.slug, "name": offer.slot.campaign.name,
            "name_en": offer.slot.campaign.name_en,
            "price": price_json(offer.price_amount, offer.price_per),
            "seats_left": offer.seats_left,
        },
    }


@bp.get("/spaces")
@operation(operation_id="searchSpaces", tag="spaces", summary="Search spaces by place and date",
           query=SearchParams, responses={200: SearchResult}, problems=(401, 422),
           security="optional",
           description="Public. With a bearer token, the members-only units of the caller's "
                       "member spaces are found too (a token sent must be valid: else 401). "
                       "A place that cannot be resolved is a 422 (unknown_place, "
                       "ambiguous_place with `choices`).")
@token_optional
def search_spaces():
    params = _params(SearchParams)
    online = geocoding.geocoder_from_config(current_app.config)
    session = unit_of_work.session()
    # With a token, a member of a space finds its members-only units, as on the page.
    result = search_service.search(session, params.to_query(), online=online,
                                   members=space_members.spaces_of(session, g.api_user),
                                   alone=True)
    return result_json(result)


@bp.get("/spaces/<int:space_id>")
@operation(operation_id="getSpace", tag="spaces",
           summary="A space with its units, opening hours, closures and campaign slots ahead",
           responses={200: SpaceDetail}, problems=(404,))
def space_detail(space_id: int):
    session = unit_of_work.session()
    space = space_service.public_space(session, space_id=space_id)
    if space is None:
        return problem(404, "not_found", "No such space.")
    today = clock.today()
    closures = closures_ahead(session, space, today)
    offers = [o for o in space_service.campaign_offers(session, space) if not o.ended(today)]
    pref = by_code(space.prefecture_code)
    return {
        "id": space.id, "slug": space.slug, "name": space.name, "name_en": space.name_en,
        "kind": str(space.kind), "description": space.description,
        "description_en": space.description_en, "address": space.address,
        "prefecture": pref.name if pref else None, "city": space.city,
        "lat": space.lat, "lon": space.lon,
        "coordinates_approximate": space.coordinates_approximate,
        "nearest_station": space.nearest_station, "access": space.access,
        "access_en": space.access_en, "amenities": list(space.amenities or []),
        "url": url_for("public.space", slug=space.slug, _external=True),
        "closed_on_holidays": space.closed_on_holidays,
        "opening_hours": [
            {"weekday": h.weekday, "opens": hhmm(h.opens_min), "closes": hhmm(h.closes_min)}
            for h in space.opening_hours
        ],
        "units": [
            {"id": u.id, "name": u.name, "name_en": u.name_en, "kind": str(u.kind),
             "capacity": u.capacity, "fits_people": u.fits_people,
             "price": price_json(u.price_amount, u.price_per), "members_only": u.members_only,
             "min_length": u.min_length, "max_length": u.max_length,
             "cancel_deadline_hours": u.cancel_deadline_hours,
             **({"checkin": hhmm(u.checkin_min), "checkout": hhmm(u.checkout_min)}
                if u.price_per == PricePer.NIGHT else {})}
            for u in space.units
        ],
        "closures": [
            {"unit_id": c.unit_id, "start_date": c.start_date.isoformat(),
             "end_date": c.end_date.isoformat(), "reason": c.reason}
            for c in closures
        ],
        "campaigns": [
            {"slug": o.campaign.slug, "name": o.campaign.name, "name_en": o.campaign.name_en,
             "unit_id": o.unit_id, "start_date": o.start_date.isoformat(),
             "end_date": o.end_date.isoformat(), "daily_start": hhmm(o.daily_start_min),
             "daily_end": hhmm(o.daily_end_min), "seats": o.seats,
             "price": price_json(o.price_for(), o.unit.price_per)}
            for o in offers
        ],
    }


class AvailabilityParams(BaseModel):
    from_: ApiDate | None = Field(default=None, alias="from", description="YYYY-MM-DD")
    to: ApiDate | None = Field(default=None, description="YYYY-MM-DD")

    @model_validator(mode="after")
    def _range(self):
        first = self.from_ or clock.today()
        last = self.to or first + timedelta(days=6)
        if last < first:
            raise ValueError("to must not be before from")
        if (last - first).days >= MAX_AVAILABILITY_DAYS:
            raise ValueError(f"at most {MAX_AVAILABILITY_DAYS} days")
        self.from_, self.to = first, last
        return self


@bp.get("/units/<int:unit_id>/availability")
@operation(operation_id="getUnitAvailability", tag="spaces",
           summary="Free seats per day (and per hour for hourly units)",
           query=AvailabilityParams, responses={200: UnitAvailability}, problems=(404, 422),
           description=f"From `from` (default today) to `to` (default six days later), at "
                       f"most {MAX_AVAILABILITY_DAYS} days.")
def unit_availability(unit_id: int):
    params = _params(AvailabilityParams)
    session = unit_of_work.session()
    unit = space_service.public_unit(session, unit_id)
    if unit is None:
        return problem(404, "not_found", "No such unit.")
    first, last = params.from_, params.to
    assert first is not None and last is not None
    line = availability.timeline(session, unit, at(first, 0), at(last + timedelta(days=2), 0))
    days = []
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        days.append(_day_json(unit, line, day))
    return {
        "unit_id": unit.id, "space_id": unit.space_id, "kind": str(unit.kind),
        "capacity": unit.capacity, "price": price_json(unit.price_amount, unit.price_per),
        "members_only": unit.members_only,
        "from": first.isoformat(), "to": last.isoformat(), "days": days,
    }


def _day_json(unit: Unit, line: availability.Timeline, day: date) -> dict:
    """One day: regular free seats over the opening hours (for night units, the night from
    check-in to the next check-out), campaign slots, and per hour for hourly units."""
    window = availability.regular_window(unit, day)
    entry: dict = {"date": day.isoformat(), "open": window is not None}
    if unit.price_per == PricePer.NIGHT:
        start, end = at(day, unit.checkin_min), at(day + timedelta(days=1), unit.checkout_min)
        entry.update(checkin=start.isoformat(), checkout=end.isoformat(),
                     available_seats=line.min_free(start, end))
    elif window is not None:
        entry.update(opens=window[0].astimezone(TOKYO).strftime("%H:%M"),
                     closes=hhmm(int((window[1] - at(day, 0)).total_seconds() // 60)),
                     available_seats=line.min_free(*window))
    else:
        entry["available_seats"] = 0
    if unit.members_only:
        entry["available_seats"] = 0  # the public books it only through a campaign slot
    if unit.price_per == PricePer.HOUR and window is not None:
        hours = []
        t = window[0]
        while t < window[1]:
            nxt = min(t + timedelta(hours=1), window[1])
            hours.append({"start": t.isoformat(), "end": nxt.isoformat(),
                          "available_seats": 0 if unit.members_only else line.min_free(t, nxt)})
            t = nxt
        entry["hours"] = hours
    campaigns = []
    for slot in line.slots:
        w = availability.slot_window(slot, day)
        if w is None:
            continue
        campaigns.append({
            "slug": slot.campaign.slug, "name": slot.campaign.name,
            "start": w[0].isoformat(), "end": w[1].isoformat(),
            "price": price_json(slot.price_for(unit), unit.price_per),
            "seats_left": line.min_free(w[0], w[1], slot.id),
        })
    entry["campaigns"] = campaigns
    return entry
