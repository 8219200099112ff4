"""The operator console's rules: who may do what, spaces, units, hours, closures, overrides,
and the guard that no change leaves an existing booking without a seat.

Services flush, never commit: the caller commits on success. On a DomainError the caller
must roll back (the change was already applied to the session to be checked).

Authorisation: only members of the organisation that owns a space see or change it
(anyone else gets "not found", so that ids are not confirmed); staff run bookings,
hours and closures; owners alone change prices, create or delete units and delete spaces.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from booking import clock
from booking.models import (
    HOLDING_STATUSES,
    Booking,
    BookingStatus,
    CapacityOverride,
    Closure,
    OpeningHours,
    Organisation,
    OrgKind,
    Role,
    Space,
    Unit,
    UnitKind,
    User,
)
from booking.prefectures import by_code
from booking.services import access, availability, loads
from booking.services.audit import record
from booking.services.availability import TOKYO, at, regular_window, tokyo_days
from booking.services.csvexport import csv_text
from booking.services.errors import DomainError

# --------------------------------------------------------------------------------------
# Who may do what


def console_organisations(user: User) -> list[Organisation]:
    """Supporter organisations (municipalities, operators) the user belongs to."""
    return [
        m.organisation for m in user.memberships
        if m.organisation.kind in (OrgKind.OPERATOR, OrgKind.MUNICIPALITY)
    ]


def require_console(user: User) -> list[Organisation]:
    orgs = console_organisations(user)
    if not orgs:
        raise DomainError("not_supporter")
    return orgs


def require_member(user: User, organisation_id: int) -> Role:
    """The user's role in the organisation; "not found" for anyone else."""
    access.require(user, "manage", organisation_id)
    return access.role_in(user, organisation_id)  # type: ignore[return-value]


def require_owner(user: User, organisation_id: int) -> None:
    access.require(user, "own", organisation_id)


def is_owner(user: User, organisation_id: int) -> bool:
    return access.is_owner(user, organisation_id)


# --------------------------------------------------------------------------------------
# Loading what a member may see (None when it does not exist; the caller checks access)


def space_query() -> sa.Select:
    return sa.select(Space).options(
        selectinload(Space.opening_hours), selectinload(Space.units), selectinload(Space.photos),
        selectinload(Space.organisation),
    )


def spaces_of(session: Session, organisations: Iterable[Organisation]) -> list[Space]:
    ids = [o.id for o in organisations]
    return list(session.scalars(
        space_query().where(Space.organisation_id.in_(ids)).order_by(Space.organisation_id, Space.id)
    ))


def get_space(session: Session, user: User, space_id: int) -> Space:
    space = session.scalar(space_query().where(Space.id == space_id))
    if space is None:
        raise DomainError("not_found")
    require_member(user, space.organisation_id)
    return space


def get_unit(session: Session, user: User, unit_id: int) -> Unit:
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise DomainError("not_found")
    require_member(user, unit.space.organisation_id)
    return unit


def get_booking(session: Session, user: User, booking_id: int) -> Booking:
    booking = session.get(Booking, booking_id)
    if booking is None:
        raise DomainError("not_found")
    require_member(user, booking.unit.space.organisation_id)
    return booking


def get_owned(session: Session, user: User, model, object_id: int, space: Space):
    """A closure, override or photo that belongs to `space` (already access-checked)."""
    obj = session.get(model, object_id)
    if obj is None:
        raise DomainError("not_found")
    owner_space_id = obj.space_id if hasattr(obj, "space_id") else obj.unit.space_id
    if owner_space_id != space.id:
        raise DomainError("not_found")
    return obj


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

    def __enter__(self) -> Guard:
        lock_units(self.session, self.units)
        horizon = _horizon(self.session, self.units, self.start)
        if horizon is None:
            self.end = None  # no booking ahead: nothing to check
        else:
            self.end = min(self.end, horizon) if self.end is not None else horizon
            self.before = affected_bookings(self.session, self.units, self.start, self.end)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None or self.end is None:
            return False
        self.session.flush()
        after = affected_bookings(self.session, self.units, self.start, self.end)
        new = [a for bid, a in after.items() if bid not in self.before]
        if new:
            new.sort(key=lambda a: (a.booking.starts_at, a.booking.id))
            raise DomainError("capacity_conflict", affected=new)
        return False


# --------------------------------------------------------------------------------------
# Spaces

SPACE_FIELDS = (
    "kind", "name", "name_en", "description", "description_en", "prefecture_code", "city",
    "address", "lat", "lon", "nearest_station", "access", "access_en", "amenities", "published",
)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,78}[a-z0-9]$")


def make_slug(name_en: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name_en).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60]
    return f"{base}-{secrets.token_hex(3)}" if base else f"space-{secrets.token_hex(5)}"


def valid_slug(slug: str) -> bool:
    return bool(_SLUG.match(slug))


def fill_coordinates(session: Session, space: Space, geocoder=None) -> None:
    """Coordinates from the address (the geocoding service: online when configured, else
    the city offline), else the prefecture's office; marked approximate, so that the
    operator checks them on the map."""
    from booking.services import geocoding

    if not geocoding.fill_coordinates(session, space, geocoder, force=True):
        pref = by_code(space.prefecture_code)
        space.lat, space.lon = pref.lat, pref.lon
        space.coordinates_approximate = True


def _check_slug(session: Session, slug: str, space_id: int | None) -> None:
    taken = session.scalar(sa.select(Space.id).where(Space.slug == slug))
    if taken is not None and taken != space_id:
        raise DomainError("slug_taken", field="slug")


def create_space(session: Session, user: User, organisation_id: int, values: dict,
                 hours: dict[int, tuple[int, int]] | None = None, geocoder=None) -> Space:
    require_member(user, organisation_id)
    slug = values.pop("slug", "") or make_slug(values.get("name_en") or "")
    _check_slug(session, slug, None)
    space = Space(organisation_id=organisation_id, slug=slug,
                  closed_on_holidays=values.pop("closed_on_holidays", True),
                  **{k: values[k] for k in SPACE_FIELDS if k in values})
    if space.lat is None or space.lon is None:
        fill_coordinates(session, space, geocoder)
    session.add(space)
    session.flush()
    for weekday, (opens, closes) in sorted((hours or {}).items()):
        session.add(OpeningHours(space_id=space.id, weekday=weekday, opens_min=opens,
                                 closes_min=closes))
    record(session, user, "space.create", space, organisation_id, name=space.name)
    session.flush()
    return space


def update_space(session: Session, user: User, space: Space, values: dict,
                 regeocode: bool = False, geocoder=None) -> Space:
    require_member(user, space.organisation_id)
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
        fill_coordinates(session, space, geocoder)
    record(session, user, "space.update", space, space.organisation_id,
           published=space.published)
    session.flush()
    return space


def set_published(session: Session, user: User, space: Space, published: bool) -> None:
    require_member(user, space.organisation_id)
    space.published = published
    record(session, user, "space.publish" if published else "space.unpublish", space,
           space.organisation_id)
    session.flush()


def delete_space(session: Session, user: User, space: Space) -> None:
    require_owner(user, space.organisation_id)
    if session.scalar(sa.select(sa.func.count(Booking.id)).join(Unit).where(
            Unit.space_id == space.id)):
        raise DomainError("has_bookings")
    record(session, user, "space.delete", space, space.organisation_id, name=space.name)
    session.delete(space)
    session.flush()


def set_hours(session: Session, user: User, space: Space,
              hours: dict[int, tuple[int, int]], closed_on_holidays: bool) -> None:
    """Weekly opening hours (weekday -> (opens, closes) minutes; missing = closed)."""
    require_member(user, space.organisation_id)
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
    "checkin_min", "checkout_min", "max_days_ahead",
)
PRICE_FIELDS = ("price_amount", "price_per")


def create_unit(session: Session, user: User, space: Space, values: dict) -> Unit:
    # A new unit comes with a price: owners only.
    require_owner(user, space.organisation_id)
    unit = Unit(space_id=space.id, **{k: values[k] for k in UNIT_FIELDS if k in values})
    if unit.kind != UnitKind.DESK:
        unit.capacity = 1  # rooms and houses are taken whole
    session.add(unit)
    session.flush()
    record(session, user, "unit.create", unit, space.organisation_id, name=unit.name,
           capacity=unit.capacity, price_amount=unit.price_amount, price_per=unit.price_per)
    return unit


def update_unit(session: Session, user: User, unit: Unit, values: dict) -> Unit:
    org_id = unit.space.organisation_id
    require_member(user, org_id)
    price_changed = any(k in values and values[k] != getattr(unit, k) for k in PRICE_FIELDS)
    if price_changed:
        require_owner(user, org_id)
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
        if new_capacity != unit.capacity:
            record(session, user, "unit.capacity", unit, org_id, old=unit.capacity,
                   new=new_capacity)
        with Guard(session, [unit]):
            unit.kind = kind  # with its capacity: the database checks the two together
            unit.capacity = new_capacity
            for override in whole_overrides:
                override.capacity = 1
    for key in UNIT_FIELDS:
        if key in values and key != "capacity":
            setattr(unit, key, values[key])
    record(session, user, "unit.update", unit, org_id, name=unit.name)
    session.flush()
    return unit


def delete_unit(session: Session, user: User, unit: Unit) -> None:
    require_owner(user, unit.space.organisation_id)
    if session.scalar(sa.select(sa.func.count(Booking.id)).where(Booking.unit_id == unit.id)):
        raise DomainError("has_bookings")
    record(session, user, "unit.delete", unit, unit.space.organisation_id, name=unit.name)
    unit.space.units.remove(unit)
    session.flush()


# --------------------------------------------------------------------------------------
# Closures and capacity overrides


def _range(start: date, end: date) -> tuple[datetime, datetime]:
    return at(start, 0), at(end + timedelta(days=1), 0)


def add_closure(session: Session, user: User, units: Sequence[Unit], start: date, end: date,
                reason: str = "") -> list[Closure]:
    org_id = units[0].space.organisation_id
    require_member(user, org_id)
    added = []
    with Guard(session, units, *_range(start, end)):
        for unit in units:
            closure = Closure(unit_id=unit.id, start_date=start, end_date=end, reason=reason)
            session.add(closure)
            added.append(closure)
    for closure in added:
        record(session, user, "closure.add", closure, org_id, unit_id=closure.unit_id,
               start=start.isoformat(), end=end.isoformat(), reason=reason)
    session.flush()
    return added


def delete_closure(session: Session, user: User, closure: Closure) -> None:
    org_id = closure.unit.space.organisation_id
    require_member(user, org_id)
    # Reopening never takes a seat away: no guard needed.
    record(session, user, "closure.delete", closure, org_id, unit_id=closure.unit_id,
           start=closure.start_date.isoformat(), end=closure.end_date.isoformat())
    session.delete(closure)
    session.flush()


def set_override(session: Session, user: User, units: Sequence[Unit], start: date, end: date,
                 capacity: int, reason: str = "") -> list[CapacityOverride]:
    """Seats on each date of [start, end] (inclusive), replacing an earlier override.
    A room or a house is taken whole: its seats that day are 0 (closed) or 1."""
    org_id = units[0].space.organisation_id
    require_member(user, org_id)
    if capacity > 1 and any(u.kind != UnitKind.DESK for u in units):
        raise DomainError("whole_unit_capacity", field="capacity")
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    existing = {
        (o.unit_id, o.day): o for o in session.scalars(sa.select(CapacityOverride).where(
            CapacityOverride.unit_id.in_([u.id for u in units]),
            CapacityOverride.day.between(start, end)))
    }
    saved = []
    with Guard(session, units, *_range(start, end)):
        for unit in units:
            for day in days:
                row = existing.get((unit.id, day))
                if row is None:
                    row = CapacityOverride(unit_id=unit.id, day=day, capacity=capacity,
                                           reason=reason)
                    session.add(row)
                else:
                    row.capacity, row.reason = capacity, reason
                saved.append(row)
    for unit in units:
        record(session, user, "override.set", unit, org_id, start=start.isoformat(),
               end=end.isoformat(), capacity=capacity, reason=reason)
    session.flush()
    return saved


def delete_override(session: Session, user: User, override: CapacityOverride) -> None:
    org_id = override.unit.space.organisation_id
    require_member(user, org_id)
    # An override may have added seats: going back to the unit's capacity is checked too.
    with Guard(session, [override.unit], *_range(override.day, override.day)):
        session.delete(override)
    record(session, user, "override.delete", override.unit, org_id, day=override.day.isoformat(),
           capacity=override.capacity)
    session.flush()


# --------------------------------------------------------------------------------------
# Month view, day list, CSV


@dataclass(frozen=True)
class DayCell:
    day: date
    capacity: int  # seats that day (the override, or the unit's capacity)
    booked: int  # most seats held at one instant of the day's open hours
    free: int  # fewest seats free during the day's open hours
    bookings: int  # bookings that touch the day
    state: str  # closed | full | few | free


def month_days(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def month_view(session: Session, unit: Unit, year: int, month: int) -> list[DayCell]:
    first, last = month_days(year, month)
    start, end = _range(first, last)
    data = availability.load(session, [unit], start, end)[unit.id]
    line = availability.timelines(session, [unit], start, end)[unit.id]
    cells = []
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        d0, d1 = _range(day, day)
        touching = [b for b in data.bookings if b.starts_at < d1 and b.ends_at > d0]
        capacity = data.overrides.get(day, unit.capacity)
        window = regular_window(unit, day)
        closed = window is None or any(c.start_date <= day <= c.end_date for c in data.closures)
        if closed:
            cells.append(DayCell(day, capacity, 0, 0, len(touching), "closed"))
            continue
        pieces = [p for p in line.pieces if p.start < window[1] and p.end > window[0]]
        lowest = min((p.physical for p in pieces), default=capacity)
        free = max(lowest, 0)
        booked = capacity - lowest
        if free == 0:
            state = "full"
        elif free <= max(1, capacity // 5):
            state = "few"
        else:
            state = "free"
        cells.append(DayCell(day, capacity, booked, free, len(touching), state))
    return cells


def _bookings_between(space: Space, start: datetime, end: datetime) -> sa.Select:
    return (
        sa.select(Booking)
        .join(Unit, Booking.unit_id == Unit.id)
        .where(Unit.space_id == space.id, availability.overlaps(Booking.starts_at,
                                                                Booking.ends_at, start, end))
        .options(selectinload(Booking.unit), selectinload(Booking.company),
                 selectinload(Booking.user), selectinload(Booking.attendees),
                 selectinload(Booking.campaign_slot))
        .order_by(Booking.starts_at, Booking.id)
    )


def day_list(session: Session, space: Space, day: date) -> list[Booking]:
    """Every booking of the space's units that touches the Tokyo date, cancelled ones too
    (the front desk should know a cancelled guest will not come)."""
    return list(session.scalars(_bookings_between(space, *_range(day, day))))


CSV_HEADER = ("予約番号", "区画", "開始", "終了", "席数", "状態", "会社", "予約者", "メール",
              "参加者", "料金(円)", "自治体負担(円)", "キャンペーン", "予約日時", "キャンセル理由")


def export_csv(session: Session, space: Space, first: date, last: date,
               status_label=lambda s: s) -> str:
    """Bookings touching [first, last] as CSV text, with a BOM so that Excel reads UTF-8,
    every text cell guarded against formula injection (services/csvexport.py)."""
    fmt = "%Y-%m-%d %H:%M"
    rows = []
    for b in session.scalars(_bookings_between(space, *_range(first, last))):
        slot = b.campaign_slot
        rows.append((
            b.reference, b.unit.name, b.starts_at.astimezone(TOKYO).strftime(fmt),
            b.ends_at.astimezone(TOKYO).strftime(fmt), b.seats, status_label(b.status),
            b.company.name if b.company else "", b.user.name if b.user else "",
            b.user.email if b.user else "", " ".join(a.email for a in b.attendees),
            b.price_amount, b.subsidy_amount, slot.campaign.name if slot else "",
            b.created_at.astimezone(TOKYO).strftime(fmt), b.cancel_reason,
        ))
    return csv_text(CSV_HEADER, rows)


# --------------------------------------------------------------------------------------
# The space's calendar feed and the bookings themselves


def new_calendar_secret(session: Session, user: User, space: Space) -> str:
    """A new secret feed address; the old one stops working at once."""
    from booking.services import calendars

    require_member(user, space.organisation_id)
    secret = calendars.renew_secret(space)
    record(session, user, "space.calendar_secret", space, space.organisation_id)
    session.flush()
    return secret


def revoke_calendar_secret(session: Session, user: User, space: Space) -> None:
    from booking.services import calendars

    require_member(user, space.organisation_id)
    calendars.revoke_secret(space)
    record(session, user, "space.calendar_revoke", space, space.organisation_id)
    session.flush()


def cancel_booking(session: Session, user: User, booking: Booking, reason: str) -> None:
    """Cancel on the customer's behalf: the reservations service notifies them."""
    require_member(user, booking.unit.space.organisation_id)
    from booking.services import reservations

    reservations.cancel(session, booking, user, reason=reason)


def check_in(session: Session, user: User, booking: Booking) -> None:
    require_member(user, booking.unit.space.organisation_id)
    from booking.services import reservations

    reservations.check_in(session, booking, user)


def mark_no_show(session: Session, user: User, booking: Booking) -> None:
    require_member(user, booking.unit.space.organisation_id)
    from booking.services import reservations

    reservations.mark_no_show(session, booking, user)


def bookings_status_counts(bookings: Iterable[Booking]) -> dict[str, int]:
    counts: dict[str, int] = {s.value: 0 for s in BookingStatus}
    for b in bookings:
        counts[b.status.value] += b.seats
    return counts
