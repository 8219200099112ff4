"""The search catalogue: every public space (Space.is_public: published, of an approved
organisation) with its units and opening hours, and what touches units on some days
(closures, capacity overrides, offered campaign slots), held in memory per process.

Reading those rows for every search was most of its cost: a search near a big city
covers thousands of units. They change rarely, so each process keeps them and checks one
number per search, `catalogue_version`, which changes in the same transaction as any
change to spaces, units, opening hours, organisations, closures, capacity overrides,
campaigns or their slots:

- hooks on every Session (registered by `install()`, which create_app calls) mark such
  changes (flushed objects, ORM statements) and bump the number just before commit, so
  the version row is the last lock a transaction takes and a reader that sees the new
  number also sees the new rows;
- every booking advances its unit's `lock_version` with an ORM UPDATE: such statements
  say `execution_options(catalogue_unchanged=True)`, or each booking would reload;
- SQL that bypasses the Session must call `derived.rebuild` (`flask rebuild-loads` and
  bench/generate.py do).
"""

from __future__ import annotations

import gc
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from booking.db import install_listeners
from booking.models import (
    Campaign,
    CampaignSlot,
    CapacityOverride,
    CatalogueVersion,
    Closure,
    OpeningHours,
    Organisation,
    PricePer,
    Space,
    Unit,
)
from booking.services import availability

CELL_DEGREES = 0.1  # the grid that finds the spaces near a point
_CHANGED = "catalogue_changed"
_WATCHED = (Space, Unit, OpeningHours, Organisation, Closure, CapacityOverride, Campaign,
            CampaignSlot)


class Hours(NamedTuple):
    opens_min: int
    closes_min: int


@dataclass(frozen=True, slots=True)
class CatalogueUnit:
    id: int
    space_id: int
    space: CatalogueSpace = field(compare=False, repr=False)
    kind: str
    capacity: int
    fits_people: int
    price_amount: int
    price_per: str
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


@dataclass(slots=True)
class CatalogueSpace:
    id: int
    lat: float | None
    lon: float | None
    prefecture_code: int
    closed_on_holidays: bool
    amenities: frozenset[str]
    units: list[CatalogueUnit] = field(default_factory=list)
    # The opening hours (minutes) Monday to Sunday, None when closed, then whether it
    # closes on public holidays: spaces that share it share their windows, which searches
    # work out once per pattern.
    week: tuple = ()

    def hours_on(self, weekday: int) -> Hours | None:
        """What availability reads, as of the model's Space."""
        return self.week[weekday]


def _cell(lat: float, lon: float) -> tuple[int, int]:
    return math.floor(lat / CELL_DEGREES), math.floor(lon / CELL_DEGREES)


# From, to (inclusive) and the price a campaign slot sets (None: a closure, an override,
# or a slot at the unit's own price).
Touch = tuple[date, date, int | None]


class Catalogue:
    def __init__(self, version: int, spaces: list[CatalogueSpace],
                 touches: dict[int, list[Touch]]) -> None:
        self.version = version
        self.spaces = spaces
        self.touches = touches  # unit id -> what touches it
        self.by_prefecture: dict[int, list[CatalogueSpace]] = {}
        # Each space with its coordinates (the spaces without any are in no cell).
        self._grid: dict[tuple[int, int], list[tuple[float, float, CatalogueSpace]]] = {}
        for space in spaces:
            self.by_prefecture.setdefault(space.prefecture_code, []).append(space)
            if space.lat is not None and space.lon is not None:
                self._grid.setdefault(_cell(space.lat, space.lon), []).append(
                    (space.lat, space.lon, space))

    def in_box(self, south: float, north: float, west: float, east: float
               ) -> Iterator[CatalogueSpace]:
        """Spaces with coordinates inside the box."""
        (y0, x0), (y1, x1) = _cell(south, west), _cell(north, east)
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                for lat, lon, space in self._grid.get((y, x), ()):
                    if south <= lat <= north and west <= lon <= east:
                        yield space


def load(connection: sa.Connection, version: int) -> Catalogue:
    """Read the catalogue (3 queries)."""
    text = sa.String()
    spaces: dict[int, CatalogueSpace] = {}
    patterns: dict[tuple, tuple] = {}  # one object per distinct value (terms, weeks)
    for (unit_id, space_id, kind, capacity, fits, price, per, members_only, checkin, checkout,
         min_length, lat, lon, amenities, closed_on_holidays, prefecture_code) in connection.execute(
        sa.select(Unit.id, Unit.space_id, sa.type_coerce(Unit.kind, text), Unit.capacity,
                  Unit.fits_people, Unit.price_amount, sa.type_coerce(Unit.price_per, text),
                  Unit.members_only, Unit.checkin_min, Unit.checkout_min, Unit.min_length,
                  Space.lat, Space.lon,
                  Space.amenities, Space.closed_on_holidays, Space.prefecture_code)
        .join(Space, Unit.space_id == Space.id)
        .where(Space.is_public)
        .order_by(Unit.space_id, Unit.id)
    ).all():
        space = spaces.get(space_id)
        if space is None:
            space = spaces[space_id] = CatalogueSpace(
                space_id, lat, lon, prefecture_code, closed_on_holidays,
                frozenset(amenities or ()))
        terms = (members_only, price, kind, fits)
        space.units.append(CatalogueUnit(unit_id, space_id, space, kind, capacity, fits, price, per,
                                         members_only, checkin, checkout,
                                         per == PricePer.NIGHT,
                                         patterns.setdefault(terms, terms), min_length))
    hours: dict[int, dict[int, Hours]] = {}  # space id -> weekday -> hours
    for space_id, weekday, opens, closes in connection.execute(
        sa.select(OpeningHours.space_id, OpeningHours.weekday, OpeningHours.opens_min,
                  OpeningHours.closes_min)
    ).all():
        hours.setdefault(space_id, {})[weekday] = Hours(opens, closes)
    touches: dict[int, list[Touch]] = {}
    no_price = sa.null().cast(sa.Integer)
    for unit_id, first, last, price in connection.execute(sa.union_all(
        sa.select(Closure.unit_id, Closure.start_date, Closure.end_date, no_price),
        sa.select(CapacityOverride.unit_id, CapacityOverride.day, CapacityOverride.day,
                  no_price),
        availability.offered_slots(CampaignSlot.unit_id, CampaignSlot.start_date,
                                   CampaignSlot.end_date, CampaignSlot.price_amount),
    )).all():
        touches.setdefault(unit_id, []).append((first, last, price))
    for space in spaces.values():
        week_hours = hours.get(space.id, {})
        week = (*(week_hours.get(d) for d in range(7)), space.closed_on_holidays)
        space.week = patterns.setdefault(week, week)
        # Cheapest first: the first unit that qualifies gives the space's price.
        space.units.sort(key=lambda u: (u.price_amount, u.id))
    return Catalogue(version, list(spaces.values()), touches)


def version(connection: sa.Connection) -> int:
    return connection.execute(
        sa.select(CatalogueVersion.version).where(CatalogueVersion.id == 1)).scalar() or 0


_held: WeakKeyDictionary[sa.Engine, Catalogue] = WeakKeyDictionary()
_loading = threading.Lock()


def current(session: Session) -> Catalogue:
    """This process's catalogue of the session's database, reloaded when its version has
    changed (1 query when it has not)."""
    session.flush()
    connection = session.connection()
    wanted = version(connection)
    if session.info.get(_CHANGED):
        # This transaction changed the catalogue and has not committed: read it as this
        # transaction sees it, and keep it from the other sessions.
        return load(connection, wanted)
    engine = connection.engine
    held = _held.get(engine)
    if held is None or held.version != wanted:
        with _loading:  # one thread of the process reloads, the others wait for it
            held = _held.get(engine)
            if held is None or held.version != wanted:
                held = _held[engine] = load(connection, wanted)
                # Tens of thousands of long-lived objects: every full pass of the cyclic
                # collector walked them, pausing searches by 100 ms and more. Frozen, it
                # skips them. Unfrozen first, so that what the last reload froze and is
                # garbage now (the old catalogue, ended sessions) is collected.
                gc.unfreeze()
                gc.collect()
                gc.freeze()
    return held


def bump(connection: sa.Connection) -> None:
    """Tell every process that the catalogue changed (it reloads on its next search)."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(insert(CatalogueVersion).values(id=1, version=1).on_conflict_do_update(
        index_elements=["id"], set_={"version": CatalogueVersion.version + 1}))


# --- noticing changes ------------------------------------------------------------------------


def _columns_changed(obj: object) -> bool:
    state = sa.inspect(obj)
    return any(state.attrs[column.key].history.has_changes()
               for column in state.mapper.column_attrs if column.key != "lock_version")


def _before_flush(session: Session, _context, _instances) -> None:
    if session.info.get(_CHANGED):
        return
    if any(isinstance(obj, _WATCHED) for obj in (*session.new, *session.deleted)) or any(
            isinstance(obj, _WATCHED) and _columns_changed(obj) for obj in session.dirty):
        session.info[_CHANGED] = True


def _statement(state: ORMExecuteState) -> None:
    if ((state.is_update or state.is_delete or state.is_insert)
            and state.bind_mapper is not None and issubclass(state.bind_mapper.class_, _WATCHED)
            and not state.execution_options.get("catalogue_unchanged")):
        state.session.info[_CHANGED] = True


def _before_commit(session: Session) -> None:
    session.flush()  # the commit's own flush comes after this hook
    if session.info.pop(_CHANGED, False):
        bump(session.connection())


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # rolled back, or committed: nothing left to bump
        session.info.pop(_CHANGED, None)


def install() -> None:
    """Mark and bump catalogue changes in every Session (create_app calls it; a second
    call registers nothing twice)."""
    install_listeners((
        (Session, "before_flush", _before_flush),
        (Session, "do_orm_execute", _statement),
        (Session, "before_commit", _before_commit),
        (Session, "after_transaction_end", _after_transaction_end),
    ))
