"""Search: spaces near a place with units that can take `seats` for the whole requested time.

The work is shaped so that its cost does not grow with the bookings the database holds
and so that it runs a constant number of queries:

1. candidates (2 queries): the units in the circle (a bounding box on the indexed lat/lon,
   then the exact edge) or prefecture, then the opening hours of the requested weekdays,
   as plain rows (no ORM objects);
2. units that a closure, capacity override or offered campaign slot touches in the range
   (1 query over those small tables) go to step 3; every other unit is decided by its
   regular offer from the unit loads of the request's days (1 query): in each window the
   seats free are its capacity minus the most its loads hold at once inside it (`_settle`).
   unit_loads is the step function of the bookings per unit and Tokyo day, kept in the
   booking transaction (services/loads.py), so this reads one short row per booked piece
   of those days and never the bookings themselves;
3. availability.timelines (a constant number of queries for any number of units) decides
   the touched units whose space is not listed yet (all of them when sorting by price),
   then those of the page shown not decided yet (campaign badges, closures); finally the
   page's spaces and units are loaded (2–3 queries).

Interpretation (decided with the lead):
- a date on a day or hour unit means the space's opening hours that day, intersected with
  start/end if given; a date range means every open day must have the seats (days the
  space is closed are skipped, at least one open day), a unit closure makes it unavailable;
- for night units (whole houses) date..end_date are the nights: check-in at checkin time on
  the first day, check-out the day after end_date at checkout time;
- a campaign slot offers min(slot free, physically free) seats inside its daily window
  (intersected with the request) on every day the space is open in the range, and makes a
  members-only unit bookable; free=1 keeps offers at price 0; campaign=<slug> only that
  campaign's offers;
- `seats` is people: a desk pool needs that many free seats; a room or house (taken whole)
  needs fits_people >= seats and one free unit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa
from geopy.distance import geodesic
from sqlalchemy.orm import Session, selectinload

from booking import prefectures
from booking.models import (
    Campaign,
    CampaignSlot,
    CapacityOverride,
    Closure,
    OpeningHours,
    Organisation,
    PricePer,
    Space,
    Unit,
    UnitKind,
    UnitLoad,
)
from booking.services import availability, geocoding
from booking.services.availability import TOKYO, at, is_holiday
from booking.services.errors import DomainError
from booking.services.geocoding import Place

DEFAULT_RADIUS_KM = 30.0
MAX_RADIUS_KM = 500.0
MAX_PER_PAGE = 100
MAX_DAYS = 31
MAX_SEATS = 200
SORTS = ("distance", "price")

_GEODESIC = geodesic(ellipsoid="WGS-84")
# WGS-84, for the fast approximation.
_A = 6378.137
_E2 = 0.00669437999014


@dataclass
class SearchQuery:
    near: str | None = None
    lat: float | None = None
    lon: float | None = None
    radius_km: float = DEFAULT_RADIUS_KM
    prefecture: str | None = None
    date: date | None = None
    end_date: date | None = None
    start_min: int | None = None  # minutes after midnight, Tokyo
    end_min: int | None = None
    seats: int = 1
    kind: str | None = None
    amenities: Sequence[str] = ()
    max_price: int | None = None
    free: bool = False
    campaign: str | None = None
    sort: str = "distance"
    page: int = 1
    per_page: int = 20


@dataclass
class Offer:
    """A way to book a unit for the request: its regular price or a campaign slot."""

    price_amount: int
    price_per: str
    seats_left: int
    slot: CampaignSlot | None = None

    @property
    def is_campaign(self) -> bool:
        return self.slot is not None


@dataclass
class UnitResult:
    unit: Unit | None  # set for the units of the page shown
    available_seats: int
    offers: list[Offer]

    @property
    def regular(self) -> Offer | None:
        return next((o for o in self.offers if o.slot is None), None)

    @property
    def campaign(self) -> Offer | None:
        """The cheapest campaign offer, shown as a badge."""
        slots = [o for o in self.offers if o.slot is not None]
        return min(slots, key=lambda o: (o.price_amount, -o.seats_left), default=None)

    @property
    def lowest_price(self) -> int:
        return min(o.price_amount for o in self.offers)


@dataclass
class SpaceResult:
    space: Space
    distance_km: float | None
    units: list[UnitResult]

    @property
    def lowest_price(self) -> int:
        return min(u.lowest_price for u in self.units)


@dataclass
class SearchResult:
    query: SearchQuery
    place: Place | None
    prefecture: prefectures.Prefecture | None
    first_day: date
    last_day: date
    total: int
    page: int
    per_page: int
    results: list[SpaceResult] = field(default_factory=list)
    queries: int = 0

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


# --- plain rows of phase 1 -------------------------------------------------------------------


@dataclass
class _UnitRow:
    id: int
    space_id: int
    kind: str
    capacity: int
    fits_people: int
    price_amount: int
    price_per: str
    members_only: bool
    checkin_min: int
    checkout_min: int


@dataclass
class _SpaceRow:
    id: int
    lat: float | None
    lon: float | None
    closed_on_holidays: bool
    prefecture_code: int
    distance: float | None = None  # approximate km
    hours: dict[int, tuple[int, int]] = field(default_factory=dict)
    units: list[_UnitRow] = field(default_factory=list)
    price: int | None = None  # the lowest price that qualifies, once known


def fast_distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance on the WGS-84 ellipsoid by the local radii of curvature at the mean
    latitude: within 0.1 % of geodesic over a few hundred km; used to sort and filter."""
    phi = math.radians((lat1 + lat2) / 2)
    s = math.sin(phi)
    w = math.sqrt(1 - _E2 * s * s)
    meridional = _A * (1 - _E2) / (w ** 3)
    normal = _A / w
    dy = math.radians(lat2 - lat1) * meridional
    dx = math.radians(lon2 - lon1) * normal * math.cos(phi)
    return math.hypot(dx, dy)


def geodesic_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return _GEODESIC.measure((lat1, lon1), (lat2, lon2))


def _id_filter(column, ids: Sequence[int], dialect: str):
    # One array parameter on PostgreSQL rather than thousands of bind parameters.
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.func.any(sa.bindparam("ids_" + column.key, list(ids),
                                                  type_=ARRAY(sa.Integer)))
    return column.in_(list(ids))


# --- request → time windows ------------------------------------------------------------------


def _days(q: SearchQuery) -> list[date]:
    assert q.date is not None
    return list(_days_between(q.date, q.end_date or q.date))


@lru_cache(maxsize=1024)
def _days_between(first: date, last: date) -> tuple[date, ...]:
    return tuple(first + timedelta(days=i) for i in range((last - first).days + 1))


MinuteWindow = tuple[date, int, int]  # a Tokyo day, minutes after its midnight [from, to)


@lru_cache(maxsize=16384)
def _day_window(hours: tuple[int, int] | None, closed_on_holidays: bool, day: date,
                start_min: int | None, end_min: int | None) -> tuple[int, int] | None:
    """The space's opening hours on `day` (availability.regular_window's rule: weekday
    hours, closed on public holidays if the space says so) within the requested times.
    Memoised: thousands of spaces near a big city share a few opening hours."""
    if hours is None or (closed_on_holidays and _is_holiday(day)):
        return None
    opens = hours[0] if start_min is None else max(hours[0], start_min)
    closes = hours[1] if end_min is None else min(hours[1], end_min)
    return (opens, closes) if opens < closes else None


_is_holiday = lru_cache(maxsize=4096)(is_holiday)


def _minute_windows(unit: _UnitRow, space: _SpaceRow, q: SearchQuery) -> list[MinuteWindow]:
    """Where the unit's regular offer must have the seats, day by day: the open days'
    windows of a day or hour unit (closed days skipped), or the whole stay of a night
    unit (every day of it open from check-in to check-out, else none)."""
    days = _days(q)
    if unit.price_per == PricePer.NIGHT:
        first, checkout = days[0], days[-1] + timedelta(days=1)
        stay = []
        for day in days + [checkout]:
            hours = space.hours.get(day.weekday())
            need_from = unit.checkin_min if day == first else 0
            need_to = unit.checkout_min if day == checkout else 1440
            if (hours is None or (space.closed_on_holidays and _is_holiday(day))
                    or hours[0] > need_from or hours[1] < need_to):
                return []
            if need_from < need_to:
                stay.append((day, need_from, need_to))
        return stay
    out = []
    for day in days:
        w = _day_window(space.hours.get(day.weekday()), space.closed_on_holidays, day,
                        q.start_min, q.end_min)
        if w is not None:
            out.append((day, *w))
    return out


def _regular_windows(unit: _UnitRow, space: _SpaceRow, q: SearchQuery) -> list[tuple[datetime, datetime]]:
    windows = _minute_windows(unit, space, q)
    if unit.price_per == PricePer.NIGHT:
        return [(at(windows[0][0], windows[0][1]), at(windows[-1][0], windows[-1][2]))] if windows else []
    return [(at(day, a), at(day, b)) for day, a, b in windows]


def _slot_windows(unit: _UnitRow, space: _SpaceRow, slot: CampaignSlot,
                  q: SearchQuery) -> list[tuple[datetime, datetime]] | None:
    """The slot's windows for the request, or None when it does not cover every open day."""
    if unit.price_per == PricePer.NIGHT:
        return _regular_windows(unit, space, q)
    windows = []
    for day in _days(q):
        if _day_window(space.hours.get(day.weekday()), space.closed_on_holidays, day,
                       q.start_min, q.end_min) is None:
            continue
        w = availability.slot_window(slot, day)
        if w is None:
            return None
        start, end = w
        if q.start_min is not None:
            start = max(start, at(day, q.start_min))
        if q.end_min is not None:
            end = min(end, at(day, q.end_min))
        if start >= end:
            return None
        windows.append((start, end))
    return windows or None


def _need(unit: _UnitRow, q: SearchQuery) -> int | None:
    """Free capacity units needed for `seats` people; None when the unit cannot fit them."""
    if unit.kind == UnitKind.DESK:
        return q.seats
    return 1 if unit.fits_people >= q.seats else None


def _regular_qualifies(unit: _UnitRow, q: SearchQuery) -> bool:
    if unit.members_only or q.campaign:
        return False
    if q.free and unit.price_amount != 0:
        return False
    return q.max_price is None or unit.price_amount <= q.max_price


def _slot_price(slot: CampaignSlot, unit: _UnitRow) -> int:
    return unit.price_amount if slot.price_amount is None else slot.price_amount


def _slot_qualifies(slot: CampaignSlot, unit: _UnitRow, q: SearchQuery) -> bool:
    price = _slot_price(slot, unit)
    if q.campaign and slot.campaign.slug != q.campaign:
        return False
    if q.free and price != 0:
        return False
    return q.max_price is None or price <= q.max_price


# --- the search ------------------------------------------------------------------------------


def validate(q: SearchQuery, today: date | None = None) -> SearchQuery:
    """Defaults and range checks; DomainError for what cannot be searched."""
    q = replace(q)
    if q.date is None:
        q.date = today or datetime.now(TOKYO).date()
    if q.end_date is not None and q.end_date < q.date:
        raise DomainError("bad_range")
    if q.end_date is not None and (q.end_date - q.date).days >= MAX_DAYS:
        raise DomainError("search_too_long", days=MAX_DAYS)
    if q.start_min is not None and q.end_min is not None and q.start_min >= q.end_min:
        raise DomainError("bad_range")
    if not 1 <= q.seats <= MAX_SEATS:
        raise DomainError("bad_seats")
    if not 0 < q.radius_km <= MAX_RADIUS_KM:
        q.radius_km = min(max(q.radius_km, 0.1), MAX_RADIUS_KM)
    if q.sort not in SORTS:
        q.sort = "distance"
    q.page = max(1, q.page)
    q.per_page = min(max(1, q.per_page), MAX_PER_PAGE)
    return q


def resolve_place(session: Session, q: SearchQuery, online: geocoding.OnlineGeocoder | None = None
                  ) -> tuple[Place | None, prefectures.Prefecture | None]:
    """Where to search: a point (with radius), a prefecture, or all of Japan (None, None)."""
    pref = None
    if q.prefecture:
        pref = prefectures.find(q.prefecture)
        if pref is None:
            raise DomainError("unknown_place", place=q.prefecture)
    if q.lat is not None and q.lon is not None:
        return geocoding.point(q.lat, q.lon), pref
    if q.near and q.near.strip():
        place = geocoding.resolve(session, q.near, online)
        if place.kind == "prefecture":
            return place, prefectures.by_code(place.prefecture_code)
        return place, pref
    if pref is not None:
        return geocoding.Place(pref.name, pref.lat, pref.lon, pref.code, "prefecture", pref.name_en), pref
    return None, None


def search(session: Session, query: SearchQuery, *, online: geocoding.OnlineGeocoder | None = None,
           today: date | None = None) -> SearchResult:
    q = validate(query, today)
    place, pref = resolve_place(session, q, online)
    dialect = session.get_bind().dialect.name
    days = _days(q)
    # The whole request in one range: every unit's windows fall inside it.
    range_start = at(days[0], 0)
    range_end = at(days[-1] + timedelta(days=2), 0)  # night units check out the next day
    # Every unit in the circle or prefecture, as plain rows (2 queries).
    spaces = _candidate_spaces(session, q, place, pref, _area(q, place, pref), days, dialect)
    units = [u for s in spaces.values() for u in s.units]
    # Units that closures, capacity overrides or campaign slots touch in the range go
    # through the exact rule (availability.timelines); there are few.
    touched_ids = _touched_ids(session, days).intersection(u.id for u in units)
    # Every other unit: its regular offer, decided from the unit loads (1 query).
    settled = [u for u in units if u.id not in touched_ids and _regular_qualifies(u, q)
               and _need(u, q) is not None]
    load_days = days + ([days[-1] + timedelta(days=1)]  # night units check out then
                        if any(u.price_per == PricePer.NIGHT for u in settled) else [])
    exact = _settle(spaces, settled, _read_loads(session, [u.id for u in settled], load_days,
                                                 dialect), q)

    # Round 1: touched units that decide whether (or, sorting by price, where) their space
    # is listed.
    listed = {u.space_id for u in settled if exact.get(u.id) is not None}
    round1 = [u for u in units if u.id in touched_ids
              and (u.space_id not in listed or q.sort == "price")]
    exact.update(_exact(session, round1, spaces, q, range_start, range_end))
    matched: dict[int, _SpaceRow] = {}
    for unit in units:
        if (r := exact.get(unit.id)) is not None:
            space = matched.setdefault(unit.space_id, spaces[unit.space_id])
            space.price = r.lowest_price if space.price is None else min(space.price, r.lowest_price)

    rows = list(matched.values())
    if q.sort == "price":
        rows.sort(key=lambda s: (s.price, _far(s), s.id))
    elif place is not None:
        rows.sort(key=lambda s: (_far(s), s.id))
    else:
        rows.sort(key=lambda s: (s.prefecture_code, s.id))
    total = len(rows)
    page_ids = [s.id for s in rows[(q.page - 1) * q.per_page: q.page * q.per_page]]

    # Round 2: touched units of the page not decided yet (campaign badges, closures...).
    round2 = [u for sid in page_ids for u in spaces[sid].units
              if u.id in touched_ids and u.id not in exact]
    orm_spaces = _load_spaces(session, page_ids, with_hours=bool(round2))
    orm_units = {u.id: u for sid in page_ids for u in orm_spaces[sid].units}
    exact.update(_exact(session, round2, spaces, q, range_start, range_end, orm_units))

    results = []
    for sid in page_ids:
        space = orm_spaces[sid]
        unit_results = []
        for unit in space.units:
            if (r := exact.get(unit.id)) is not None:
                r.unit = unit
                unit_results.append(r)
        distance = None
        if place is not None and space.lat is not None and space.lon is not None:
            distance = round(geodesic_km(place.lat, place.lon, space.lat, space.lon), 2)
        results.append(SpaceResult(space, distance, unit_results))
    return SearchResult(q, place, pref, days[0], days[-1], total, q.page, q.per_page, results)


def _far(space: _SpaceRow) -> float:
    # Spaces without coordinates (a prefecture search) come after those with a distance.
    return space.distance if space.distance is not None else math.inf


def _area(q: SearchQuery, place: Place | None, pref: prefectures.Prefecture | None) -> list:
    """Public units in the circle (a bounding box on the indexed lat/lon, and the circle
    roughly) or the prefecture, of the kind asked for."""
    where = [Space.published.is_(True), Organisation.approved_at.is_not(None)]
    if pref is not None:
        where.append(Space.prefecture_code == pref.code)
    elif place is not None:
        r = q.radius_km * 1.01 + 0.05
        dlat = r / 110.5
        dlon = r / (111.0 * max(math.cos(math.radians(min(abs(place.lat) + dlat, 89.0))), 0.01))
        where += [Space.lat.between(place.lat - dlat, place.lat + dlat),
                  Space.lon.between(place.lon - dlon, place.lon + dlon)]
        if q.radius_km <= 100:
            # The circle, roughly (2 % generous; flat over 100 km at most), so that the
            # box's corners stay in the database; the exact edge is decided in Python.
            ky, kx = 111.0, 111.0 * math.cos(math.radians(place.lat))
            where.append(((Space.lat - place.lat) * ky) * ((Space.lat - place.lat) * ky)
                         + ((Space.lon - place.lon) * kx) * ((Space.lon - place.lon) * kx)
                         <= (q.radius_km * 1.02 + 0.1) ** 2)
    if q.kind:
        where.append(Unit.kind == q.kind)
    return where


def _touched_ids(session: Session, days: list[date]) -> set[int]:
    """Units that a closure, capacity override or offered campaign slot touches in the
    range (few: the tables are small and read by dates)."""
    first, last = days[0], days[-1] + timedelta(days=1)
    return set(session.scalars(sa.union(
        sa.select(Closure.unit_id).where(Closure.start_date <= last, Closure.end_date >= first),
        sa.select(CapacityOverride.unit_id).where(CapacityOverride.day.between(first, last)),
        sa.select(CampaignSlot.unit_id)
        .join(Campaign, CampaignSlot.campaign_id == Campaign.id)
        .join(Organisation, Campaign.organisation_id == Organisation.id)
        .where(CampaignSlot.start_date <= last, CampaignSlot.end_date >= first,
               CampaignSlot.operator_consent.is_(True), Campaign.published.is_(True),
               Organisation.approved_at.is_not(None)),
    )))


def _read_loads(session: Session, unit_ids: list[int], days: list[date], dialect: str
                ) -> dict[int, dict[date, list[tuple[int, int, int]]]]:
    """The unit loads of these units on these days."""
    out: dict[int, dict[date, list[tuple[int, int, int]]]] = {}
    if not unit_ids:
        return out
    for unit_id, day, start_min, end_min, seats in session.connection().execute(
        sa.select(UnitLoad.unit_id, UnitLoad.day, UnitLoad.start_min, UnitLoad.end_min,
                  UnitLoad.seats)
        .where(UnitLoad.day.in_(days), _id_filter(UnitLoad.unit_id, unit_ids, dialect))
    ).all():
        out.setdefault(unit_id, {}).setdefault(day, []).append((start_min, end_min, seats))
    return out


def _settle(spaces: dict[int, _SpaceRow], units: list[_UnitRow],
            loads: dict[int, dict[date, list[tuple[int, int, int]]]], q: SearchQuery
            ) -> dict[int, UnitResult | None]:
    """The regular offers of units nothing but bookings touch: in each window the seats
    free are the capacity minus the most the unit's loads hold at once inside it."""
    out: dict[int, UnitResult | None] = {}
    for unit in units:
        need = _need(unit, q)
        windows = _minute_windows(unit, spaces[unit.space_id], q)
        if need is None or not windows:
            continue
        by_day = loads.get(unit.id)
        free = unit.capacity
        if by_day:
            free -= max(max((n for s, e, n in by_day.get(day, ()) if s < b and e > a), default=0)
                        for day, a, b in windows)
        if free >= need:
            out[unit.id] = UnitResult(None, free, [Offer(unit.price_amount, unit.price_per, free)])
    return out


def _space_in_reach(q: SearchQuery, place: Place | None, pref: prefectures.Prefecture | None,
                    space_id: int, lat: float | None, lon: float | None, prefecture_code: int,
                    amenities, closed_on_holidays: bool = False) -> _SpaceRow | None:
    """The space's row with its approximate distance, or None when it is outside the
    radius (geodesic on the edge) or lacks an amenity asked for."""
    if q.amenities and not set(q.amenities).issubset(
            amenities if isinstance(amenities, list) else json.loads(amenities or "[]")):
        return None
    distance = None
    if place is not None and lat is not None and lon is not None:
        distance = fast_distance_km(place.lat, place.lon, lat, lon)
        radius = q.radius_km
        if pref is None and distance > radius * 0.995 and (
                distance > radius * 1.005 or geodesic_km(place.lat, place.lon, lat, lon) > radius):
            return None
    elif place is not None and pref is None:
        return None
    return _SpaceRow(space_id, lat, lon, closed_on_holidays, prefecture_code, distance)


def _candidate_spaces(session: Session, q: SearchQuery, place: Place | None,
                      pref: prefectures.Prefecture | None, where: list, days: list[date],
                      dialect: str) -> dict[int, _SpaceRow]:
    """Units matching `where` with their spaces, as plain rows, then the opening hours of
    the weekdays asked for: two queries."""
    wanted = set(q.amenities)
    text = sa.String()
    amenities_col = sa.cast(Space.amenities, sa.Text) if wanted else sa.null()
    stmt = (
        sa.select(Unit.id, Unit.space_id, sa.type_coerce(Unit.kind, text), Unit.capacity,
                  Unit.fits_people, Unit.price_amount, sa.type_coerce(Unit.price_per, text),
                  Unit.members_only, Unit.checkin_min, Unit.checkout_min, Space.lat, Space.lon,
                  amenities_col, Space.closed_on_holidays, Space.prefecture_code)
        .join(Space, Unit.space_id == Space.id)
        .join(Organisation, Space.organisation_id == Organisation.id)
        .where(*where)
    )
    spaces: dict[int, _SpaceRow] = {}
    skipped: set[int] = set()
    rows = session.connection().execute(stmt).all()  # fetchall: row by row costs µs each
    for (unit_id, space_id, kind, capacity, fits, price, per, members_only, checkin, checkout,
         lat, lon, amenities, closed_on_holidays, prefecture_code) in rows:
        if space_id in skipped:
            continue
        space = spaces.get(space_id)
        if space is None:
            space = _space_in_reach(q, place, pref, space_id, lat, lon, prefecture_code,
                                    amenities, closed_on_holidays)
            if space is None:
                skipped.add(space_id)
                continue
            spaces[space_id] = space
        space.units.append(_UnitRow(unit_id, space_id, kind, capacity, fits, price, per,
                                    members_only, checkin, checkout))
    if spaces:
        # The day after the last one too: night units check out then.
        weekdays = sorted({d.weekday() for d in days + [days[-1] + timedelta(days=1)]})
        for space_id, weekday, opens, closes in session.connection().execute(
            sa.select(OpeningHours.space_id, OpeningHours.weekday, OpeningHours.opens_min,
                      OpeningHours.closes_min)
            .where(_id_filter(OpeningHours.space_id, list(spaces), dialect),
                   OpeningHours.weekday.in_(weekdays))
        ).all():
            spaces[space_id].hours[weekday] = (opens, closes)
    return spaces


def _exact(session: Session, rows: list[_UnitRow], spaces: dict[int, _SpaceRow], q: SearchQuery,
           start: datetime, end: datetime, units: dict[int, Unit] | None = None
           ) -> dict[int, UnitResult | None]:
    """Exact offers of these units through availability.timelines (a constant number of
    queries for any number of units); `units` holds their ORM rows with space and hours
    loaded, when the caller has them."""
    if not rows:
        return {}
    if units is None:
        units = {u.id: u for u in session.scalars(
            sa.select(Unit).where(Unit.id.in_([r.id for r in rows]))
            .options(selectinload(Unit.space).selectinload(Space.opening_hours))
        )}
    lines = availability.timelines(session, [units[r.id] for r in rows], start, end)
    out: dict[int, UnitResult | None] = {}
    for row in rows:
        unit, line, space = units[row.id], lines[row.id], spaces[row.space_id]
        need = _need(row, q)
        offers: list[Offer] = []
        if need is not None and _regular_qualifies(row, q):
            windows = _regular_windows(row, space, q)
            if windows:
                free = min(line.min_free(a, b) for a, b in windows)
                if free >= need:
                    offers.append(Offer(row.price_amount, row.price_per, free))
        if need is not None:
            for slot in line.slots:
                if not _slot_qualifies(slot, row, q):
                    continue
                windows = _slot_windows(row, space, slot, q)
                if not windows:
                    continue
                free = min(line.min_free(a, b, slot.id) for a, b in windows)
                if free >= need:
                    offers.append(Offer(_slot_price(slot, row), row.price_per, free, slot))
        out[row.id] = (UnitResult(unit, max(o.seats_left for o in offers), offers)
                       if offers else None)
    return out


def _load_spaces(session: Session, ids: list[int], *, with_hours: bool) -> dict[int, Space]:
    if not ids:
        return {}
    options = [selectinload(Space.units)]
    if with_hours:
        options.append(selectinload(Space.opening_hours))
    found = session.scalars(sa.select(Space).where(Space.id.in_(ids)).options(*options)).all()
    return {s.id: s for s in found}
