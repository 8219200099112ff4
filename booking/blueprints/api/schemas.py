"""The shapes of the API's answers, as pydantic models: the OpenAPI document is made from them.

The views build their answers as plain dicts (validating every answer through pydantic would
cost more than the answer itself); these models only describe them. tests/test_api_contract.py
checks every answer the API tests receive against the document, with no property allowed that
is not listed here, so a field added to a view and not to its model fails the suite.

Fields without a default are always present; `absent()` marks one that an answer may leave
out (never null: null is said by the type).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from booking.models import BookingStatus, PricePer, SpaceKind, UnitKind, WaitlistStatus

HHMM = {"pattern": r"^\d{2}:\d{2}$"}


def absent(description: str = "", **schema: Any) -> Any:
    """A property some answers leave out (not required, no default in the document);
    `schema`: more JSON Schema keywords for it (pattern, format)."""
    def document(generated: dict[str, Any]) -> None:
        generated.pop("default", None)
        generated.update(schema)

    return Field(default=None, description=description or None, json_schema_extra=document)


class Shape(BaseModel):
    """An answer's shape (documentation only: never used to parse or build an answer)."""

    model_config = ConfigDict(use_enum_values=True)


# ------------------------------------------------------------------------------ shared

class Price(Shape):
    amount: int = Field(description="Whole yen, tax included")
    currency: Literal["JPY"]
    per: PricePer


class Problem(Shape):
    """An RFC 9457 problem document: every 4xx and 5xx answer of the API."""

    type: str = Field(description="A URI naming the kind of problem, one per `code`: "
                                  "GET it for its title, status and meaning")
    title: str = Field(description="A short English summary, fixed per type")
    status: int
    detail: str = absent("What went wrong this time, in the user's language (Japanese "
                         "unless the account or `?lang=en` says English)")
    code: str = Field(description="Stable machine-readable code (e.g. not_enough_seats)")
    errors: dict[str, list[str]] = absent("422 invalid_input: the messages per field "
                                          "(`company.prefecture` for nested ones)")
    available: int = absent("not_enough_seats, extra_sold_out: how many are left")
    limit: int = absent("The limit that was reached (campaign rules, company limits, "
                        "attendees, extras, verification mail)")
    minimum: int = absent("too_short, bad_seats: the smallest allowed")
    maximum: int = absent("too_long, bad_seats: the largest allowed")
    per: PricePer = absent("too_short, too_long: the unit of minimum/maximum")
    date: str = absent("closed, campaign_closed, series_date_taken: the day concerned "
                       "(YYYY-MM-DD)")
    deadline: str = absent("cancel_deadline: when it passed (ISO 8601)")
    latest: str = absent("too_far_ahead: the last day that can be booked now")
    max_days_ahead: int = absent("too_far_ahead: the unit's booking horizon in days")
    hours: int = absent("lead_time: hours of notice the unit needs; verify_link_expired: "
                        "how long a link works")
    days: int = absent("search_too_long: the longest period a search may cover")
    place: str = absent("unknown_place, ambiguous_place: the place text asked for")
    choices: list[PlaceChoice] = absent("ambiguous_place: the places it may mean")
    checkin: str = absent("whole_stays: the unit's check-in time (HH:MM)", **HHMM)
    checkout: str = absent("whole_stays: the unit's check-out time (HH:MM)", **HHMM)
    extra: int = absent("extra_*: the id of the extra concerned")
    max: int = absent("series_too_many: the most dates a series books")
    last: str = absent("series_too_many: the last date that fits (YYYY-MM-DD)")


class PlaceChoice(Shape):
    label: str
    near: str = Field(description="Send this as `near` to choose it")
    lat: float
    lon: float
    prefecture: str


class ProblemType(Shape):
    """What a problem `type` URI answers: the kind of problem, fixed per code."""

    type: str
    code: str
    title: str
    status: int = Field(description="The HTTP status it is answered with")


class ProblemTypes(Shape):
    results: list[ProblemType]


# ------------------------------------------------------------------------------ search

class FreeHours(Shape):
    start: str = Field(json_schema_extra=HHMM)
    end: str = Field(json_schema_extra=HHMM)


class UnitCampaignOffer(Shape):
    slug: str
    name: str
    name_en: str
    price: Price
    seats_left: int


class SearchUnit(Shape):
    id: int
    name: str
    name_en: str
    kind: UnitKind
    capacity: int
    fits_people: int
    available_seats: int
    free_hours: list[FreeHours] = Field(
        default_factory=list,
        description="For a unit priced by the hour searched without a start and an end "
                    "time: the hours (Tokyo, HH:MM) free for the request on every day asked "
                    "for, each at least the unit's minimum length; its available_seats are "
                    "the fewest free in them. Empty otherwise.")
    price: Price
    members_only: bool
    campaign: UnitCampaignOffer | None


class SearchSpace(Shape):
    id: int
    name: str
    name_en: str
    kind: SpaceKind
    address: str
    prefecture: str | None
    city: str
    lat: float | None
    lon: float | None
    distance_km: float | None
    amenities: list[str]
    url: str
    units: list[SearchUnit]


class Place(Shape):
    name: str
    label: str
    kind: str = Field(description="station, city, prefecture, space_city, coordinates, "
                                  "online, town, postal_code")
    lat: float
    lon: float
    prefecture: str | None
    approximate: bool = Field(description="The point stands for an area (a town at its "
                                          "municipality), not an address")


class SearchQuery(Shape):
    """The search as understood: the place resolved, the defaults filled in."""

    near: str | None
    place: Place | None
    lat: float | None
    lon: float | None
    radius_km: float | None
    prefecture: str | None
    date: date
    end_date: date
    start: str | None
    end: str | None
    seats: int
    kind: UnitKind | None
    amenities: list[str]
    max_price: int | None
    free: bool
    campaign: str | None
    sort: Literal["distance", "price"]
    per_page: int


class SearchResult(Shape):
    query: SearchQuery
    total: int
    page: int
    per_page: int
    pages: int
    results: list[SearchSpace]


# ------------------------------------------------------------------------------ a space

class OpeningHours(Shape):
    weekday: int = Field(ge=0, le=6, description="Monday = 0")
    opens: str = Field(json_schema_extra=HHMM)
    closes: str = Field(json_schema_extra=HHMM)


class SpaceUnit(Shape):
    id: int
    name: str
    name_en: str
    kind: UnitKind
    capacity: int
    fits_people: int
    price: Price
    members_only: bool
    min_length: int = Field(description="In the unit of price.per")
    max_length: int = Field(description="In the unit of price.per")
    cancel_deadline_hours: int
    checkin: str = absent("Units let by the night: check-in time", **HHMM)
    checkout: str = absent("Units let by the night: check-out time", **HHMM)


class SpaceClosure(Shape):
    unit_id: int
    start_date: date
    end_date: date
    reason: str


class SpaceCampaign(Shape):
    slug: str
    name: str
    name_en: str
    unit_id: int
    start_date: date
    end_date: date
    daily_start: str = Field(json_schema_extra=HHMM)
    daily_end: str = Field(json_schema_extra=HHMM)
    seats: int
    price: Price


class SpaceDetail(Shape):
    id: int
    slug: str
    name: str
    name_en: str
    kind: SpaceKind
    description: str
    description_en: str
    address: str
    prefecture: str | None
    city: str
    lat: float | None
    lon: float | None
    coordinates_approximate: bool
    nearest_station: str
    access: str
    access_en: str
    amenities: list[str]
    url: str
    closed_on_holidays: bool
    opening_hours: list[OpeningHours]
    units: list[SpaceUnit]
    closures: list[SpaceClosure] = Field(description="Closures from today on")
    campaigns: list[SpaceCampaign] = Field(description="Campaign slots not yet ended")


# ------------------------------------------------------------------------------ availability

class AvailabilityHour(Shape):
    start: str = Field(json_schema_extra={"format": "date-time"})
    end: str = Field(json_schema_extra={"format": "date-time"})
    available_seats: int


class AvailabilityCampaign(Shape):
    slug: str
    name: str
    start: str = Field(json_schema_extra={"format": "date-time"})
    end: str = Field(json_schema_extra={"format": "date-time"})
    price: Price
    seats_left: int


class AvailabilityDay(Shape):
    date: date
    open: bool
    available_seats: int
    opens: str = absent("Open days of units let by the day or hour", **HHMM)
    closes: str = absent("Open days of units let by the day or hour", **HHMM)
    checkin: str = absent("Units let by the night: the night's start",
                          format="date-time")
    checkout: str = absent("Units let by the night: the next morning's check-out",
                           format="date-time")
    hours: list[AvailabilityHour] = absent("Units priced by the hour, on open days")
    campaigns: list[AvailabilityCampaign]


class UnitAvailability(Shape):
    unit_id: int
    space_id: int
    kind: UnitKind
    capacity: int
    price: Price
    members_only: bool
    from_: date = Field(alias="from")
    to: date
    days: list[AvailabilityDay]


# ------------------------------------------------------------------------------ bookings

class BookingPrice(Shape):
    amount: int = Field(description="What the company pays, whole yen, tax included")
    currency: Literal["JPY"]
    subsidy: int = Field(description="What the municipality pays")


class PriceBreakdown(Shape):
    """Who pays what, all tax-included yen: base (the unit's own price for the length and
    seats) − campaign_discount − municipality_pays = company_pays, of which consumption_tax
    at tax_rate_percent."""

    base: int
    campaign_discount: int
    municipality_pays: int
    company_pays: int
    consumption_tax: int
    tax_rate_percent: int


class BookedExtra(Shape):
    id: int
    name: str
    quantity: int


class Booking(Shape):
    reference: str
    status: BookingStatus
    unit_id: int
    space_id: int
    space: str
    unit: str
    start: str = Field(json_schema_extra={"format": "date-time"})
    end: str = Field(json_schema_extra={"format": "date-time"})
    seats: int
    price: BookingPrice
    price_breakdown: PriceBreakdown
    cancel_deadline: str = Field(json_schema_extra={"format": "date-time"},
                                 description="Until then the company may cancel or change it")
    campaign: str | None = Field(description="The campaign's slug")
    attendees: list[str]
    extras: list[BookedExtra] = Field(description="Extras of the campaign lent with it")
    sequence: int
    series_id: int | None = Field(description="The weekly series this booking is one date "
                                              "of (its page: /series/{series_id}), or null")
    ics_url: str = Field(description="The booking as iCalendar; send the same bearer token")
    url: str
    receipt_url: str | None = Field(
        description="The booking's receipt or qualified invoice (a usage certificate when "
                    "free, a credit note once cancelled after issue) as PDF, issued on first "
                    "download with a number that never changes; ?era=wareki for 和暦 dates; "
                    "null when there is none")


class BookingCreated(Booking):
    """The first booking made; `bookings` lists all of them when `dates` asked for several."""

    bookings: list[Booking] = absent("Every booking made, when `dates` named several days")


class BookingList(Shape):
    total: int
    page: int
    results: list[Booking]


# ------------------------------------------------------------------------------ waitlist

class WaitlistOffer(Shape):
    """Seats held for the entry: a booking of status `offered` until `expires_at`; once
    confirmed, the booking itself (GET /bookings/{reference})."""

    reference: str
    status: BookingStatus
    expires_at: str = Field(json_schema_extra={"format": "date-time"},
                            description="Until then the company may confirm it")
    live: bool = Field(description="Whether it can be confirmed now")
    price: BookingPrice
    price_breakdown: PriceBreakdown


class WaitlistEntry(Shape):
    """A company's place in the line of a full unit, for one period."""

    id: int
    status: WaitlistStatus
    unit_id: int
    space_id: int
    space: str
    unit: str
    start: str = Field(json_schema_extra={"format": "date-time"})
    end: str = Field(json_schema_extra={"format": "date-time"})
    seats: int
    campaign: str | None = Field(description="The campaign's slug")
    note: str
    joined_at: str = Field(json_schema_extra={"format": "date-time"})
    offer: WaitlistOffer | None = Field(description="The seats offered to it, once offered")
    url: str = Field(description="The entry's page (the link of the offer's mail)")


class WaitlistEntries(Shape):
    results: list[WaitlistEntry] = Field(description="Those still in line first (soonest "
                                                     "first), then the rest (newest first)")


# ------------------------------------------------------------------------------ series

OccurrenceState = Literal["free", "taken", "closed", "outside_hours", "beyond", "past"]


class SeriesOccurrence(Shape):
    date: date
    state: OccurrenceState = Field(
        description="free; taken (not enough seats); closed (the space's hours, a holiday, "
                    "a closure); outside_hours (open, not for the hours asked); beyond (the "
                    "unit's booking horizon); past (begun, or inside the lead time)")
    start: str | None = Field(json_schema_extra={"format": "date-time"},
                              description="Free and taken dates: the occurrence's period")
    end: str | None = Field(json_schema_extra={"format": "date-time"})
    seats_free: int
    late: bool = Field(description="Free, but its cancellation deadline has passed already")


class SeriesRule(Shape):
    unit_id: int
    weekdays: list[int] = Field(description="Monday = 0")
    first_date: date
    last_date: date
    start: str | None = Field(json_schema_extra=HHMM,
                              description="Units let by the hour: each occurrence's start")
    end: str | None = Field(json_schema_extra=HHMM)
    seats: int


class SeriesPreview(SeriesRule):
    """Each date of the rule and whether it can be booked now; nothing is booked."""

    occurrences: list[SeriesOccurrence]
    free_dates: list[date] = Field(description="Send these as `dates` to book them")
    late: bool = Field(description="Some free date is past its cancellation deadline: "
                                   "booking needs `accept_late`")


class Series(SeriesRule):
    """A weekly series: one booking per date, booked together."""

    id: int
    space_id: int
    space: str
    unit: str
    sequence: int
    url: str
    bookings: list[Booking] = Field(description="Its occurrences, soonest first")


class SeriesCancelled(Series):
    """The series after cancelling what could be cancelled."""

    cancelled: list[str] = Field(description="References cancelled now")
    kept: list[str] = Field(description="References kept: past their deadline, begun or over")


# ------------------------------------------------------------------------------ accounts

class AccountCompany(Shape):
    id: int
    name: str
    prefecture: str


class Account(Shape):
    id: int
    email: str
    name: str
    company: AccountCompany


class EmailVerification(Shape):
    """Whether the token's account has verified its e-mail address."""

    email: str
    verified: bool
    verified_at: str | None = Field(json_schema_extra={"format": "date-time"})


class Token(Shape):
    token: str
    expires_at: str = Field(json_schema_extra={"format": "date-time"})


Problem.model_rebuild()
