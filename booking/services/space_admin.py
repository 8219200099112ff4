"""Running a space: its details, opening hours and units (with their prices), and the rule
that no change leaves an existing booking without a seat or outside the open hours.

Who may do what is booking.services.access's: members of the organisation that owns a
space manage it (anyone else is told "not found"); its owners alone create or delete
units, change prices and delete spaces. Services flush, never commit.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, SessionTransaction, selectinload

from booking import clock
from booking.models import (
    HOLDING_STATUSES,
    Booking,
    OpeningHours,
    Organisation,
    Space,
    Unit,
    UnitKind,
    User,
)
from booking.prefectures import by_code
from booking.services import access, availability, loads, waitlist
from booking.services.audit import record
from booking.services.availability import regular_window, tokyo_days
from booking.services.errors import DomainError

# --------------------------------------------------------------------------------------
# Loading what a member may see


def organisations_of(user: User) -> list[Organisation]:
    """The organisations whose spaces the user runs: the supporters (municipalities and
    operators) they belong to."""
    return [m.organisation for m in user.memberships if m.organisation.is_supporter]


def get_organisation(session: Session, user: User, organisation_id: int) -> Organisation:
    """A supporter organisation of the user's, to add a space to; "not found" otherwise."""
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise DomainError("not_found")
    _require_supporter(user, organisation)
    return organisation


def _require_supporter(user: User, organisation: Organisation) -> None:
    if not organisation.is_supporter:  # a company owns no spaces
        raise DomainError("not_found")
    access.require(user, "manage", organisation)


def _space_query() -> sa.Select:
    return sa.select(Space).options(
        selectinload(Space.opening_hours), selectinload(Space.units), selectinload(Space.photos),
        selectinload(Space.organisation),
    )


def spaces_of(session: Session, organisations: Iterable[Organisation]) -> list[Space]:
    """The spaces of these organisations (the caller's own: organisations_of)."""
    ids = [o.id for o in organisations]
    return list(session.scalars(
        _space_query().where(Space.organisation_id.in_(ids))
        .order_by(Space.organisation_id, Space.id)))


def get_space(session: Session, user: User, space_id: int) -> Space:
    space = session.scalar(_space_query().where(Space.id == space_id))
    if space is None:
        raise DomainError("not_found")
    access.require(user, "manage", space)
    return space


def get_unit(session: Session, user: User, unit_id: int) -> Unit:
    return access.fetch(session, user, "manage", Unit, unit_id)


# --------------------------------------------------------------------------------------
# The guard: a change must not leave a booking without a seat or outside the open hours


@dataclass(frozen=True)
class Affected:
    booking: Booking
    reason: str  # "seats": more booked than seats; "closed": outside hours or on a closure


def lock_units(session: Session, units: Sequence[Unit]) -> None:
    """Take the row lock a booking transaction takes on its unit, in id order, so that no
    booking slips in between our check and our commit."""
    ids = sorted({u.id for u in units})
    # PostgreSQL: row locks (executed, in id order); SQLite: the UPDATE takes the write lock.
    session.execute(sa.select(Unit.id).where(Unit.id.in_(ids)).order_by(Unit.id).with_for_update())
    session.execute(
        sa.update(Unit).where(Unit.id.in_(ids)).values(lock_version=Unit.lock_version + 1)
        .execution_options(synchronize_session=False, catalogue_unchanged=True)
    )
    loads.note_locked(session, ids)


def _covered(unit: Unit, booking: Booking, closures: list[availability.ClosedDays]) -> bool:
    """Whether the booking lies entirely inside the open windows of the days it touches."""
    windows = []
    for day in tokyo_days(booking.starts_at, booking.ends_at):
        if any(c.start_date <= day <= c.end_date for c in closures):
            continue
        if (w := regular_window(unit, day)) is not None:
            windows.append(w)
    covered = booking.starts_at
    for w0, w1 in sorted(windows):
        if w0 > covered:
            break
        covered = max(covered, w1)
        if covered >= booking.ends_at:
            return True
    return covered >= booking.ends_at


def affected_bookings(session: Session, units: Sequence[Unit], start: datetime,
                      end: datetime) -> dict[int, Affected]:
    """Holding bookings in [start, end) that have no seat (free seats below zero at some
    instant) or lie outside the opening hours or on a closure, as the data stand now."""
    if not units or start >= end:
        return {}
    data = availability.load(session, units, start, end)
    lines = availability.timelines(session, units, start, end)
    found: dict[int, Affected] = {}
    for unit in units:
        unit_data = data[unit.id]
        short = [p for p in lines[unit.id].pieces if p.physical < 0]
        for b in unit_data.bookings:
            if any(b.starts_at < p.end and b.ends_at > p.start for p in short):
                found[b.id] = Affected(b, "seats")
            elif not _covered(unit, b, unit_data.closures):
                found[b.id] = Affected(b, "closed")
    return found


def _horizon(session: Session, units: Sequence[Unit], start: datetime) -> datetime | None:
    """The end of the last holding booking of these units that ends after `start`."""
    return session.scalar(
        sa.select(sa.func.max(Booking.ends_at)).where(
            Booking.unit_id.in_([u.id for u in units]),
            Booking.status.in_(HOLDING_STATUSES),
            Booking.ends_at > start,
        )
    )


class Guard:
    """Check a change: `with Guard(session, units, start, end): change...` raises
    capacity_conflict listing the bookings the change newly leaves without a seat.

    The change runs in a savepoint, undone when it is refused: the session is then as it
    was (the refusal's page shows the space as stored, not as it was asked to become).
    Bookings that already had a problem before the change are not blamed on it. Only
    the future counts: a booking that is over cannot lose its seat."""

    def __init__(self, session: Session, units: Sequence[Unit], start: datetime | None = None,
                 end: datetime | None = None) -> None:
        self.session = session
        self.units = list(units)
        now = clock.now()
        self.start = max(start, now) if start is not None else now
        self.end = end
        self.before: dict[int, Affected] = {}
        self._savepoint: SessionTransaction | None = None

    def __enter__(self) -> Guard:
        # The lock comes first: it also opens the transaction the savepoint lives in.
        lock_units(self.session, self.units)
        horizon = _horizon(self.session, self.units, self.start)
        if horizon is None:
            self.end = None  # no booking ahead: nothing to check
        else:
            self.end = min(self.end, horizon) if self.end is not None else horizon
            self.before = affected_bookings(self.session, self.units, self.start, self.end)
        self._savepoint = self.session.begin_nested()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self._savepoint is not None
        if exc_type is not None:
            self._savepoint.rollback()
            return False
        if self.end is not None:
            self.session.flush()
            after = affected_bookings(self.session, self.units, self.start, self.end)
            new = [a for bid, a in after.items() if bid not in self.before]
            if new:
                self._savepoint.rollback()
                new.sort(key=lambda a: (a.booking.starts_at, a.booking.id))
                raise DomainError("capacity_conflict", affected=new)
        self._savepoint.commit()
        return False


# --------------------------------------------------------------------------------------
# Spaces

SPACE_FIELDS = (
    "kind", "name", "name_en", "description", "description_en", "prefecture_code", "city",
    "postal_code", "address", "lat", "lon", "nearest_station", "access", "access_en", "amenities",
    "published", "contact_phone", "contact_email",
)
Hours = dict[int, tuple[int, int]]  # weekday (0 = Monday) -> (opens, closes) in minutes


def make_slug(name_en: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name_en).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60]
    return f"{base}-{secrets.token_hex(3)}" if base else f"space-{secrets.token_hex(5)}"


def _fill_coordinates(session: Session, space: Space, geocoder: Any = None) -> None:
    """Coordinates from the address (the geocoding service: online when configured, else
    the city offline), else the prefecture's office; marked approximate, so that the
    operator checks them on the map."""
    from booking.services import geocoding

    if not geocoding.fill_coordinates(session, space, geocoder, force=True):
        pref = by_code(space.prefecture_code)
        if pref is None:  # the forms offer the 47 prefectures only
            raise ValueError(f"unknown prefecture code {space.prefecture_code}")
        space.lat, space.lon = pref.lat, pref.lon
        space.coordinates_approximate = True


def _check_slug(session: Session, slug: str, space_id: int | None) -> None:
    taken = session.scalar(sa.select(Space.id).where(Space.slug == slug))
    if taken is not None and taken != space_id:
        raise DomainError("slug_taken", field="slug")


def create_space(session: Session, user: User, organisation: Organisation, values: dict,
                 hours: Hours | None = None, geocoder: Any = None) -> Space:
    _require_supporter(user, organisation)
    slug = values.pop("slug", "") or make_slug(values.get("name_en") or "")
    _check_slug(session, slug, None)
    space = Space(organisation_id=organisation.id, slug=slug,
                  closed_on_holidays=values.pop("closed_on_holidays", True),
                  **{k: values[k] for k in SPACE_FIELDS if k in values})
    if space.lat is None or space.lon is None:
        _fill_coordinates(session, space, geocoder)
    session.add(space)
    session.flush()
    for weekday, (opens, closes) in sorted((hours or {}).items()):
        session.add(OpeningHours(space_id=space.id, weekday=weekday, opens_min=opens,
                                 closes_min=closes))
    record(session, user, "space.create", space, organisation.id, name=space.name)
    session.flush()
    return space


def update_space(session: Session, user: User, space: Space, values: dict,
                 regeocode: bool = False, geocoder: Any = None) -> Space:
    access.require(user, "manage", space)
    slug = values.pop("slug", "") or space.slug
    _check_slug(session, slug, space.id)
    space.slug = slug
    moved = (values.get("address", space.address) != space.address
             or values.get("prefecture_code", space.prefecture_code) != space.prefecture_code)
    coordinates_given = (values.get("lat") is not None and values.get("lon") is not None
                         and (values["lat"], values["lon"]) != (space.lat, space.lon))
    for key in SPACE_FIELDS:
        if key in values:
            setattr(space, key, values[key])
    if coordinates_given:
        space.coordinates_approximate = False  # placed by hand on the map
    elif regeocode or space.lat is None or space.lon is None or (
            moved and space.coordinates_approximate):
        _fill_coordinates(session, space, geocoder)
    record(session, user, "space.update", space, space.organisation_id,
           published=space.published)
    session.flush()
    return space


def set_published(session: Session, user: User, space: Space, published: bool) -> None:
    access.require(user, "manage", space)
    space.published = published
    record(session, user, "space.publish" if published else "space.unpublish", space,
           space.organisation_id)
    session.flush()


def delete_space(session: Session, user: User, space: Space) -> None:
    access.require(user, "own", space)
    if session.scalar(sa.select(sa.func.count(Booking.id)).join(Unit).where(
            Unit.space_id == space.id)):
        raise DomainError("has_bookings")
    record(session, user, "space.delete", space, space.organisation_id, name=space.name)
    session.delete(space)
    session.flush()


def set_hours(session: Session, user: User, space: Space, hours: Hours,
              closed_on_holidays: bool) -> None:
    """Weekly opening hours (weekday -> (opens, closes) minutes; missing = closed)."""
    access.require(user, "manage", space)
    with Guard(session, space.units):
        for weekday in range(7):
            row = space.hours_on(weekday)
            if weekday in hours:
                opens, closes = hours[weekday]
                if row is None:
                    space.opening_hours.append(OpeningHours(weekday=weekday, opens_min=opens,
                                                            closes_min=closes))
                else:
                    row.opens_min, row.closes_min = opens, closes
            elif row is not None:
                space.opening_hours.remove(row)
        space.closed_on_holidays = closed_on_holidays
    record(session, user, "hours.update", space, space.organisation_id,
           closed_on_holidays=closed_on_holidays,
           hours="; ".join(f"{d}:{o}-{c}" for d, (o, c) in sorted(hours.items())))
    session.flush()


# --------------------------------------------------------------------------------------
# Units

UNIT_FIELDS = (
    "kind", "name", "name_en", "capacity", "fits_people", "price_amount", "price_per",
    "min_length", "max_length", "lead_time_hours", "cancel_deadline_hours", "members_only",
    "checkin_min", "checkout_min", "max_days_ahead", "no_show_release_minutes",
)
PRICE_FIELDS = ("price_amount", "price_per")


def create_unit(session: Session, user: User, space: Space, values: dict) -> Unit:
    access.require(user, "own", space)  # a new unit comes with a price: owners only
    unit = Unit(space_id=space.id, **{k: values[k] for k in UNIT_FIELDS if k in values})
    if unit.kind != UnitKind.DESK:
        unit.capacity = 1  # rooms and houses are taken whole
    session.add(unit)
    session.flush()
    record(session, user, "unit.create", unit, space.organisation_id, name=unit.name,
           capacity=unit.capacity, price_amount=unit.price_amount, price_per=unit.price_per)
    return unit


def update_unit(session: Session, user: User, unit: Unit, values: dict) -> Unit:
    access.require(user, "manage", unit)
    org_id = unit.space.organisation_id
    price_changed = any(k in values and values[k] != getattr(unit, k) for k in PRICE_FIELDS)
    if price_changed:
        access.require(user, "own", unit)
        record(session, user, "unit.price", unit, org_id,
               old_amount=unit.price_amount, old_per=unit.price_per,
               amount=values.get("price_amount", unit.price_amount),
               per=values.get("price_per", unit.price_per))
    kind = values.get("kind", unit.kind)
    new_capacity = 1 if kind != UnitKind.DESK else values.get("capacity", unit.capacity)
    # A room or a house is taken whole: capacity 1, and no override above 1 either.
    whole_overrides = ([o for o in unit.capacity_overrides if o.capacity > 1]
                       if kind != UnitKind.DESK else [])
    if new_capacity != unit.capacity or whole_overrides:
        old_capacity = unit.capacity
        with Guard(session, [unit]):
            unit.kind = kind  # with its capacity: the database checks the two together
            unit.capacity = new_capacity
            for override in whole_overrides:
                override.capacity = 1
        if new_capacity != old_capacity:
            record(session, user, "unit.capacity", unit, org_id, old=old_capacity,
                   new=new_capacity)
        if new_capacity > old_capacity:  # more seats: the waitlist is offered them
            session.flush()
            waitlist.offer_unit(session, unit.id)
    for key in UNIT_FIELDS:
        if key in values and key != "capacity":
            setattr(unit, key, values[key])
    record(session, user, "unit.update", unit, org_id, name=unit.name)
    session.flush()
    return unit


def delete_unit(session: Session, user: User, unit: Unit) -> None:
    access.require(user, "own", unit)
    if session.scalar(sa.select(sa.func.count(Booking.id)).where(Booking.unit_id == unit.id)):
        raise DomainError("has_bookings")
    record(session, user, "unit.delete", unit, unit.space.organisation_id, name=unit.name)
    unit.space.units.remove(unit)
    session.flush()
