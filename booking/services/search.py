"""Search: spaces near a place with units that can take `seats` for the whole requested time.

The work is shaped so that its cost depends on the spaces near the place, not on how many
bookings the database holds, and so that it runs a constant number of queries:

1. candidates (2 queries): units of public spaces inside a bounding box on the indexed
   lat/lon (and a rough circle), or in a prefecture, then the opening hours of the
   requested weekdays, read as plain rows (no ORM objects). A fast ellipsoidal
   approximation sorts and filters by distance; geodesic (geopy) is used on the radius'
   edge and for the distances shown;
2. bookings (1 query): the holding bookings of those units overlapping the request, as
   plain rows, and which units a closure, capacity override or offered campaign slot
   touches. A unit that only bookings touch is settled at once: its free seats are its
   capacity minus the peak of seats booked inside each window (the same count as
   availability's, checked by tests/test_search.py against it);
3. touched units go through availability.timelines (4 queries for any number of units):
   first those that decide whether (or, sorting by price, where) their space is listed,
   then those of the page shown; finally the page's spaces and units are loaded (2–3).

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
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa
from geopy.distance import geodesic
from sqlalchemy.orm import Session, selectinload

from booking import prefectures
from booking.models import (
    HOLDING_STATUSES,
    Booking,
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
    bookings: list[tuple[datetime, datetime, int]] = field(default_factory=list)
    touched: bool = False  # closures, overrides or slots in the range: timelines only


@dataclass
class _SpaceRow:
    id: int
    lat: float | None
    lon: float | None
    amenities: list
    closed_on_holidays: bool
    prefecture_code: int
    distance: float | None = None  # approximate km
    hours: dict[int, tuple[int, int]] = field(default_factory=dict)
    units: list[_UnitRow] = field(default_factory=list)


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


def _open_window(hours: tuple[int, int] | None, closed_on_holidays: bool, day: date,
                 q: SearchQuery) -> tuple[datetime, datetime] | None:
    """The space's opening hours on `day` (availability.regular_window's rule: weekday
    hours, closed on public holidays if the space says so) within the requested times."""
    if hours is None:
        return None
    return _window(hours[0], hours[1], q.start_min, q.end_min, closed_on_holidays, day)


@lru_cache(maxsize=16384)
def _window(opens: int, closes: int, start_min: int | None, end_min: int | None,
            closed_on_holidays: bool, day: date) -> tuple[datetime, datetime] | None:
    # Memoised: thousands of units near a big city share a few opening hours.
    if closed_on_holidays and _is_holiday(day):
        return None
    if start_min is not None:
        opens = max(opens, start_min)
    if end_min is not None:
        closes = min(closes, end_min)
    return (_at(day, opens), _at(day, closes)) if opens < closes else None


_at = lru_cache(maxsize=16384)(at)
_is_holiday = lru_cache(maxsize=4096)(is_holiday)


def _regular_windows(unit: _UnitRow, space: _SpaceRow, q: SearchQuery) -> list[tuple[datetime, datetime]]:
    days = _days(q)
    if unit.price_per == PricePer.NIGHT:
        first, last = days[0], days[-1]
        # A stay needs the house open over all of it (most are open 0–24 every day).
        for day in days + [last + timedelta(days=1)]:
            hours = space.hours.get(day.weekday())
            if hours is None or (space.closed_on_holidays and _is_holiday(day)):
                return []
            need_from = unit.checkin_min if day == first else 0
            need_to = unit.checkout_min if day > last else 1440
            if hours[0] > need_from or hours[1] < need_to:
                return []
        return [(_at(first, unit.checkin_min), _at(last + timedelta(days=1), unit.checkout_min))]
    windows = []
    for day in days:
        w = _open_window(space.hours.get(day.weekday()), space.closed_on_holidays, day, q)
        if w is not None:
            windows.append(w)
    return windows


def _slot_windows(unit: _UnitRow, space: _SpaceRow, slot: CampaignSlot,
                  q: SearchQuery) -> list[tuple[datetime, datetime]] | None:
    """The slot's windows for the request, or None when it does not cover every open day."""
    if unit.price_per == PricePer.NIGHT:
        return _regular_windows(unit, space, q)
    windows = []
    for day in _days(q):
        if _open_window(space.hours.get(day.weekday()), space.closed_on_holidays, day, q) is None:
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
    by_radius = place is not None and pref is None

    spaces = _candidate_spaces(session, q, place, pref, by_radius, days, dialect)
    units = [u for s in spaces.values() for u in s.units]
    _read_bookings(session, units, range_start, range_end, dialect)

    # Units nothing but bookings touch are settled here, from their bookings' rows.
    exact: dict[int, UnitResult | None] = {}
    touched: dict[int, list[_UnitRow]] = defaultdict(list)
    for space in spaces.values():
        for unit in space.units:
            need = _need(unit, q)
            if need is None:
                continue
            if unit.touched:
                touched[space.id].append(unit)
                continue
            if not _regular_qualifies(unit, q):
                continue  # no slot touches it, and its own offer does not qualify
            windows = _regular_windows(unit, space, q)
            if not windows:
                continue
            if unit.bookings:
                free = min(unit.capacity - _peak(unit.bookings, a, b) for a, b in windows)
            else:
                free = unit.capacity
            if free >= need:
                exact[unit.id] = UnitResult(None, free, [Offer(unit.price_amount, unit.price_per, free)])

    def settled_price(space: _SpaceRow) -> int | None:
        prices = [r.lowest_price for u in space.units if (r := exact.get(u.id)) is not None]
        return min(prices) if prices else None

    # Round 1 (availability.timelines): touched units that decide whether (or, sorting by
    # price, where) their space is listed.
    round1 = []
    for space_id, unit_rows in touched.items():
        best = settled_price(spaces[space_id])
        for u in unit_rows:
            if best is None or q.sort == "price":
                round1.append(u)
    if round1:
        loaded = session.scalars(
            sa.select(Unit).where(Unit.id.in_([u.id for u in round1]))
            .options(selectinload(Unit.space).selectinload(Space.opening_hours))
        ).all()
        exact.update(_exact(session, round1, {u.id: u for u in loaded}, spaces, q,
                            range_start, range_end))

    matched: list[tuple[_SpaceRow, int]] = []
    for space in spaces.values():
        price = settled_price(space)
        if price is not None:
            matched.append((space, price))
    if q.sort == "price":
        matched.sort(key=lambda m: (m[1], _far(m[0]), m[0].id))
    elif place is not None:
        matched.sort(key=lambda m: (_far(m[0]), m[0].id))
    else:
        matched.sort(key=lambda m: (m[0].prefecture_code, m[0].id))
    total = len(matched)
    page_rows = [s for s, _p in matched[(q.page - 1) * q.per_page: q.page * q.per_page]]

    # Round 2: touched units of the page not computed yet (campaign badges, closures...).
    round2 = [u for s in page_rows for u in touched.get(s.id, []) if u.id not in exact]
    orm_spaces = _load_spaces(session, [s.id for s in page_rows], with_hours=bool(round2))
    units_by_id = {u.id: u for s in orm_spaces.values() for u in s.units}
    exact.update(_exact(session, round2, units_by_id, spaces, q, range_start, range_end))

    results = []
    for row in page_rows:
        unit_results = []
        for u in row.units:
            r = exact.get(u.id)
            if r is not None:
                r.unit = units_by_id[u.id]
                unit_results.append(r)
        distance = None
        if place is not None and row.lat is not None and row.lon is not None:
            distance = round(geodesic_km(place.lat, place.lon, row.lat, row.lon), 2)
        results.append(SpaceResult(orm_spaces[row.id], distance, unit_results))
    return SearchResult(q, place, pref, days[0], days[-1], total, q.page, q.per_page, results)


def _far(space: _SpaceRow) -> float:
    # Spaces without coordinates (a prefecture search) come after those with a distance.
    return space.distance if space.distance is not None else math.inf


def _peak(bookings: list[tuple[datetime, datetime, int]], start: datetime, end: datetime) -> int:
    """The most seats held at any instant of [start, end) by these bookings."""
    inside = [(s, e, n) for s, e, n in bookings if s < end and e > start]
    if not inside:
        return 0
    instants = {start} | {s for s, _e, _n in inside if s > start}
    return max(sum(n for s, e, n in inside if s <= t < e) for t in instants)


def _candidate_spaces(session: Session, q: SearchQuery, place: Place | None,
                      pref: prefectures.Prefecture | None, by_radius: bool, days: list[date],
                      dialect: str) -> dict[int, _SpaceRow]:
    """Units of public spaces in the circle (or prefecture) that pass the static filters,
    then the opening hours of the weekdays asked for: two queries of plain rows."""
    where = [Space.published.is_(True), Organisation.approved_at.is_not(None)]
    if pref is not None:
        where.append(Space.prefecture_code == pref.code)
    if by_radius:
        assert place is not None
        r = q.radius_km * 1.01 + 0.05
        dlat = r / 110.5
        dlon = r / (111.0 * max(math.cos(math.radians(min(abs(place.lat) + dlat, 89.0))), 0.01))
        where += [Space.lat.between(place.lat - dlat, place.lat + dlat),
                  Space.lon.between(place.lon - dlon, place.lon + dlon)]
    if q.kind:
        where.append(Unit.kind == q.kind)
    if by_radius and q.radius_km <= 100:
        assert place is not None
        # The circle, roughly (2 % generous; flat over 100 km at most), so that the box's
        # corners stay in the database.
        ky, kx = 111.0, 111.0 * math.cos(math.radians(place.lat))
        where.append(((Space.lat - place.lat) * ky) * ((Space.lat - place.lat) * ky)
                     + ((Space.lon - place.lon) * kx) * ((Space.lon - place.lon) * kx)
                     <= (q.radius_km * 1.02 + 0.1) ** 2)
    wanted = set(q.amenities)
    # Plain values (no enum or JSON conversion per row): thousands of rows near a big city.
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
    rows = session.connection().execute(stmt).all()
    spaces: dict[int, _SpaceRow] = {}
    skipped: set[int] = set()
    radius = q.radius_km
    for (unit_id, space_id, kind, capacity, fits, price, per, members_only, checkin, checkout,
         lat, lon, amenities, closed_on_holidays, prefecture_code) in rows:
        if space_id in skipped:
            continue
        space = spaces.get(space_id)
        if space is None:
            if wanted and not wanted.issubset(
                    amenities if isinstance(amenities, list) else json.loads(amenities or "[]")):
                skipped.add(space_id)
                continue
            distance = None
            if place is not None and lat is not None and lon is not None:
                distance = fast_distance_km(place.lat, place.lon, lat, lon)
                if by_radius and distance > radius * 0.995 and (
                        distance > radius * 1.005
                        or geodesic_km(place.lat, place.lon, lat, lon) > radius):
                    skipped.add(space_id)
                    continue
            elif by_radius:
                skipped.add(space_id)
                continue
            space = spaces[space_id] = _SpaceRow(space_id, lat, lon, [], closed_on_holidays,
                                                 prefecture_code, distance)
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
        ):
            spaces[space_id].hours[weekday] = (opens, closes)
    return spaces


def _read_bookings(session: Session, units: list[_UnitRow], start: datetime, end: datetime,
                   dialect: str) -> None:
    """One query: the holding bookings of these units overlapping [start, end) (start, end,
    seats), and which units a closure, capacity override or offered campaign slot touches
    (those go through availability.timelines)."""
    if not units:
        return
    ids = [u.id for u in units]
    first, last = start.astimezone(TOKYO).date(), end.astimezone(TOKYO).date()
    no_time = sa.cast(sa.null(), Booking.starts_at.type)
    booked = (
        sa.select(Booking.unit_id.label("unit_id"), Booking.starts_at.label("starts_at"),
                  Booking.ends_at.label("ends_at"), Booking.seats.label("seats"))
        .where(_id_filter(Booking.unit_id, ids, dialect), Booking.status.in_(HOLDING_STATUSES),
               availability.overlaps(Booking.starts_at, Booking.ends_at, start, end))
    )
    closures = (
        sa.select(Closure.unit_id, no_time, no_time, sa.literal(0))
        .where(_id_filter(Closure.unit_id, ids, dialect), Closure.start_date <= last,
               Closure.end_date >= first)
    )
    overrides = (
        sa.select(CapacityOverride.unit_id, no_time, no_time, sa.literal(0))
        .where(_id_filter(CapacityOverride.unit_id, ids, dialect),
               CapacityOverride.day.between(first, last))
    )
    slots = (
        sa.select(CampaignSlot.unit_id, no_time, no_time, sa.literal(0))
        .join(Campaign, CampaignSlot.campaign_id == Campaign.id)
        .join(Organisation, Campaign.organisation_id == Organisation.id)
        .where(_id_filter(CampaignSlot.unit_id, ids, dialect), CampaignSlot.start_date <= last,
               CampaignSlot.end_date >= first, CampaignSlot.operator_consent.is_(True),
               Campaign.published.is_(True), Organisation.approved_at.is_not(None))
    )
    by_id = {u.id: u for u in units}
    for unit_id, starts_at, ends_at, seats in session.connection().execute(
            sa.union_all(booked, closures, overrides, slots)):
        if starts_at is None:
            by_id[unit_id].touched = True
        else:
            by_id[unit_id].bookings.append((_aware(starts_at), _aware(ends_at), seats))


def _aware(value: datetime) -> datetime:
    # Through a UNION the column type may not apply on SQLite: naive means UTC there.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _exact(session: Session, rows: list[_UnitRow], units: dict[int, Unit], spaces: dict[int, _SpaceRow],
           q: SearchQuery, start: datetime, end: datetime) -> dict[int, UnitResult | None]:
    """Exact offers of these units through availability.timelines (4 queries for any
    number of units); `units` holds their ORM rows with space and hours loaded."""
    if not rows:
        return {}
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
