"""The search catalogue: every public space (Space.is_public: published, of an approved
organisation) with its units and opening hours, what touches units on some days
(closures, capacity overrides, offered campaign slots), and what a result page shows of
them (names, address, access, amenities), held in memory per process.

Reading those rows for every search was most of its cost: a search near a big city
covers thousands of units. They change rarely, and a change concerns a few spaces, so
each process keeps them and follows a change log (`catalogue_changes`, one row per space
a transaction changed, written in that transaction):

- hooks on every Session (registered by `install()`, which create_app calls) note what a
  flush or an ORM statement changed (spaces, units, opening hours, closures, capacity
  overrides, campaign slots, campaigns, organisations) and, just before commit, insert
  one row per space concerned. Inserts never wait on each other: unrelated edits do not
  queue behind one row (the single `catalogue_version` row this replaced was every such
  transaction's last lock);
- every search asks for the rows it has not seen (1 query; on PostgreSQL search asks in
  its statement that reads the unit loads: `held`, PG_LOOK_FROM, `follow`) and reads
  again only the spaces they name (4 small queries), never the whole catalogue; a row
  without a space (`changed_everything`: SQL that bypassed the Session) reloads all;
- PostgreSQL: ids are taken before commit, so a change may commit after a higher one was
  seen. A process therefore holds the snapshot of its last look (xmax and the
  transactions then in progress) and asks for the rows of exactly the transactions that
  snapshot did not see (`txid`, pg_current_xact_id()): none is missed, none read twice.
  SQLite runs one writer at a time, so its ids grow in commit order: rows after the last;
- every booking advances its unit's `lock_version` with an ORM UPDATE: such statements
  say `execution_options(catalogue_unchanged=True)`, or each booking would count as a
  change;
- SQL that bypasses the Session must call `derived.rebuild` (`flask rebuild-loads` and
  bench/generate.py do).

The change log is not pruned by the application: rows are small (60 edits a minute make
about 90,000 a day) and only the newest are ever read (an index on txid; on SQLite, the
primary key).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

import cachetools
import sqlalchemy as sa
from sqlalchemy.orm import InstanceState, ORMExecuteState, Session, SessionTransaction

from booking import clock
from booking.db import install_listeners
from booking.models import (
    NO_AREA,
    Campaign,
    CampaignSlot,
    CapacityOverride,
    CatalogueChange,
    Closure,
    OpeningHours,
    Organisation,
    PricePer,
    Space,
    SpaceKind,
    Unit,
    UnitKind,
)
from booking.services import availability

CELL_DEGREES = 0.1  # the grid that finds the spaces near a point
# Above this many spaces in one refresh, reading everything again is as quick.
MOST_TO_REFRESH = 2000
_CHANGED = "catalogue_changed"  # session.info: what this transaction changed (keys)
_EVERYTHING = ("all", 0)
_WATCHED = (Space, Unit, OpeningHours, Organisation, Closure, CapacityOverride, Campaign,
            CampaignSlot)


class Hours(NamedTuple):
    opens_min: int
    closes_min: int


class Photo(NamedTuple):
    """What a result card shows of a space's photo."""

    filename: str
    alt: str


@dataclass(frozen=True, slots=True)
class CatalogueUnit:
    id: int
    space_id: int
    space: CatalogueSpace = field(compare=False, repr=False)
    kind: UnitKind
    capacity: int
    fits_people: int
    price_amount: int
    price_per: PricePer
    members_only: bool
    checkin_min: int
    checkout_min: int
    night: bool  # priced per night: its offer is a stay from check-in to check-out
    # What decides whether its regular offer can take a request (members only, price,
    # kind, people it fits): one object per distinct value, so a search decides each once.
    terms: tuple
    # The shortest booking in price units: an hourly unit searched by date alone is
    # offered when it has a free stretch this many hours long.
    min_length: int = 1
    name: str = ""
    name_en: str = ""
    area: int = NO_AREA  # its map square (Unit.area): where its loads are filed

    def display_name(self, locale: str = "ja") -> str:
        return self.name_en if locale == "en" and self.name_en else self.name


@dataclass(slots=True)
class CatalogueSpace:
    id: int
    lat: float | None
    lon: float | None
    prefecture_code: int
    closed_on_holidays: bool
    amenity_set: frozenset[str]
    units: list[CatalogueUnit] = field(default_factory=list)  # cheapest first
    # The opening hours (minutes) Monday to Sunday, None when closed, then whether it
    # closes on public holidays: spaces that share it share their windows, which searches
    # work out once per pattern.
    week: tuple = ()
    # What a result page shows (as the model Space names it).
    slug: str = ""
    kind: SpaceKind = SpaceKind.COWORKING
    name: str = ""
    name_en: str = ""
    city: str = ""
    address: str = ""
    nearest_station: str = ""
    access: str = ""
    access_en: str = ""
    amenities: tuple[str, ...] = ()  # in the space's own order
    photos: tuple[Photo, ...] = ()  # set on a result page's copy only (search, photos=True)
    # For search's loops: whether closures, overrides or slots touch any of its units (the
    # catalogue's `touches`, read with it).
    touched: bool = False

    def hours_on(self, weekday: int) -> Hours | None:
        """What availability reads, as of the model's Space."""
        return self.week[weekday]

    def display_name(self, locale: str = "ja") -> str:
        return self.name_en if locale == "en" and self.name_en else self.name

    def display_access(self, locale: str = "ja") -> str:
        return self.access_en if locale == "en" and self.access_en else self.access

    @property
    def units_in_order(self) -> list[CatalogueUnit]:
        """Its units as the space page lists them (by id)."""
        return sorted(self.units, key=lambda u: u.id)


def _last_unit_id(spaces: Iterable[CatalogueSpace]) -> int:
    return max((u.id for space in spaces for u in space.units), default=0)


def _cell(lat: float, lon: float) -> tuple[int, int]:
    return math.floor(lat / CELL_DEGREES), math.floor(lon / CELL_DEGREES)


# From, to (inclusive) and the price a campaign slot sets (None: a closure, an override,
# or a slot at the unit's own price).
Touch = tuple[date, date, int | None]


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a held catalogue stands in the change log. PostgreSQL: the snapshot of the
    last look (`xmax`, and `xip`, the transactions then in progress); SQLite: the last id."""

    last_id: int = 0
    xmax: int | None = None
    xip: tuple[int, ...] = ()


# What search may remember of one catalogue (Memo), in bytes as Memo counts them (more
# than they take: the process grows by less than half of it): the spaces in reach of the
# places searched and the units whose loads it reads there; near Tokyo at 50 km some
# 200 KB, near a village a few hundred bytes. At 10,000 spaces the benchmark's 600
# searches (bench.generate.search_mix) keep 753 values, 18.9 MB. The bound this replaced,
# 256 values, held a third of them: in a run of the mix most searches missed theirs
# (57 % of the circles, 89 % of the units read) and looked for them again.
MEMO_BYTES = 32 * 1024 * 1024


# Where a value of the memo comes from: the spaces within a box (south, north, west,
# east: `circle_box` of a circle searched), of a prefecture (its code), or of the whole
# country. A change of a space elsewhere leaves it as it is.
Where = tuple


def circle_box(lat: float, lon: float, radius_km: float) -> tuple[float, float, float, float]:
    """(south, north, west, east): a box holding every point within `radius_km` of the
    point, with a margin (the circles search takes are inside it)."""
    r = radius_km * 1.01 + 0.05
    dlat = r / 110.5
    dlon = r / (111.0 * max(math.cos(math.radians(min(abs(lat) + dlat, 89.0))), 0.01))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


class Memo:
    """Search's memo of a catalogue: values by key, each with where it comes from
    (`Where`); the least recently used forgotten once the values' bytes pass `budget` (a
    value larger than that is not kept). Safe across threads. A value is a tuple; it
    counts its bytes objects by their length and its tuples' items at 40 bytes each (a
    pointer, a float or a small int)."""

    def __init__(self, budget: int = MEMO_BYTES) -> None:
        # Entries (value, where, bytes): their bytes counted once, not at each refresh.
        self._budget = budget
        self._cache: cachetools.LRUCache = cachetools.LRUCache(budget, getsizeof=itemgetter(2))
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Any:
        """The value kept under `key` (None if none), now the most recently used."""
        with self._lock:
            found = self._cache.get(key)
        return None if found is None else found[0]

    def put(self, key: tuple, value: tuple, where: Where) -> None:
        entry = (value, where, 64 + sum(len(part) if isinstance(part, bytes) else 40 * len(part)
                                        for part in value if isinstance(part, bytes | tuple)))
        with self._lock, contextlib.suppress(ValueError):  # (larger than the whole budget)
            self._cache[key] = entry

    def apart_from(self, points: list[tuple[float, float]], prefectures: set[int]) -> Memo:
        """A memo of the values that no space at `points` or in `prefectures` comes into:
        those of the spaces changed, as they were and as they are (a refreshed catalogue
        keeps what they cannot have changed, in the order they were first kept)."""
        kept = Memo(self._budget)
        with self._lock:
            entries = list(self._cache.items())
        cache = kept._cache  # (no other thread has it yet)
        for key, entry in entries:  # (loops, not any(): a refresh runs this for each value)
            where = entry[1]
            if where[0] == "box":
                _, south, north, west, east = where
                for lat, lon in points:
                    if south <= lat <= north and west <= lon <= east:
                        break
                else:
                    cache[key] = entry
            elif where[0] == "prefecture" and where[1] not in prefectures:
                cache[key] = entry
        return kept

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __contains__(self, key: tuple) -> bool:  # (not a use: the order stays)
        return key in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def bytes(self) -> int:
        return int(self._cache.currsize)


class Catalogue:
    def __init__(self, mark: Mark, spaces: dict[int, CatalogueSpace],
                 touches: dict[int, list[Touch]], patterns: dict[tuple, tuple] | None = None
                 ) -> None:
        self.mark = mark
        # One object per distinct unit terms and opening week, shared by the spaces read
        # again (searches work out each once).
        self.patterns = {} if patterns is None else patterns
        self.by_id = spaces
        self.touches = touches  # unit id -> what touches it
        # Search's memo of the spaces in reach of a place (search._in_reach): a refreshed
        # catalogue keeps what its changes cannot reach (Memo.apart_from).
        self.reach = Memo()
        # The campaign slots search's exact rule read (availability.load's kept_slots),
        # detached, with their campaign: a change of a slot or a campaign (or of an
        # organisation's approval) makes a new catalogue, which starts empty.
        self.slots: dict[int, CampaignSlot] = {}
        # The highest unit id held (the size of search's byte map of unit ids).
        self.last_unit_id = _last_unit_id(spaces.values())
        self.by_prefecture: dict[int, list[CatalogueSpace]] = {}
        # Each space with its coordinates (the spaces without any are in no cell).
        self._grid: dict[tuple[int, int], list[tuple[float, float, CatalogueSpace]]] = {}
        for space in spaces.values():
            self.by_prefecture.setdefault(space.prefecture_code, []).append(space)
            if space.lat is not None and space.lon is not None:
                self._grid.setdefault(_cell(space.lat, space.lon), []).append(
                    (space.lat, space.lon, space))

    @property
    def spaces(self) -> Iterable[CatalogueSpace]:
        return self.by_id.values()

    def cells(self, south: float, north: float, west: float, east: float
              ) -> Iterator[list[tuple[float, float, CatalogueSpace]]]:
        """The grid's cells that meet the box: (lat, lon, space) of each space in them,
        some outside the box."""
        (y0, x0), (y1, x1) = _cell(south, west), _cell(north, east)
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                if (cell := self._grid.get((y, x))) is not None:
                    yield cell

    def refreshed(self, mark: Mark, ids: set[int], found: dict[int, CatalogueSpace],
                  touches: dict[int, list[Touch]]) -> Catalogue:
        """A new catalogue with the spaces `ids` as read again (`found`: those still
        public; what touches their units, `touches`); everything else is shared with this
        one, which searches running now go on reading unchanged."""
        new = object.__new__(Catalogue)
        new.mark, new.patterns, new.slots = mark, self.patterns, {}
        new.last_unit_id = max(self.last_unit_id, _last_unit_id(found.values()))
        by_id = dict(self.by_id)
        new_touches = dict(self.touches)
        prefectures: set[int] = set()
        cells: set[tuple[int, int]] = set()
        points: list[tuple[float, float]] = []  # where the spaces changed were and are

        def note(space: CatalogueSpace) -> None:
            prefectures.add(space.prefecture_code)
            if space.lat is not None and space.lon is not None:
                cells.add(_cell(space.lat, space.lon))
                points.append((space.lat, space.lon))

        for space_id in ids:
            if (old := by_id.pop(space_id, None)) is not None:
                note(old)
                for unit in old.units:
                    new_touches.pop(unit.id, None)
        for space_id, space in found.items():
            by_id[space_id] = space
            note(space)
        new_touches.update(touches)
        new.by_id, new.touches = by_id, new_touches
        # What search remembers of places the changes cannot reach stays: at 60 edits a
        # minute an empty memo at each refresh kept almost nothing.
        new.reach = self.reach.apart_from(points, prefectures)
        new.by_prefecture = dict(self.by_prefecture)
        for code in prefectures:
            kept = [s for s in self.by_prefecture.get(code, ()) if s.id not in ids]
            kept += [s for s in found.values() if s.prefecture_code == code]
            new.by_prefecture[code] = kept
        new._grid = dict(self._grid)
        for cell in cells:
            entries = [e for e in self._grid.get(cell, ()) if e[2].id not in ids]
            entries += [(s.lat, s.lon, s) for s in found.values()
                        if s.lat is not None and s.lon is not None
                        and _cell(s.lat, s.lon) == cell]
            if entries:
                new._grid[cell] = entries
            else:
                new._grid.pop(cell, None)
        return new


def load(connection: sa.Connection, mark: Mark) -> Catalogue:
    """Read the whole catalogue (4 queries)."""
    patterns: dict[tuple, tuple] = {}
    spaces, touches = _read(connection, None, patterns)
    return Catalogue(mark, spaces, touches, patterns)


@functools.cache
def _statements(filtered: bool) -> tuple[sa.Select, sa.Select, sa.Select, sa.CompoundSelect]:
    """What _read runs: for all the catalogue, or (`filtered`) for the spaces of the
    expanding parameter `ids`. Built once: a refresh runs them with new ids only."""
    text = sa.String()
    ids: sa.BindParameter[int] = sa.bindparam("ids", expanding=True)

    def only(column: Any) -> list:
        return [column.in_(ids)] if filtered else []

    spaces = (sa.select(Space.id, Space.lat, Space.lon, Space.prefecture_code,
                        Space.closed_on_holidays, Space.amenities, Space.slug,
                        sa.type_coerce(Space.kind, text), Space.name, Space.name_en, Space.city,
                        Space.address, Space.nearest_station, Space.access, Space.access_en)
              .where(Space.is_public, *only(Space.id)))
    units = (sa.select(Unit.id, Unit.space_id, sa.type_coerce(Unit.kind, text), Unit.capacity,
                       Unit.fits_people, Unit.price_amount, sa.type_coerce(Unit.price_per, text),
                       Unit.members_only, Unit.checkin_min, Unit.checkout_min, Unit.min_length,
                       Unit.name, Unit.name_en, Unit.area)
             .where(*only(Unit.space_id)).order_by(Unit.space_id, Unit.id))
    hours = (sa.select(OpeningHours.space_id, OpeningHours.weekday, OpeningHours.opens_min,
                       OpeningHours.closes_min).where(*only(OpeningHours.space_id)))
    no_price = sa.null().cast(sa.Integer)

    def of_units(column: Any) -> list:
        if not filtered:
            return []
        return [column.in_(sa.select(Unit.id).where(Unit.space_id.in_(ids)).scalar_subquery())]

    touches = sa.union_all(
        sa.select(Closure.unit_id, Closure.start_date, Closure.end_date, no_price)
        .where(*of_units(Closure.unit_id)),
        sa.select(CapacityOverride.unit_id, CapacityOverride.day, CapacityOverride.day,
                  no_price).where(*of_units(CapacityOverride.unit_id)),
        availability.offered_slots(CampaignSlot.unit_id, CampaignSlot.start_date,
                                   CampaignSlot.end_date, CampaignSlot.price_amount)
        .where(*of_units(CampaignSlot.unit_id)),
    )
    return spaces, units, hours, touches


def _read(connection: sa.Connection, space_ids: list[int] | None,
          patterns: dict[tuple, tuple] | None = None
          ) -> tuple[dict[int, CatalogueSpace], dict[int, list[Touch]]]:
    """The public spaces (all, or those of `space_ids`), and what touches their units
    (all units' when reading all): 4 queries. `patterns`: the held catalogue's shared
    values (terms, weeks), which the spaces read join."""
    spaces_q, units_q, hours_q, touches_q = _statements(space_ids is not None)
    params = {} if space_ids is None else {"ids": space_ids}
    spaces: dict[int, CatalogueSpace] = {}
    if patterns is None:
        patterns = {}  # one object per distinct value (terms, weeks)
    kinds: dict[str, Any] = {}
    for (space_id, lat, lon, prefecture_code, closed_on_holidays, amenities, slug, kind, name,
         name_en, city, address, station, access, access_en) in connection.execute(
            spaces_q, params).all():
        listed = tuple(amenities or ())
        spaces[space_id] = CatalogueSpace(
            space_id, lat, lon, prefecture_code, closed_on_holidays, frozenset(listed),
            slug=slug, kind=kinds.get(kind) or kinds.setdefault(kind, SpaceKind(kind)),
            name=name, name_en=name_en, city=city, address=address, nearest_station=station,
            access=access, access_en=access_en, amenities=listed)
    for (unit_id, space_id, kind, capacity, fits, price, per, members_only, checkin, checkout,
         min_length, name, name_en, area) in connection.execute(units_q, params).all():
        if (space := spaces.get(space_id)) is None:
            continue  # not public
        unit_kind = kinds.get(kind) or kinds.setdefault(kind, UnitKind(kind))
        price_per = kinds.get(per) or kinds.setdefault(per, PricePer(per))
        terms = (members_only, price, unit_kind, fits)
        space.units.append(CatalogueUnit(
            unit_id, space_id, space, unit_kind, capacity, fits, price, price_per,
            members_only, checkin, checkout, price_per == PricePer.NIGHT,
            patterns.setdefault(terms, terms), min_length, name, name_en, area))
    hours: dict[int, dict[int, Hours]] = {}  # space id -> weekday -> hours
    for space_id, weekday, opens, closes in connection.execute(hours_q, params).all():
        hours.setdefault(space_id, {})[weekday] = Hours(opens, closes)
    touches: dict[int, list[Touch]] = {}
    for unit_id, first, last, price in connection.execute(touches_q, params).all():
        touches.setdefault(unit_id, []).append((first, last, price))
    for space in spaces.values():
        week_hours = hours.get(space.id, {})
        week = (*(week_hours.get(d) for d in range(7)), space.closed_on_holidays)
        space.week = patterns.setdefault(week, week)
        # Cheapest first: the first unit that qualifies gives the space's price.
        space.units.sort(key=lambda u: (u.price_amount, u.id))
        space.touched = any(u.id in touches for u in space.units)
    return spaces, touches


# --- following the change log ---------------------------------------------------------------

_NEVER = 2 ** 62  # an xmax no transaction reaches: a look that asks for no rows
# PostgreSQL's look: the snapshot (s.snap) and the change log's rows (c.id, c.space_id;
# NULL when there are none) it did not see. A FROM clause, so that search can run it in
# the same statement as its read of the unit loads (one round trip, one snapshot).
PG_LOOK_FROM = ("FROM (SELECT pg_current_snapshot() AS snap) AS s "
                "LEFT JOIN catalogue_changes AS c "
                "ON c.txid >= :xmax OR c.txid = ANY(CAST(:xip AS bigint[]))")
_POLL_PG = sa.text("SELECT s.snap::text, c.id, c.space_id " + PG_LOOK_FROM)
Looked = tuple[Mark, set[int | None]]  # the new mark, the spaces changed (None: everything)


def pg_look_params(mark: Mark | None) -> dict[str, Any]:
    """PG_LOOK_FROM's parameters: the rows `mark` has not seen (none without a mark)."""
    return {"xmax": _NEVER if mark is None or mark.xmax is None else mark.xmax,
            "xip": [] if mark is None else list(mark.xip)}


def pg_looked(rows: Iterable[tuple[str, int | None, int | None]]) -> Looked:
    """The look's answer from PG_LOOK_FROM's rows (snapshot text, change id, space id)."""
    rows = list(rows)
    _xmin, xmax, xip = rows[0][0].split(":")
    new = Mark(xmax=int(xmax), xip=tuple(int(x) for x in xip.split(",") if x))
    return new, {space_id for _, row_id, space_id in rows if row_id is not None}


def _look(connection: sa.Connection, mark: Mark | None) -> Looked:
    """The spaces changed since `mark` (None among them: everything), and the new mark
    (1 query). Without a mark: only the mark, for a full load."""
    if connection.dialect.name == "postgresql":
        return pg_looked(connection.execute(_POLL_PG, pg_look_params(mark)).all())
    if mark is None:
        last = connection.execute(sa.select(sa.func.max(CatalogueChange.id))).scalar() or 0
        return Mark(last_id=last), set()
    rows = connection.execute(
        sa.select(CatalogueChange.id, CatalogueChange.space_id)
        .where(CatalogueChange.id > mark.last_id)).all()
    if not rows:
        return mark, set()
    return Mark(last_id=max(i for i, _ in rows)), {space_id for _, space_id in rows}


def version(connection: sa.Connection) -> int:
    """The newest change's id (0 before any): what tests compare."""
    return connection.execute(sa.select(sa.func.max(CatalogueChange.id))).scalar() or 0


_held: WeakKeyDictionary[sa.Engine, Catalogue] = WeakKeyDictionary()
_loading = threading.Lock()
# What this process did to follow the log (tests and benchmarks read it): full loads,
# refreshes of some spaces, and the spaces read again.
counts: dict[str, float] = {"full": 0, "refreshes": 0, "spaces_refreshed": 0,
                             "full_seconds": 0.0, "refresh_seconds": 0.0}


def current(session: Session) -> Catalogue:
    """This process's catalogue of the session's database, with the changes committed
    since it last looked applied (1 query when there are none)."""
    session.flush()
    connection = session.connection()
    if session.info.get(_CHANGED):
        # This transaction changed the catalogue and has not committed: read it as this
        # transaction sees it, and keep it from the other sessions.
        return load(connection, Mark())
    held = _held.get(connection.engine)
    if held is None:
        return follow(connection, None, None)
    return follow(connection, held, _look(connection, held.mark))


def held(session: Session) -> Catalogue | None:
    """The catalogue this process holds of the session's database as it stood at its last
    look, without looking (None when there is none yet, or when this transaction changed
    the catalogue: current() then). The caller must look at the change log from its
    `mark` (PG_LOOK_FROM, in a statement of its own) and `follow` the answer before it
    trusts what it read."""
    session.flush()
    if session.info.get(_CHANGED):
        return None
    return _held.get(session.connection().engine)


def follow(connection: sa.Connection, held: Catalogue | None, looked: Looked | None
           ) -> Catalogue:
    """The catalogue with what a look from `held.mark` found applied: `held` itself when
    nothing changed, else the spaces named read again (a full load without `held`)."""
    if held is not None and looked is not None and not looked[1]:
        if looked[0] != held.mark:
            held.mark = looked[0]  # same spaces, a later snapshot (an atomic swap)
        return held
    engine = connection.engine
    with _loading:  # one thread of the process reads, the others wait for it
        latest = _held.get(engine)
        if latest is not held:  # another thread read meanwhile: look again from its mark
            held, looked = latest, None
        if held is None:
            mark, _ = _look(connection, None)
            return _full(engine, connection, mark)
        mark, changed = looked or _look(connection, held.mark)
        if not changed:
            held.mark = mark
            return held
        if None in changed or len(changed) > MOST_TO_REFRESH:
            return _full(engine, connection, mark)
        started = time.perf_counter()
        ids = {i for i in changed if i is not None}
        found, touches = _read(connection, sorted(ids), held.patterns)
        held = _held[engine] = held.refreshed(mark, ids, found, touches)
        counts["refreshes"] += 1
        counts["spaces_refreshed"] += len(ids)
        counts["refresh_seconds"] += time.perf_counter() - started
        return held


def _full(engine: sa.Engine, connection: sa.Connection, mark: Mark) -> Catalogue:
    started = time.perf_counter()
    held = _held[engine] = load(connection, mark)
    counts["full"] += 1
    _freeze()
    counts["full_seconds"] += time.perf_counter() - started
    return held


def _freeze() -> None:
    # Tens of thousands of long-lived objects: every full pass of the cyclic collector
    # walked them, pausing searches by 100 ms and more. Frozen, it skips them. Unfrozen
    # first, so that what the last reload froze and is garbage now (the old catalogue,
    # ended sessions) is collected.
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _txid(connection: sa.Connection) -> sa.ColumnElement | None:
    if connection.dialect.name != "postgresql":
        return None
    return sa.cast(sa.cast(sa.func.pg_current_xact_id(), sa.Text), sa.BigInteger)


def note_changes(connection: sa.Connection, space_ids: Iterable[int | None]) -> None:
    """Write the change log's rows for these spaces (None: everything), in the caller's
    transaction."""
    ids = sorted(set(space_ids), key=lambda i: -1 if i is None else i)
    if not ids:
        return
    now, txid = clock.now(), _txid(connection)
    connection.execute(sa.insert(CatalogueChange).values(
        [{"space_id": i, "changed_at": now, "txid": txid} for i in ids]))


def changed_everything(connection: sa.Connection) -> None:
    """Tell every process to read the whole catalogue again on its next search (after SQL
    that bypassed the Session)."""
    note_changes(connection, [None])


# --- noticing changes ------------------------------------------------------------------------

Key = tuple[str, int]  # ("space" | "unit" | "org" | "campaign", id), or _EVERYTHING


def _columns_changed(obj: object) -> bool:
    state = sa.inspect(obj)
    return any(state.attrs[column.key].history.has_changes()
               for column in state.mapper.column_attrs if column.key != "lock_version")


def _value(obj: object, key: str) -> int | None:
    """An attribute as flushed, without loading anything (a deleted row cannot be)."""
    state = sa.inspect(obj)
    value = state.dict.get(key)
    if value is None:
        value = state.committed_state.get(key)
    return value if isinstance(value, int) else None


def _keys(obj: object) -> list[Key]:
    if isinstance(obj, Space | Organisation | Campaign):
        kind = "space" if isinstance(obj, Space) else (
            "org" if isinstance(obj, Organisation) else "campaign")
        state: InstanceState = sa.inspect(obj)
        ident = state.identity
        return [(kind, ident[0])] if ident else [_EVERYTHING]
    if isinstance(obj, Unit | OpeningHours):
        kind, column = "space", "space_id"
    else:  # Closure, CapacityOverride, CampaignSlot
        kind, column = "unit", "unit_id"
    found = [(kind, v) for v in {_value(obj, column),
                                 *sa.inspect(obj).attrs[column].history.deleted} if v]
    return found or [_EVERYTHING]


def _after_flush(session: Session, _context) -> None:
    keys: set[Key] = set()
    for obj in (*session.new, *session.deleted):
        if isinstance(obj, _WATCHED):
            keys.update(_keys(obj))
    for obj in session.dirty:
        if isinstance(obj, _WATCHED) and _columns_changed(obj):
            keys.update(_keys(obj))
    if keys:
        session.info.setdefault(_CHANGED, set()).update(keys)


# An ORM UPDATE or DELETE: what its rows name, read before it runs.
_SCOPE: dict[type, tuple[str, Any]] = {
    Space: ("space", Space.id), Unit: ("space", Unit.space_id),
    OpeningHours: ("space", OpeningHours.space_id), Closure: ("unit", Closure.unit_id),
    CapacityOverride: ("unit", CapacityOverride.unit_id),
    CampaignSlot: ("unit", CampaignSlot.unit_id), Organisation: ("org", Organisation.id),
    Campaign: ("campaign", Campaign.id),
}


def _statement(state: ORMExecuteState) -> None:
    if not ((state.is_update or state.is_delete or state.is_insert)
            and state.bind_mapper is not None and issubclass(state.bind_mapper.class_, _WATCHED)
            and not state.execution_options.get("catalogue_unchanged")):
        return
    keys: set[Key] = {_EVERYTHING}
    where = getattr(state.statement, "whereclause", None)
    if not state.is_insert and where is not None:
        kind, column = _SCOPE[state.bind_mapper.class_]
        found = state.session.execute(sa.select(column).where(where).distinct()).scalars()
        keys = {(kind, v) for v in found}
    state.session.info.setdefault(_CHANGED, set()).update(keys)


def _spaces_of(connection: sa.Connection, keys: set[Key]) -> set[int | None]:
    """The spaces whose catalogue entry these changes concern (None: everything)."""
    by_kind: dict[str, set[int]] = {}
    for kind, ident in keys:
        by_kind.setdefault(kind, set()).add(ident)
    if "all" in by_kind:
        return {None}
    spaces: set[int | None] = set(by_kind.get("space", ()))
    queries = []
    if units := by_kind.get("unit"):
        queries.append(sa.select(Unit.space_id).where(Unit.id.in_(units)))
    if orgs := by_kind.get("org"):  # approval: its spaces, and its campaigns' slots
        queries.append(sa.select(Space.id).where(Space.organisation_id.in_(orgs)))
        queries.append(sa.select(Unit.space_id).join(CampaignSlot, CampaignSlot.unit_id == Unit.id)
                       .join(Campaign, Campaign.id == CampaignSlot.campaign_id)
                       .where(Campaign.organisation_id.in_(orgs)))
    if campaigns := by_kind.get("campaign"):
        queries.append(sa.select(Unit.space_id).join(CampaignSlot, CampaignSlot.unit_id == Unit.id)
                       .where(CampaignSlot.campaign_id.in_(campaigns)))
    if queries:
        spaces.update(connection.execute(sa.union(*queries)).scalars())
    return spaces


def _before_commit(session: Session) -> None:
    session.flush()  # the commit's own flush comes after this hook
    if keys := session.info.pop(_CHANGED, None):
        connection = session.connection()
        note_changes(connection, _spaces_of(connection, keys))


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # rolled back, or committed: nothing left to note
        session.info.pop(_CHANGED, None)


def install() -> None:
    """Note catalogue changes in every Session (create_app calls it; a second call
    registers nothing twice)."""
    install_listeners((
        (Session, "after_flush", _after_flush),
        (Session, "do_orm_execute", _statement),
        (Session, "before_commit", _before_commit),
        (Session, "after_transaction_end", _after_transaction_end),
    ))
