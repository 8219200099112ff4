"""Closures (days a unit does not open) and capacity overrides (a unit's seats on one
day), each refused when it would leave an existing booking without a seat
(space_admin.Guard). Days are Tokyo dates, both ends included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.models import CapacityOverride, Closure, Space, Unit, UnitKind, User
from booking.services import access, waitlist
from booking.services.audit import record
from booking.services.availability import at
from booking.services.errors import DomainError
from booking.services.space_admin import Guard


def units_of(space: Space, unit_ids: Iterable[int]) -> list[Unit]:
    """These units of the space; "not found" when one of them is not the space's."""
    wanted = set(unit_ids)
    units = [u for u in space.units if u.id in wanted]
    if len(units) != len(wanted):
        raise DomainError("not_found")
    return units


def closures_ahead(session: Session, space: Space, today: date) -> list[Closure]:
    """The closures of the space's units that have not ended by `today`."""
    return list(session.scalars(
        sa.select(Closure).join(Unit).where(Unit.space_id == space.id, Closure.end_date >= today)
        .order_by(Closure.start_date, Closure.id)))


def overrides_ahead(session: Session, space: Space, today: date) -> list[CapacityOverride]:
    """The capacity overrides of the space's units from `today` on."""
    return list(session.scalars(
        sa.select(CapacityOverride).join(Unit)
        .where(Unit.space_id == space.id, CapacityOverride.day >= today)
        .order_by(CapacityOverride.day, CapacityOverride.unit_id)))


def _of_space(session: Session, user: User, model: type, object_id: int, space: Space):
    """A closure or override of one of `space`'s units (a space's URL with another space's
    closure is "not found" too)."""
    found = session.get(model, object_id)
    if found is None or found.unit.space_id != space.id:
        raise DomainError("not_found")
    access.require(user, "manage", found.unit)
    return found


def get_closure(session: Session, user: User, space: Space, closure_id: int) -> Closure:
    return _of_space(session, user, Closure, closure_id, space)


def get_override(session: Session, user: User, space: Space,
                 override_id: int) -> CapacityOverride:
    return _of_space(session, user, CapacityOverride, override_id, space)


def _require(user: User, units: Sequence[Unit]) -> None:
    if not units:
        raise DomainError("not_found")
    for unit in units:
        access.require(user, "manage", unit)


def add_closure(session: Session, user: User, units: Sequence[Unit], start: date, end: date,
                reason: str = "") -> list[Closure]:
    _require(user, units)
    added = []
    with Guard(session, units, at(start, 0), at(end, 1440)):
        for unit in units:
            closure = Closure(unit_id=unit.id, start_date=start, end_date=end, reason=reason)
            session.add(closure)
            added.append(closure)
    for unit, closure in zip(units, added, strict=True):
        record(session, user, "closure.add", closure, unit.space.organisation_id,
               unit_id=unit.id, start=start.isoformat(), end=end.isoformat(), reason=reason)
    session.flush()
    return added


def delete_closure(session: Session, user: User, closure: Closure) -> None:
    access.require(user, "manage", closure.unit)
    # Reopening never takes a seat away: no guard needed.
    record(session, user, "closure.delete", closure, closure.unit.space.organisation_id,
           unit_id=closure.unit_id, start=closure.start_date.isoformat(),
           end=closure.end_date.isoformat())
    session.delete(closure)
    session.flush()
    # Days open again: the waitlist is offered their seats.
    waitlist.offer_freed(session, closure.unit_id, at(closure.start_date, 0),
                         at(closure.end_date, 1440))


def set_override(session: Session, user: User, units: Sequence[Unit], start: date, end: date,
                 capacity: int, reason: str = "") -> list[CapacityOverride]:
    """Seats on each date of [start, end] (inclusive), replacing an earlier override.
    A room or a house is taken whole: its seats that day are 0 (closed) or 1."""
    _require(user, units)
    if capacity > 1 and any(u.kind != UnitKind.DESK for u in units):
        raise DomainError("whole_unit_capacity", field="capacity")
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    existing = {
        (o.unit_id, o.day): o for o in session.scalars(sa.select(CapacityOverride).where(
            CapacityOverride.unit_id.in_([u.id for u in units]),
            CapacityOverride.day.between(start, end)))
    }
    saved = []
    with Guard(session, units, at(start, 0), at(end, 1440)):
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
        record(session, user, "override.set", unit, unit.space.organisation_id,
               start=start.isoformat(), end=end.isoformat(), capacity=capacity, reason=reason)
    session.flush()
    for unit in units:  # more seats on those days, maybe: the waitlist is offered them
        waitlist.offer_freed(session, unit.id, at(start, 0), at(end, 1440))
    return saved


def delete_override(session: Session, user: User, override: CapacityOverride) -> None:
    unit = override.unit
    access.require(user, "manage", unit)
    # An override may have added seats: going back to the unit's capacity is checked too.
    with Guard(session, [unit], at(override.day, 0), at(override.day, 1440)):
        session.delete(override)
    record(session, user, "override.delete", unit, unit.space.organisation_id,
           day=override.day.isoformat(), capacity=override.capacity)
    session.flush()
    # Back to the unit's capacity, maybe more seats than the override gave.
    waitlist.offer_freed(session, unit.id, at(override.day, 0), at(override.day, 1440))
