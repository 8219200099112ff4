"""Search: spaces near a place with units that can take `seats` for the whole requested time.

The work is shaped so that its cost does not grow with the bookings the database holds
and so that it runs a constant number of queries:

1. candidates (1 query): the units in the circle (a bounding box on a grid, then the
   exact edge) or prefecture, from the catalogue of public spaces, units, opening hours,
   closures, overrides and offered campaign slots that each process holds in memory
   (services/catalogue.py), checked against the database's change log: on PostgreSQL in
   the statement of step 2 (a change found there is applied and the search decided
   again), elsewhere first (1 query);
2. units that a closure, capacity override or offered campaign slot touches in the range
   (the catalogue knows them) go to step 3; every other unit is decided by its
   regular offer from the unit loads of the request's days (1 query, with the whole loads
   of the units the page will likely show on PostgreSQL): in each window the
   seats free are its capacity minus the most its loads hold at once inside it
   (`_free_seats`). unit_loads is the step function of the bookings per unit and Tokyo
   day, kept in the booking transaction by services/loads.py, which owns that table and
   reads it (`loads.read`; on PostgreSQL search runs the same read as `_LOADS`, joined
   with the look and the page's loads in one statement). To decide, only the pieces
   that leave fewer seats free than the request's seats matter (a desk pool's rarely do),
   so this reads those rows of the days and never the bookings themselves. A space's
   units are tried cheapest first and the first that qualifies lists it at its price;
3. availability.timelines (a constant number of queries for any number of units), once,
   decides the touched units that can change the list (those of spaces not listed yet,
   or, sorting by price, those that could offer less than their space's price) and those
   of every space that could make the page shown (campaign badges, closures); finally the
   page is built from the catalogue (names, addresses, units: no model objects), with the
   whole loads of its units for the free seats they show (read in step 2 on PostgreSQL
   when the guess held; else 1 query) and, for the HTML
   page's cards, its photos (1 query). Its distances are the fast formula's
   (`fast_distance_km`, as for the radius).

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
  needs fits_people >= seats and one free unit;
- an hourly unit asked for without a start and an end time (a date-only search) needs only
  a free stretch of its minimum length (unit.min_length hours) inside the opening hours
  (and the time asked for, if one was), on every open day of the range; it is offered
  with those hours (Offer.free_hours, the hours free on every day) and the fewest seats
  free in them. The unit loads (step 2) and the timelines (step 3) give those stretches
  as they give the seats: no further query;
- today (Tokyo) offers what a booking made now is given (reservations.first_start, the
  rule the booking page and the free-time views follow): a day unit from the drop-in's
  start to closing (its seats counted there; not at all once today's hours are over), an
  hourly unit's free hours from the first start of its hour grid after the drop-in's, and
  times asked for on an hourly unit only while they have not begun;
- a search for a date before today (Tokyo) still lists what was offered then
  (SearchResult.past says so: nothing of it can be booked).
"""

from __future__ import annotations

import gc
import heapq
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import lru_cache, wraps
from itertools import islice
from typing import ParamSpec, TypeVar

import sqlalchemy as sa
from geopy.distance import geodesic
from sqlalchemy.orm import Session

from booking import clock, db, prefectures
from booking.models import (
    CampaignSlot,
    Photo,
    PricePer,
    UnitKind,
)
from booking.services import availability, catalogue, geocoding, reservations
from booking.services import loads as unit_loads
from booking.services.availability import at, is_holiday
from booking.services.catalogue import CatalogueSpace, CatalogueUnit
from booking.services.errors import DomainError
from booking.services.geocoding import Place

DEFAULT_RADIUS_KM = 30.0
MAX_RADIUS_KM = 500.0
MAX_PER_PAGE = 100
MAX_DAYS = 31
MAX_SEATS = 200
SORTS = ("distance", "price")

_GEODESIC = geodesic(ellipsoid="WGS-84")
# fast_distance_km is within 0.1 % of geodesic for every distance a search takes (0.03 %
# measured, tests/test_search_distances.py): a space nearer than the radius less 0.1 % is
# surely in, one farther than the radius and 0.1 % surely out; geodesic decides between.
FAST_DISTANCE_ERROR = 0.001
# WGS-84, for the fast approximation.
_A = 6378.137
_E2 = 0.00669437999014
_RADIAN = math.pi / 180
_HALF_RADIAN = _RADIAN / 2
_Date = date  # SearchQuery's field `date` hides the class inside its body
# An hourly unit's free hours start on its hour grid from the window's start (free_time).
HOUR_STEP = reservations.HOUR_STEP

# Minutes after midnight (Tokyo) of the request's first day: [from, to).
MinuteWindow = tuple[int, int]


@dataclass
class SearchQuery:
    near: str | None = None
    lat: float | None = None
    lon: float | None = None
    radius_km: float = DEFAULT_RADIUS_KM
    prefecture: str | None = None
    date: _Date | None = None
    end_date: _Date | None = None
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
    # An hourly unit searched by date alone: the hours (minutes after midnight, Tokyo)
    # free for the request on every day asked for, each at least its minimum length.
    free_hours: list[MinuteWindow] = field(default_factory=list)

    @property
    def is_campaign(self) -> bool:
        return self.slot is not None


@dataclass
class UnitResult:
    unit: CatalogueUnit | None  # set for the units of the page shown
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

    @property
    def free_hours(self) -> list[MinuteWindow]:
        """The free hours of a date-only search of an hourly unit (its regular offer's,
        else its campaign offer's); empty for any other unit or search."""
        offer = self.regular or self.campaign
        return offer.free_hours if offer is not None else []


@dataclass
class SpaceResult:
    space: CatalogueSpace  # what the page shows of it, from the catalogue
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
    # The search is for a date before today (Tokyo): what was offered, nothing bookable.
    past: bool = False

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


# --- per search --------------------------------------------------------------------------


@dataclass(slots=True)
class _Candidate:
    """A space of the catalogue in reach of this search, with its units of the kind asked."""

    space: CatalogueSpace
    far: float  # approximate km; infinite without coordinates (they sort last)
    units: list[CatalogueUnit]
    open_windows: tuple[MinuteWindow, ...]  # where its day and hour units need the seats
    price: int | None = None  # the lowest price that qualifies, once known


def fast_distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance on the WGS-84 ellipsoid by the local radii of curvature at the mean
    latitude. Against geographiclib's geodesic on real places all over Japan, within
    0.03 % (under the 0.1 % promised) for every pair up to the largest radius, 500 km,
    and under a metre up to 30 km (tests/test_search_distances.py); it decides the
    radius (geodesic only where it is too close to call), the sort and the distance
    shown."""
    phi = (lat1 + lat2) * _HALF_RADIAN
    s = math.sin(phi)
    w2 = 1 - _E2 * s * s
    normal = _A / math.sqrt(w2)  # (called for every space near a place: kept lean)
    return math.hypot((lon2 - lon1) * _RADIAN * normal * math.cos(phi),
                      (lat2 - lat1) * _RADIAN * normal * (1 - _E2) / w2)


@lru_cache(maxsize=65536)  # searches from one place measure the same spaces again
def geodesic_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return _GEODESIC.measure((lat1, lon1), (lat2, lon2))


# --- request → time windows ------------------------------------------------------------------


def _days(q: SearchQuery) -> list[date]:
    assert q.date is not None
    return list(_days_between(q.date, q.end_date or q.date))


@lru_cache(maxsize=1024)
def _days_between(first: date, last: date) -> tuple[date, ...]:
    return tuple(first + timedelta(days=i) for i in range((last - first).days + 1))


@lru_cache(maxsize=16384)
def _day_window(hours: tuple[int, int] | None, closed_on_holidays: bool, day: date,
                start_min: int | None, end_min: int | None) -> tuple[int, int] | None:
    """The space's opening hours on `day` (availability.regular_window's rule: weekday
    hours, closed on public holidays if the space says so) within the requested times.
    Memoised: thousands of spaces near a big city share a few opening hours."""
    if hours is None or (closed_on_holidays and is_holiday(day)):
        return None
    opens = hours[0] if start_min is None else max(hours[0], start_min)
    closes = hours[1] if end_min is None else min(hours[1], end_min)
    return (opens, closes) if opens < closes else None


def _minute_windows(unit: CatalogueUnit, space: CatalogueSpace, q: SearchQuery
                    ) -> tuple[MinuteWindow, ...]:
    """Where the unit's regular offer must have the seats, in minutes from the first day:
    the open days' windows of a day or hour unit (closed days skipped), or the whole stay
    of a night unit, day by day (every day of it open from check-in to check-out, else
    none)."""
    assert q.date is not None
    last = q.end_date or q.date
    if unit.night:
        return _stay_windows(space.week, unit.checkin_min, unit.checkout_min, q.date, last)
    return _open_windows(space.week, q.date, last, q.start_min, q.end_min)


# Memoised by opening-hours pattern (CatalogueSpace.week): the thousands of spaces near a
# big city share a few.
@lru_cache(maxsize=16384)
def _open_windows(week: tuple, first: date, last: date, start_min: int | None,
                  end_min: int | None) -> tuple[MinuteWindow, ...]:
    out = []
    for i, day in enumerate(_days_between(first, last)):
        w = _day_window(week[day.weekday()], week[7], day, start_min, end_min)
        if w is not None:
            out.append((i * 1440 + w[0], i * 1440 + w[1]))
    return tuple(out)


@lru_cache(maxsize=16384)
def _stay_windows(week: tuple, checkin_min: int, checkout_min: int, first: date, last: date
                  ) -> tuple[MinuteWindow, ...]:
    checkout = last + timedelta(days=1)
    stay = []
    for i, day in enumerate((*_days_between(first, last), checkout)):
        hours = week[day.weekday()]
        need_from = checkin_min if day == first else 0
        need_to = checkout_min if day == checkout else 1440
        if (hours is None or (week[7] and is_holiday(day))
                or hours[0] > need_from or hours[1] < need_to):
            return ()
        if need_from < need_to:
            stay.append((i * 1440 + need_from, i * 1440 + need_to))
    return tuple(stay)


def _regular_windows(unit: CatalogueUnit, space: CatalogueSpace, q: SearchQuery
                     ) -> list[tuple[datetime, datetime]]:
    windows = _minute_windows(unit, space, q)
    first = q.date
    assert first is not None
    if unit.night:
        return [(at(first, windows[0][0]), at(first, windows[-1][1]))] if windows else []
    return [(at(first, a), at(first, b)) for a, b in windows]


def _slot_windows(unit: CatalogueUnit, space: CatalogueSpace, slot: CampaignSlot,
                  q: SearchQuery) -> list[tuple[datetime, datetime]] | None:
    """The slot's windows for the request, or None when it does not cover every open day."""
    if unit.night:
        return _regular_windows(unit, space, q)
    windows = []
    for day in _days(q):
        if _day_window(space.week[day.weekday()], space.closed_on_holidays, day,
                       q.start_min, q.end_min) is None:
            continue
        w = availability.slot_window(slot, day, unit)
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


def _need(unit: CatalogueUnit, q: SearchQuery) -> int | None:
    """Free capacity units needed for `seats` people; None when the unit cannot fit them."""
    if unit.kind == UnitKind.DESK:
        return q.seats
    return 1 if unit.fits_people >= q.seats else None


def _price_allowed(price: int, q: SearchQuery) -> bool:
    return (not q.free or price == 0) and (q.max_price is None or price <= q.max_price)


def _regular_need(unit: CatalogueUnit, q: SearchQuery,
                  members: frozenset[int] = frozenset()) -> int | None:
    """What _need says, for the unit's regular offer: None also when that offer is not
    for the public (members only, unless the searcher is a member of its space:
    `members`, services/space_members.spaces_of), not asked for (a campaign is) or
    priced out."""
    if (unit.members_only and unit.space_id not in members) or q.campaign \
            or not _price_allowed(unit.price_amount, q):
        return None
    return _need(unit, q)


def _slot_qualifies(slot: CampaignSlot, unit: CatalogueUnit, q: SearchQuery) -> bool:
    price = slot.price_for(unit)
    return (not q.campaign or slot.campaign.slug == q.campaign) and _price_allowed(price, q)


# --- hourly units searched by date alone ---------------------------------------------------

# A step of free seats: from, to (minutes from the first day's midnight), seats free.
Step = tuple[int, int, int]


def _flexible(unit: CatalogueUnit, q: SearchQuery) -> bool:
    """An hourly unit asked for without both a start and an end time: any free stretch of
    its minimum length will do."""
    return unit.price_per == PricePer.HOUR and (q.start_min is None or q.end_min is None)


@dataclass(frozen=True, slots=True)
class _Today:
    """The search's first day is today (Tokyo): what a booking made now can hold."""

    origin: datetime  # the first day's midnight
    now: datetime
    drop_in: int  # reservations.drop_in_start(now), in minutes from origin

    def cut(self, windows: Iterable[MinuteWindow], step: timedelta | None = None
            ) -> list[MinuteWindow]:
        """The windows from the first start offered now on (reservations.first_start: a
        day's from the drop-in's start, an hour grid's (`step`) from its next start); one
        with nothing left is left out."""
        out = []
        for a, b in windows:
            if a < self.drop_in:  # begun, or beginning within the drop-in's margin
                opens = self.origin + timedelta(minutes=a)
                a = _minutes_from(self.origin, reservations.first_start(self.now, opens, step))
            if a < b:
                out.append((a, b))
        return out


def _from_now(unit: CatalogueUnit, windows: Sequence[MinuteWindow], today: _Today | None,
              flexible: bool) -> tuple[MinuteWindow, ...]:
    """A day or hour unit's windows as a booking made now can hold them (none when it cannot):
    an hourly unit searched by date alone, its free hours from its grid's next start;
    times asked for, only while they have not begun; a day unit's, today's from the
    drop-in's start, and nothing when today's hours are over (a booking is refused then,
    reservations.day_period)."""
    if today is None or not windows or windows[0][0] >= today.drop_in:
        return tuple(windows)  # nothing has begun (the common case: kept fast)
    if unit.night:  # a stay starts at check-in: once that has begun, booking refuses it
        return ()
    if flexible:
        return tuple(today.cut(windows, HOUR_STEP))
    if unit.price_per == PricePer.HOUR:
        return ()
    cut = today.cut(windows)
    return tuple(cut) if len(cut) == len(windows) else ()


def _steps(a: int, b: int, steps: Sequence[Step], default: int) -> Iterator[Step]:
    """[a, b) cut at the steps that meet it (they do not overlap), with their seats free;
    `default` seats between them."""
    covered = a
    for start, end, free in sorted(x for x in steps if x[0] < b and x[1] > a):
        start, end = max(start, covered), min(end, b)
        if start > covered:
            yield covered, start, default
        if start < end:
            yield start, end, free
            covered = end
    if covered < b:
        yield covered, b, default


def _merged(windows: Iterable[MinuteWindow]) -> list[MinuteWindow]:
    out: list[MinuteWindow] = []
    for a, b in windows:  # in order
        if out and out[-1][1] >= a:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _intersection(xs: list[MinuteWindow], ys: list[MinuteWindow]) -> list[MinuteWindow]:
    out, i, j = [], 0, 0
    while i < len(xs) and j < len(ys):
        a, b = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if a < b:
            out.append((a, b))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def free_stretches(windows: Sequence[MinuteWindow], steps: Sequence[Step], default: int,
                   need: int, min_minutes: int) -> tuple[list[MinuteWindow], int] | None:
    """The hours (minutes after midnight) with at least `need` seats free on every day
    that `windows` cover (minutes from the first day, one or more a day), kept where they
    last `min_minutes` or more, and the fewest seats free in them; None when there are
    none. `steps` give the seats free where they are, `default` elsewhere."""
    days: dict[int, list[Step]] = {}  # day's first minute -> its free steps, that day's minutes
    for a, b in sorted(windows):
        day = a // 1440 * 1440
        found = days.setdefault(day, [])
        found += [(s - day, e - day, n) for s, e, n in _steps(a, b, steps, default) if n >= need]
    hours: list[MinuteWindow] | None = None
    for found in days.values():
        free = _merged((s, e) for s, e, _ in found)
        hours = free if hours is None else _intersection(hours, free)
    hours = [(a, b) for a, b in hours or [] if b - a >= min_minutes]
    if not hours:
        return None
    seats = min(n for found in days.values() for s, e, n in found
                if any(s < b and e > a for a, b in hours))
    return hours, seats


def _has_stretch(pieces: Sequence[unit_loads.Piece], window: MinuteWindow, most: int,
                 min_minutes: int) -> bool:
    """Whether free_stretches finds hours in one window: `min_minutes` in a row in it
    where no piece holds more than `most` seats (the seats left by the others are then
    enough). What search needs to list an hourly unit searched by date alone, without
    the hours and the seats it shows (a unit of the page is offered by free_stretches)."""
    a, b = window
    free_from = a
    for start, end, n in sorted(pieces):
        if n > most and start < b and end > a:
            if start - free_from >= min_minutes:
                return True
            free_from = max(free_from, end)
    return b - free_from >= min_minutes


def _has_stretches(pieces: Sequence[unit_loads.Piece], windows: Sequence[MinuteWindow],
                   most: int, min_minutes: int) -> bool:
    """Whether free_stretches finds hours in `windows`, one a day in order (a space's open
    windows of a coming day): `min_minutes` in a row, at the same hours every day, where no
    piece holds more than `most` seats. _has_stretch over several days: what search needs
    to list an hourly unit searched by date alone, for one day or a range of days."""
    if len(windows) == 1:  # one day: no hours in common to work out
        return _has_stretch(pieces, windows[0], most, min_minutes)
    common: list[MinuteWindow] | None = None
    for a, b in windows:
        day = a // 1440 * 1440
        free = []
        free_from = a
        for start, end, _n in sorted(p for p in pieces if p[2] > most and p[0] < b and p[1] > a):
            if start > free_from:
                free.append((free_from - day, start - day))
            free_from = max(free_from, end)
        if b > free_from:
            free.append((free_from - day, b - day))
        common = free if common is None else _intersection(common, free)
        if not common:
            return False
    return any(y - x >= min_minutes for x, y in common or ())


@lru_cache(maxsize=4096)  # spaces share a few opening-hours patterns
def _open_hours(windows: tuple[MinuteWindow, ...], min_minutes: int
                ) -> tuple[MinuteWindow, ...] | None:
    """free_stretches of a unit nothing holds: the hours open on every day."""
    found = free_stretches(windows, (), 1, 1, min_minutes)
    return None if found is None else tuple(found[0])


def _today(first: date) -> _Today | None:
    """When `first` is today in Tokyo, what has begun of it (None otherwise: a coming day
    is whole, a past one is history, SearchResult.past)."""
    now = clock.now()
    if now.astimezone(clock.TOKYO).date() != first:
        return None
    origin = at(first, 0)
    return _Today(origin, now, _minutes_from(origin, reservations.drop_in_start(now)))


# --- the search ------------------------------------------------------------------------------


def validate(q: SearchQuery, today: date | None = None) -> SearchQuery:
    """Defaults and range checks; DomainError for what cannot be searched."""
    q = replace(q)
    if q.date is None:
        q.date = today or clock.today()
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


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _collector_paused(f: Callable[_P, _R]) -> Callable[_P, _R]:
    """`f` with the garbage collector paused while it runs. A search near a big city makes
    some ten thousand objects that refer to others (candidates, rows, pieces), none in a
    cycle: each 700 of them set off a collection that walked those still alive, a tenth
    of the slowest searches' time at 1 M bookings. Once it returns they are freed by their
    counts, and the one collection that follows finds the few that live on. (Threads: one
    that found it paused leaves it to the one that paused it, which resumes it.)"""
    @wraps(f)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return f(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()
    return paused


@_collector_paused
def search(session: Session, query: SearchQuery, *, online: geocoding.OnlineGeocoder | None = None,
           today: date | None = None, photos: bool = False,
           members: frozenset[int] = frozenset(), alone: bool = False) -> SearchResult:
    """The page of spaces the query finds; `photos` loads their photos too (the page's
    cards show them, the API does not: one query more). `members`: the spaces whose
    members-only units the searcher books directly (their regular offer is found).
    `alone`: the session does nothing else before it ends (a view's whole request); on
    PostgreSQL the search then reads without a transaction (db.read_outside_a_transaction)."""
    q = validate(query, today)
    place, pref = resolve_place(session, q, online)
    days = _days(q)
    today_now = _today(days[0])
    if alone:
        db.read_outside_a_transaction(session)
    postgresql = session.get_bind().dialect.name == "postgresql"
    # Every unit in the circle or prefecture, from the catalogue held in memory. On
    # PostgreSQL the change log is looked at in the statement that reads the unit loads
    # (one round trip, one snapshot; what changed is applied and the search decided again);
    # elsewhere, and before the first load, first (1 query).
    cat = catalogue.held(session) if postgresql else None
    unchecked = cat is not None
    held: unit_loads.Held
    if cat is None:
        cat = catalogue.current(session)
    while True:
        candidates = _candidates(cat, q, place, pref)
        touched, touched_spaces = _touched(cat, candidates, days)
        # PostgreSQL: the whole loads of the units the page will most likely show come in
        # the same statement (the page's free seats need them); elsewhere after the page.
        need_of = _needs(q, members, touched)
        full = _likely_shown(candidates, need_of, touched, q) if postgresql else []
        if not postgresql:
            # Only the pieces that could keep a unit from its need: every need is q.seats
            # or less. (Reading each space's desks first and its rooms only when they fall
            # short took a second query nearly every time, and longer.)
            units = [u for c in candidates.values() for u in c.units]
            held = unit_loads.read(session, [u.id for u in units],
                                   [u.id for u in units if u.night], days, q.seats)
            break
        looked, held = _read_loads(
            session, cat, cat.mark if unchecked else None, candidates,
            ("marks", _reach_key(q, place, pref), q.kind, frozenset(q.amenities), _priced(q)),
            full, days, q.seats)
        unchecked = False
        if looked is not None and (newer := catalogue.follow(
                session.connection(), cat, looked)) is not cat:
            cat = newer  # changed since this process looked: decide on what it is now
            continue
        break
    # On a coming day, a day unit (or an hourly one asked for at set times) is decided by
    # its capacity and the pieces in its open windows, and an hourly unit searched by date
    # alone that holds no piece by its capacity and its open hours (what _regular_offer
    # says then): most units of a search, decided here without building an offer (at 1 M
    # bookings a thousand of them hold pieces in a big city's search).
    plain = today_now is None
    date_only = q.start_min is None or q.end_min is None
    for c in candidates.values():
        for unit in c.units:  # cheapest first
            if (need := need_of(unit, c)) is None:
                continue
            if plain and not unit.night:
                pieces = held.get(unit.id)
                if not (date_only and unit.price_per == PricePer.HOUR):
                    if unit.capacity < need or (pieces is not None and _holds_more(
                            pieces, c.open_windows, unit.capacity - need)):
                        continue
                elif pieces is None:
                    if unit.capacity < need or _open_hours(
                            c.open_windows, unit.min_length * 60) is None:
                        continue
                elif unit.capacity < need or not _has_stretches(
                        pieces, c.open_windows, unit.capacity - need, unit.min_length * 60):
                    continue
            elif _regular_offer(unit, c, held, q, need, today_now) is None:
                continue
            c.price = unit.price_amount
            break  # listed at its price: its other units matter if the page shows it

    # The exact rule, once (a constant number of queries), for the touched units that
    # decide whether their space is listed or, sorting by price, may lower its price (to
    # their own price or a slot's at least), and for every touched unit of the spaces that
    # could make the page (campaign badges, closures): those are among the first
    # page × per_page, plus one per space still undecided, in the order they could have
    # at best.
    deciding: dict[int, int] = {}  # space id -> the least price its deciding units offer
    for c in touched_spaces:
        for u in c.units:
            if u.id in touched and _price_allowed(least := _least_price(u, touched[u.id]), q) \
                    and (c.price is None or (q.sort == "price" and least < c.price)):
                deciding[c.space.id] = min(least, deciding.get(c.space.id, least))
    by_price = q.sort == "price"
    hopeful = [c for c in candidates.values() if c.price is not None or c.space.id in deciding]
    reach = _first(q.page * q.per_page + len(deciding), hopeful, None if not by_price else (
        lambda c: _by_price(c, min(c.price if c.price is not None else math.inf,
                                   deciding.get(c.space.id, math.inf)))))
    exact_units = [u for sid in {c.space.id for c in reach} | set(deciding)
                   for u in candidates[sid].units if u.id in touched]
    exact = _exact(session, cat, exact_units, q, today_now, members)
    for unit in exact_units:
        if (r := exact[unit.id]) is not None:
            c = candidates[unit.space_id]
            c.price = r.lowest_price if c.price is None else min(c.price, r.lowest_price)

    if not by_price and not deciding:
        # Every space listed was listed before the exact rule, which changed prices only:
        # the page is the reach's end.
        total, page = len(hopeful), reach[(q.page - 1) * q.per_page:]
    else:
        listed = [c for c in candidates.values() if c.price is not None]
        total = len(listed)
        page = _first(q.page * q.per_page, listed, None if not by_price else (
            lambda c: _by_price(c, c.price if c.price is not None else math.inf)))
        page = page[(q.page - 1) * q.per_page:]
    page_ids = [c.space.id for c in page]

    # The regular offers of the page's units, with the free seats every piece leaves (read
    # above for those it was likely to show; the others', if any, now: 1 query).
    shown = [(u, c, need) for c in page for u in c.units if (need := need_of(u, c)) is not None]
    read = {u.id for u in full}
    if missing := [u for u, _, _ in shown if u.id not in read]:
        more = unit_loads.read(session, [u.id for u in missing],
                               [u.id for u in missing if u.night], days)
        held = dict(held)
        for unit in missing:  # (no entry: nothing booked)
            if (pieces := more.get(unit.id)) is None:
                held.pop(unit.id, None)
            else:
                held[unit.id] = pieces
    for unit, c, need in shown:
        offer = _regular_offer(unit, c, held, q, need, today_now)
        exact[unit.id] = None if offer is None else UnitResult(None, offer.seats_left, [offer])

    # The page from the catalogue (what it shows is held there): no model objects; the
    # photos of the HTML page's cards in one query.
    shown_photos = _photos(session, page_ids) if photos else {}
    results = []
    for c in page:
        space = c.space
        unit_results = []
        for unit in space.units_in_order:
            if (r := exact.get(unit.id)) is not None:
                r.unit = unit
                unit_results.append(r)
        distance = None
        if place is not None and space.lat is not None and space.lon is not None:
            # The fast formula, as for the radius (within 0.03 % of geographiclib's
            # geodesic over Japan; tests/test_search_distances.py).
            distance = round(c.far, 2)
        if photos:
            space = replace(space, photos=shown_photos.get(space.id, ()))
        results.append(SpaceResult(space, distance, unit_results))
    return SearchResult(q, place, pref, days[0], days[-1], total, q.page, q.per_page, results,
                        past=days[0] < (today or clock.today()))


def _touched(cat: catalogue.Catalogue, candidates: dict[int, _Candidate], days: list[date]
             ) -> tuple[dict[int, int | None], list[_Candidate]]:
    """The candidates' units that closures, capacity overrides or campaign slots touch in
    the range, with the lowest price their slots set (they go through the exact rule,
    availability.timelines; there are few), and their spaces."""
    first, last = days[0], days[-1] + timedelta(days=1)
    touched: dict[int, int | None] = {}  # unit id -> the lowest price its slots set
    touched_spaces: list[_Candidate] = []
    touches = cat.touches
    for c in candidates.values():
        if not c.space.touched:  # (most spaces: nothing touches any of its units)
            continue
        for u in c.units:
            if (spans := touches.get(u.id)) is not None and (
                    prices := [p for a, b, p in spans if a <= last and b >= first]):
                touched[u.id] = min((p for p in prices if p is not None), default=None)
                if not touched_spaces or touched_spaces[-1] is not c:
                    touched_spaces.append(c)
    return touched, touched_spaces


_NeedOf = Callable[[CatalogueUnit, "_Candidate"], "int | None"]


def _needs(q: SearchQuery, members: frozenset[int], touched: dict[int, int | None]) -> _NeedOf:
    """need_of(unit, candidate): the seats a unit's regular offer must have free for this
    search, from its loads; None when it has none to decide that way: a unit touched in
    the range (the exact rule decides it), members only, priced out, too small, or a day
    or hour unit closed all the time asked for. Worked out once per distinct unit terms.
    A closure, not an object's __call__: it is asked for nearly every unit in reach (some
    5,000 times in the slowest searches near Tokyo), and a plain function's call takes
    some 40 % less."""
    by_terms: dict[int, int | None] = {}  # by id(unit.terms): the same need

    def need_of(u: CatalogueUnit, c: _Candidate) -> int | None:
        if u.id in touched or not (u.night or c.open_windows):
            return None
        if u.members_only and u.space_id in members:  # not the public's terms
            return _regular_need(u, q, members)
        key = id(u.terms)
        if (need := by_terms.get(key, -1)) == -1:  # (no need is negative)
            need = by_terms[key] = _regular_need(u, q)
        return need

    return need_of


def _likely_shown(candidates: dict[int, _Candidate], need_of: _NeedOf,
                  touched: dict[int, int | None], q: SearchQuery) -> list[CatalogueUnit]:
    """The units with a regular offer to decide of the spaces the page will most likely
    show: in the page's order as if every space that has such a unit (or a touched one)
    qualified at the cheapest of them, the page's places and a few more (spaces that do not
    qualify move the page on). A guess: the page's units it missed are read after."""

    def offered(c: _Candidate) -> float:
        """The least price it could have: its cheapest unit with a regular offer to
        decide, or a touched unit's own or slot price allowed."""
        price = math.inf
        for u in c.units:  # (a loop: called for every candidate near a big city)
            if need_of(u, c) is not None:
                price = u.price_amount
                break
        if c.space.touched:
            for u in c.units:
                if u.id in touched and _price_allowed(least := _least_price(u, touched[u.id]), q):
                    price = min(price, least)
        return price

    key = (lambda c: _by_price(c, offered(c))) if q.sort == "price" else None
    first, end = (q.page - 1) * q.per_page, q.page * q.per_page + q.per_page // 4 + 4
    # Among the first few times as many: most spaces have a unit for most requests; for
    # the others (free offers only, many seats) among all.
    hopeful = [c for c in _first(3 * end, candidates.values(), key) if offered(c) < math.inf]
    if len(hopeful) < end < len(candidates) / 3:
        hopeful = _first(end, (c for c in candidates.values() if offered(c) < math.inf), key)
    return [u for c in hopeful[first:end] for u in c.units if need_of(u, c) is not None]


# The unit loads search reads (services/loads.py keeps them; loads.read is the same read
# for one part, on every database). Part 0: the pieces of the request's days that leave
# fewer than `seats` free, of the candidates' units: they decide whether a unit qualifies
# (given every such piece, _free_seats and free_stretches decide exactly). Many units
# (a big city's): the days' pieces in the map squares of those units (Unit.area; the
# index is by day and square), kept where a map of one byte per unit id marks the unit
# (1: a day or hour unit; 2: a night unit, whose check-out day counts too, read here or,
# for a few night units, by unit: MOST_NIGHT_LOOKUPS). Few units (MOST_UNIT_LOOKUPS):
# each unit's days looked up by the primary key, as night units' check-out day. Part 1:
# every piece of the units the page will likely show (by key: a unit's days are one
# stretch of it, the request's days and the next being consecutive; each day looked up
# on its own was a probe per unit and day, 0.2 ms more in the slowest searches), for the
# free seats it shows. Minutes from the first day's midnight.
_LOADS = (
    "SELECT 0, unit_id, (day - :first) * 1440 + start_min, (day - :first) * 1440 + end_min, "
    "seats, NULL FROM unit_loads WHERE day = ANY(CAST(:days AS date[])) "
    "AND area = ANY(CAST(:areas AS integer[])) AND seats_free < :seats "
    "AND (CASE WHEN unit_id < :width THEN get_byte(:marks, unit_id) ELSE 0 END) "
    ">= (CASE WHEN day = :checkout THEN 2 ELSE 1 END) "
    "UNION ALL "
    # One lookup of the primary key per unit and day (a lateral subquery that cannot be
    # pulled up: given the lists as `unit_id = ANY(...)`, the planner read the day's
    # pieces of the country instead, testing each against the whole list, in a fifth of
    # the searches).
    "SELECT 0, l.unit_id, (l.day - :first) * 1440 + l.start_min, "
    "(l.day - :first) * 1440 + l.end_min, l.seats, NULL "
    "FROM unnest(CAST(:look_units AS integer[]), CAST(:look_days AS date[])) AS k(unit_id, day) "
    "CROSS JOIN LATERAL (SELECT * FROM unit_loads AS u WHERE u.unit_id = k.unit_id "
    "AND u.day = k.day AND u.seats_free < :seats OFFSET 0) AS l "
    "UNION ALL "
    "SELECT 1, unit_id, (day - :first) * 1440 + start_min, (day - :first) * 1440 + end_min, "
    "seats, NULL FROM unit_loads WHERE unit_id = ANY(CAST(:full AS integer[])) "
    "AND day BETWEEN :first AND :full_last "
    "AND (day <> :checkout OR unit_id = ANY(CAST(:nights AS integer[])))")
# Night units' check-out day: looked up by unit (the primary key) when there are at most
# this many, else read with the other days' loads (the pieces of that day in the units'
# squares: some 5,000 in the whole country at 1 M bookings).
MOST_NIGHT_LOOKUPS = 200
# Every day of the candidates' units looked up by unit when they are at most this many:
# at 1 M bookings a day's pieces that leave too few seats free are some 5,000 index
# entries in the whole country (0.35 ms to read; a city's squares hold a share of them),
# a lookup some 2 µs.
MOST_UNIT_LOOKUPS = 100
_READ_LOADS = sa.text(_LOADS)
# With the catalogue's look at its change log first (part 2), in the same snapshot.
_LOOK_AND_READ_LOADS = sa.text(
    "SELECT 2, c.id, c.space_id, NULL, NULL, s.snap::text "
    f"{catalogue.PG_LOOK_FROM} UNION ALL {_LOADS}")


def _read_loads(session: Session, cat: catalogue.Catalogue, mark: catalogue.Mark | None,
                candidates: dict[int, _Candidate], marks_key: tuple, full: list[CatalogueUnit],
                days: list[date], seats: int) -> tuple[catalogue.Looked | None, unit_loads.Held]:
    """PostgreSQL, one statement: the unit loads search needs (`_LOADS`: the pieces that
    leave fewer than `seats` free of the candidates' units, every piece of those in
    `full`), and, given a `mark`, the catalogue's look at its change log from there.
    (Units that have no regular offer for the request are read too: marking only the
    others cost more than the few rows it saves.)"""
    if mark is None and not candidates:
        return None, {}
    # The candidates' units: the same for every search of a place with these amenities
    # and kind (remembered with the spaces in reach): many as a map of one byte per unit
    # id (and the night units' ids, and their map squares), few as their ids.
    if (kept := cat.reach.get(marks_key)) is None:
        units = [u for c in candidates.values() for u in c.units]
        if len(units) <= MOST_UNIT_LOOKUPS:
            kept = (None, tuple(u.id for u in units if not u.night),
                    tuple(u.id for u in units if u.night), ())
        else:
            map_of = bytearray(cat.last_unit_id + 1)
            for unit in units:
                map_of[unit.id] = 2 if unit.night else 1
            kept = (bytes(map_of), (), tuple(u.id for u in units if u.night),
                    tuple(sorted({u.area for u in units})))
        cat.reach.put(marks_key, kept, _where(marks_key[1]))
    map_kept, day_ids, night_ids, areas = kept
    whole = {u.id for u in full}  # read whole (part 1)
    checkout = days[-1] + timedelta(days=1)
    with_checkout = [*days, checkout] if night_ids else days
    look_units: list[int] = []  # the units and days looked up by unit
    look_days: list[date] = []
    if map_kept is None:
        scanned, marks, width = [], b"", 0
        for ids, on in ((day_ids, days), (night_ids, with_checkout)):
            for day in on:
                for i in ids:
                    if i not in whole:
                        look_units.append(i)
                        look_days.append(day)
    else:
        scanned, width = days, len(map_kept)
        marks_of = bytearray(map_kept)
        for unit in full:
            marks_of[unit.id] = 0
        marks = bytes(marks_of)
        if len(night_ids) <= MOST_NIGHT_LOOKUPS:
            look_units = [i for i in night_ids if i not in whole]
            look_days = [checkout] * len(look_units)
        else:
            scanned = with_checkout
    params: dict = {
        "first": days[0], "days": scanned, "areas": list(areas), "seats": seats,
        "width": width, "marks": marks, "checkout": checkout, "look_units": look_units,
        "look_days": look_days,
        "full": [u.id for u in full], "full_last": with_checkout[-1],
        "nights": [u.id for u in full if u.night]}
    if mark is not None:
        params.update(catalogue.pg_look_params(mark))
    held: unit_loads.Held = {}
    look = []
    result = session.connection().execute(
        _READ_LOADS if mark is None else _LOOK_AND_READ_LOADS, params)
    # The driver's rows as they are, without SQLAlchemy's Row objects: a thousand rows and
    # more near a big city at 1 M bookings, read a third as long (and at once: row by row
    # took longer).
    rows = result.cursor.fetchall()
    result.close()
    for part, unit_id, start, end, n, snap in rows:
        if part == 2:
            look.append((snap, unit_id, start))
        elif (pieces := held.get(unit_id)) is None:
            held[unit_id] = [(start, end, n)]
        else:
            pieces.append((start, end, n))
    return (catalogue.pg_looked(look) if mark is not None else None), held


def _priced(q: SearchQuery) -> tuple | None:
    """What of the query leaves out spaces by price (`_candidates`), None when nothing
    does: part of the key the candidates' units are remembered under (`_read_loads`)."""
    if q.free or q.max_price is not None or q.campaign:
        return q.free, q.max_price, bool(q.campaign)
    return None


def _by_price(c: _Candidate, price: float) -> tuple:
    """The page's order sorting by price, given a space's price (the one it has, or
    could have). Any other order is the candidates' own (`_in_reach`)."""
    return price, c.far, c.space.id


def _first(n: int, candidates: Iterable[_Candidate],
           key: Callable[[_Candidate], tuple] | None) -> list[_Candidate]:
    """The first `n` candidates by `key`; without one, as they come: in the page's order
    where the price does not order it (`_in_reach` gives them so, sorted once per place:
    heapq.nsmallest over thousands near a big city took some 0.4 ms each time)."""
    return list(islice(candidates, n)) if key is None else heapq.nsmallest(n, candidates, key)


def _candidates(cat: catalogue.Catalogue, q: SearchQuery, place: Place | None,
                pref: prefectures.Prefecture | None) -> dict[int, _Candidate]:
    """The catalogue's spaces in reach (`_in_reach`) that have the amenities and units of
    the kind asked for, in its order."""
    wanted = frozenset(q.amenities)
    priced = _priced(q)
    out: dict[int, _Candidate] = {}
    # Spaces share a few opening-hours patterns (one object each in the catalogue).
    windows: dict[int, tuple[MinuteWindow, ...]] = {}
    for space, distance in zip(*_in_reach(cat, q, place, pref), strict=True):
        if wanted and not wanted <= space.amenity_set:
            continue
        units = space.units if not q.kind else [u for u in space.units if u.kind == q.kind]
        if not units:
            continue
        # Free offers, a price cap or a campaign asked for: a space whose cheapest unit
        # has no regular offer at an allowed price (none of its units has), and which no
        # campaign slot, closure or override touches (only a slot offers less or a
        # campaign), has nothing to list. Near a big city that is most of them.
        if priced is not None and not space.touched and (
                q.campaign or not _price_allowed(units[0].price_amount, q)):
            continue
        if (open_windows := windows.get(id(space.week))) is None:
            open_windows = windows[id(space.week)] = _open_windows(
                space.week, q.date, q.end_date or q.date, q.start_min, q.end_min)
        out[space.id] = _Candidate(space, distance, units, open_windows)
    return out


def _reach_key(q: SearchQuery, place: Place | None, pref: prefectures.Prefecture | None
               ) -> tuple:
    return (None if place is None else (place.lat, place.lon),
            q.radius_km if pref is None else None, None if pref is None else pref.code)


def _where(reach_key: tuple) -> catalogue.Where:
    """Where the spaces of a reach (`_reach_key`) come from, for the catalogue's memo."""
    place, radius, code = reach_key
    if code is not None:
        return ("prefecture", code)
    return ("everywhere",) if place is None else ("box", *catalogue.circle_box(place[0], place[1], radius))


def _in_reach(cat: catalogue.Catalogue, q: SearchQuery, place: Place | None,
              pref: prefectures.Prefecture | None
              ) -> tuple[tuple[CatalogueSpace, ...], tuple[float, ...]]:
    """The catalogue's spaces in the prefecture, or in the circle (`_in_circle`), and their
    fast distances (infinite without coordinates), in the page's order where the price
    does not order it: by distance, or, without a place, by prefecture; then by id (sorted
    once: the page's first spaces are then a slice). Remembered by the catalogue: a circle
    per place, at the widest radius asked there (a narrower one is its start: `_narrowed`),
    a prefecture (or the whole country) per place and prefecture. Searches from one
    station or town measure the same spaces again, at 5, 10, 30 or 50 km (within a budget
    of bytes, catalogue.Memo; a catalogue refreshed after an edit keeps what no changed
    space comes into, Memo.apart_from). Kept as two tuples, not a pair per
    space: the garbage collector's full passes walk every object remembered (a pair each
    made them a tenth of the slowest searches' time at 1 M bookings)."""
    if place is not None and pref is None:
        key: tuple = ("circle", place.lat, place.lon)
        kept = cat.reach.get(key)
        if kept is not None and q.radius_km <= kept[0]:
            return _narrowed(kept, place, q.radius_km)
        found = _in_circle(cat, place, q.radius_km)
        spaces, distances = tuple(t[2] for t in found), tuple(t[0] for t in found)
        cat.reach.put(key, (q.radius_km, spaces, distances), _where(_reach_key(q, place, pref)))
        return spaces, distances
    key = _reach_key(q, place, pref)
    if (found_pair := cat.reach.get(key)) is not None:
        return found_pair
    out = []
    for space in cat.by_prefecture.get(pref.code, []) if pref is not None else cat.spaces:
        distance = math.inf  # spaces without coordinates (a prefecture search) sort last
        if place is not None and space.lat is not None and space.lon is not None:
            distance = fast_distance_km(place.lat, place.lon, space.lat, space.lon)
        out.append((space, distance))
    ordered = sorted(out, key=(lambda sd: (sd[1], sd[0].id)) if place is not None
                     else (lambda sd: (sd[0].prefecture_code, sd[0].id)))
    found_pair = tuple(sd[0] for sd in ordered), tuple(sd[1] for sd in ordered)
    cat.reach.put(key, found_pair, _where(key))
    return found_pair


def _narrowed(kept: tuple, place: Place, radius: float
              ) -> tuple[tuple[CatalogueSpace, ...], tuple[float, ...]]:
    """The circle of `radius` from a wider one of the same place, as `_in_circle` would
    find it: a start of its spaces (they are by fast distance, then id), geodesic deciding
    those within FAST_DISTANCE_ERROR of the edge. The wider one holds them all: it took
    every space to its radius × (1 − error) and, past that, each within it by geodesic."""
    _, spaces, distances = kept
    surely = bisect_right(distances, radius * (1 - FAST_DISTANCE_ERROR))
    end = bisect_right(distances, radius * (1 + FAST_DISTANCE_ERROR), surely)
    edge = [i for i in range(surely, end)
            if geodesic_km(place.lat, place.lon, spaces[i].lat, spaces[i].lon) <= radius]
    if len(edge) == end - surely:
        return spaces[:end], distances[:end]
    return (spaces[:surely] + tuple(spaces[i] for i in edge),
            distances[:surely] + tuple(distances[i] for i in edge))


def _in_circle(cat: catalogue.Catalogue, place: Place, radius: float
               ) -> list[tuple[float, int, CatalogueSpace]]:
    """The spaces within `radius` km of the place as (fast distance, id, space), sorted
    (so by distance, then id: tuples compare in C, a key function for each took a third
    longer): the catalogue's grid cells that meet the circle's bounding box, then the
    edge (geodesic where the fast distance is too close to call). fast_distance_km's
    formula is written out in the loop, operation for operation (the same floats; a test
    compares them): a first search near a big city measures thousands of spaces, and a
    call for each was a fifth of its look for them. Geodesic (geographiclib: some 60 µs a
    pair) decides only within FAST_DISTANCE_ERROR of the edge (it was ±0.5 %: a hundred
    pairs and more in a first search near Tokyo at 50 km)."""
    lat1, lon1 = place.lat, place.lon
    south, north, west, east = catalogue.circle_box(lat1, lon1, radius)
    surely, surely_not = radius * (1 - FAST_DISTANCE_ERROR), radius * (1 + FAST_DISTANCE_ERROR)
    sin, cos, sqrt, hypot = math.sin, math.cos, math.sqrt, math.hypot
    out = []
    for cell in cat.cells(south, north, west, east):
        for lat2, lon2, space in cell:
            if not (south <= lat2 <= north and west <= lon2 <= east):
                continue
            phi = (lat1 + lat2) * _HALF_RADIAN
            s = sin(phi)
            w2 = 1 - _E2 * s * s
            normal = _A / sqrt(w2)
            distance = hypot((lon2 - lon1) * _RADIAN * normal * cos(phi),
                             (lat2 - lat1) * _RADIAN * normal * (1 - _E2) / w2)
            if distance > surely and (distance > surely_not
                                      or geodesic_km(lat1, lon1, lat2, lon2) > radius):
                continue
            out.append((distance, space.id, space))
    out.sort()
    return out


def _least_price(unit: CatalogueUnit, slot_price: int | None) -> int:
    """The least a touched unit could offer: its own price or its slots' lowest."""
    return unit.price_amount if slot_price is None else min(unit.price_amount, slot_price)


def _regular_offer(unit: CatalogueUnit, c: _Candidate, held: unit_loads.Held, q: SearchQuery,
                   need: int, today: _Today | None) -> Offer | None:
    """The regular offer of a unit nothing but bookings touch, from its loads (None when
    it cannot take the request); as _free_seats says, given every piece that leaves fewer
    than `need` free, it is None exactly when the unit cannot."""
    if _flexible(unit, q):
        windows = _from_now(unit, c.open_windows, today, True)
        if (pieces := held.get(unit.id)) is None:  # nothing booked: its hours are open
            found = _open_hours(windows, unit.min_length * 60)
            if found is None or unit.capacity < need:
                return None
            return Offer(unit.price_amount, unit.price_per, unit.capacity,
                         free_hours=list(found))
        stretches = free_stretches(
            windows,
            [(s, e, unit.capacity - n) for s, e, n in pieces],
            unit.capacity, need, unit.min_length * 60)
        if stretches is None:
            return None
        hours, least = stretches
        return Offer(unit.price_amount, unit.price_per, least, free_hours=hours)
    free = _free_seats(unit, c, held, q, need, today)
    return None if free is None else Offer(unit.price_amount, unit.price_per, free)


def _holds_more(pieces: list[unit_loads.Piece], windows: tuple[MinuteWindow, ...], most: int
                ) -> bool:
    """Whether a piece that meets one of the windows holds more than `most` seats: the
    plain case of _free_seats (a day unit's windows as they are), as a loop."""
    for start, end, n in pieces:
        if n > most:
            for a, b in windows:
                if start < b and end > a:
                    return True
    return False


def _free_seats(unit: CatalogueUnit, c: _Candidate, held: unit_loads.Held, q: SearchQuery, need: int,
                today: _Today | None) -> int | None:
    """Seats free for the regular offer of a unit nothing but bookings touch (None when
    fewer than `need`): its capacity minus the most its loads hold at once in a window.
    Given some of the pieces, among them every one that leaves fewer than `need` free, it
    still says None exactly when the unit has fewer than `need`."""
    windows = _from_now(unit, _minute_windows(unit, c.space, q) if unit.night
                        else c.open_windows, today, False)
    if not windows:
        return None
    free = unit.capacity
    if (pieces := held.get(unit.id)) is not None:
        most = 0  # the most a piece that meets a window holds (a loop: a page's desk pools
        for s, e, n in pieces:  # hold dozens of pieces a day at 1 M bookings)
            if n > most:
                for a, b in windows:
                    if s < b and e > a:
                        most = n
                        break
        free -= most
    return free if free >= need else None


def _exact(session: Session, cat: catalogue.Catalogue, rows: list[CatalogueUnit],
           q: SearchQuery, today: _Today | None, members: frozenset[int] = frozenset()
           ) -> dict[int, UnitResult | None]:
    """Exact offers of these units through availability.timelines (a constant number of
    queries for any number of units; the campaign slots kept with the catalogue, read
    only when it lacks one: that query and its model objects were a third of the call)."""
    if not rows:
        return {}
    # One range holds every window: the requested days, and the next for night units'
    # check-out.
    days = _days(q)
    night = any(r.night for r in rows)
    start, end = at(days[0], 0), at(days[-1] + timedelta(days=2 if night else 1), 0)
    lines = availability.timelines(session, rows, start, end,  # the catalogue's units
                                   kept_slots=cat.slots)
    out: dict[int, UnitResult | None] = {}
    for row in rows:
        line, space = lines[row.id], row.space
        need = _need(row, q)
        offers: list[Offer] = []
        flexible = _flexible(row, q)
        if need is not None and _regular_need(row, q, members) is not None:  # (`need` then)
            if flexible:
                hours = _from_now(row, _minute_windows(row, space, q), today, True)
                if offer := _flexible_offer(row, line, start, hours, need, None):
                    offers.append(offer)
            elif row.night and not _from_now(row, _minute_windows(row, space, q), today, False):
                pass  # today's check-in has begun: booking refuses the stay
            elif windows := (_regular_windows(row, space, q) if row.night else _times(
                    start, _from_now(row, _minute_windows(row, space, q), today, False))):
                free = min(line.min_free(a, b) for a, b in windows)
                if free >= need:
                    offers.append(Offer(row.price_amount, row.price_per, free))
        if need is not None:
            for slot in line.slots:
                if not _slot_qualifies(slot, row, q):
                    continue
                slot_windows = _slot_windows(row, space, slot, q)
                if slot_windows and not row.night:
                    minutes = _from_now(row, [(_minutes_from(start, a), _minutes_from(start, b))
                                              for a, b in slot_windows], today, flexible)
                    if flexible:
                        if offer := _flexible_offer(row, line, start, minutes, need, slot):
                            offers.append(offer)
                        continue
                    slot_windows = _times(start, minutes)
                if not slot_windows:
                    continue
                free = min(line.min_free(a, b, slot.id) for a, b in slot_windows)
                if free >= need:
                    offers.append(Offer(slot.price_for(row), row.price_per, free, slot))
        out[row.id] = (UnitResult(None, max(o.seats_left for o in offers), offers)
                       if offers else None)
    return out


def _minutes_from(origin: datetime, t: datetime) -> int:
    return round((t - origin).total_seconds() / 60)


def _times(origin: datetime, windows: Iterable[MinuteWindow]) -> list[tuple[datetime, datetime]]:
    return [(origin + timedelta(minutes=a), origin + timedelta(minutes=b)) for a, b in windows]


def _flexible_offer(row: CatalogueUnit, line: availability.Timeline, origin: datetime,
                    windows: Sequence[MinuteWindow], need: int, slot: CampaignSlot | None
                    ) -> Offer | None:
    """The offer (regular, or the slot's) of an hourly unit searched by date alone, from
    its timeline (`windows` in minutes from `origin`, the first day's midnight)."""
    slot_id = slot.id if slot is not None else None
    steps = [(_minutes_from(origin, p.start), _minutes_from(origin, p.end), p.free(slot_id))
             for p in line.pieces]
    found = free_stretches(windows, steps, 0, need, row.min_length * 60)
    if found is None:
        return None
    hours, free = found
    price = row.price_amount if slot is None else slot.price_for(row)
    return Offer(price, row.price_per, free, slot, free_hours=hours)


def _photos(session: Session, ids: list[int]) -> dict[int, tuple[catalogue.Photo, ...]]:
    """The photos of the page's spaces, in their order (1 query)."""
    found: dict[int, list[catalogue.Photo]] = {}
    if ids:
        for space_id, filename, alt in session.execute(
                sa.select(Photo.space_id, Photo.filename, Photo.alt)
                .where(Photo.space_id.in_(ids)).order_by(Photo.space_id, Photo.id)):
            found.setdefault(space_id, []).append(catalogue.Photo(filename, alt))
    return {space_id: tuple(shown) for space_id, shown in found.items()}
