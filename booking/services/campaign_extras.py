"""Extras lent with a booking through a campaign slot (pocket Wi-Fi, projector), limited in
number: their stock (how many are free when), reserving them with a booking, and the
municipality's management of them.

The booking path calls `reserve_extras` / `recheck_extras` inside the booking transaction.
Management asks booking.services.access itself (through campaign_management). Everything
here flushes and never commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from booking import clock
from booking.models import HOLDING_STATUSES, Booking, BookingExtra, Campaign, CampaignExtra, User
from booking.services import access
from booking.services.audit import record
from booking.services.availability import at, overlaps
from booking.services.campaign_management import require_part_of
from booking.services.errors import DomainError

# ---------------------------------------------------------------------------------------
# Reserving extras with a booking, and their stock.


def reserve_extras(session: Session, booking: Booking, extras: Mapping[int, int]) -> list[BookingExtra]:
    """Sets the extras the booking holds to `extras` ({extra id: quantity}; 0 removes).

    Call it inside the booking transaction, after the booking row is flushed (it needs
    the booking's id, time range and campaign slot); it locks the extras' rows in id
    order, recounts what other holding bookings hold at every instant of the booking,
    and raises DomainError (nothing written) when an extra is not the slot's campaign's
    (extra_not_offered, 422), more than one booking may take (extra_too_many, 422) or no
    longer there (extra_sold_out, 409, with `available`). Calling it again with the
    booking's current extras re-checks them after a change of dates."""
    wanted = {int(k): int(v) for k, v in extras.items() if int(v) != 0}
    if any(q < 0 for q in wanted.values()):
        raise DomainError("extra_too_many", variant="negative")
    current = {
        line.extra_id: line
        for line in session.scalars(sa.select(BookingExtra).where(BookingExtra.booking_id == booking.id))
    }
    if wanted:
        slot = booking.campaign_slot
        if slot is None:
            raise DomainError("extra_not_offered")
        # Lock what we make less available, in a fixed order (no deadlock), then recount.
        rows = list(session.scalars(
            sa.select(CampaignExtra).where(CampaignExtra.id.in_(sorted(wanted)))
            .order_by(CampaignExtra.id).with_for_update()
        ))
        found = {e.id: e for e in rows}
        for extra_id, quantity in sorted(wanted.items()):
            extra = found.get(extra_id)
            if extra is None or extra.campaign_id != slot.campaign_id:
                raise DomainError("extra_not_offered", extra=extra_id)
            if quantity > extra.max_per_booking:
                raise DomainError("extra_too_many", extra=extra_id, limit=extra.max_per_booking)
        # A guarded write on each row: on SQLite it takes the write lock if the caller's
        # transaction has not yet; on PostgreSQL the rows are already locked FOR UPDATE.
        session.execute(
            sa.update(CampaignExtra).where(CampaignExtra.id.in_(sorted(wanted)))
            .values(lock_version=CampaignExtra.lock_version + 1)
            .execution_options(synchronize_session=False)
        )
        held = extras_held(session, sorted(wanted), booking.starts_at, booking.ends_at,
                           exclude_booking_id=booking.id)
        for extra_id, quantity in sorted(wanted.items()):
            available = found[extra_id].quantity - held.get(extra_id, 0)
            if quantity > available:
                raise DomainError("extra_sold_out", extra=extra_id, available=max(available, 0))
    lines = []
    for extra_id, held_line in current.items():
        if extra_id not in wanted:
            session.delete(held_line)
    for extra_id, quantity in sorted(wanted.items()):
        line = current.get(extra_id)
        if line is None:
            line = BookingExtra(booking_id=booking.id, extra_id=extra_id, quantity=quantity)
            session.add(line)
        else:
            line.quantity = quantity
        lines.append(line)
    session.flush()
    return lines


def extras_held(session: Session, extra_ids: list[int], start: datetime, end: datetime, *,
                exclude_booking_id: int | None = None) -> dict[int, int]:
    """The most of each extra held by holding bookings at any instant of [start, end)."""
    if not extra_ids:
        return {}
    query = (
        sa.select(BookingExtra.extra_id, BookingExtra.quantity, Booking.starts_at, Booking.ends_at)
        .join(Booking, BookingExtra.booking_id == Booking.id)
        .where(
            BookingExtra.extra_id.in_(extra_ids),
            Booking.status.in_(HOLDING_STATUSES),
            overlaps(Booking.starts_at, Booking.ends_at, start, end),
        )
    )
    if exclude_booking_id is not None:
        query = query.where(Booking.id != exclude_booking_id)
    events: dict[int, list[tuple[datetime, int]]] = {}
    for extra_id, quantity, b_start, b_end in session.execute(query):
        events.setdefault(extra_id, []).extend(
            [(max(b_start, start), quantity), (min(b_end, end), -quantity)]
        )
    peaks: dict[int, int] = {}
    for extra_id, changes in events.items():
        level = peak = 0
        # Ends sort before starts at the same instant: [start, end) ranges touch, not overlap.
        for _when, change in sorted(changes, key=lambda c: (c[0], c[1])):
            level += change
            peak = max(peak, level)
        peaks[extra_id] = peak
    return peaks


def campaign_extras(session: Session, campaign: Campaign) -> list[CampaignExtra]:
    """The extras the campaign lends, oldest first (the order the booking form shows)."""
    return list(session.scalars(
        sa.select(CampaignExtra).where(CampaignExtra.campaign_id == campaign.id)
        .order_by(CampaignExtra.id)
    ))


def extras_available(session: Session, campaign: Campaign, start: datetime,
                     end: datetime) -> list[tuple[CampaignExtra, int]]:
    """Each extra of the campaign with how many are free during the whole of [start, end)."""
    extras = campaign_extras(session, campaign)
    held = extras_held(session, [e.id for e in extras], start, end)
    return [(e, max(e.quantity - held.get(e.id, 0), 0)) for e in extras]


def booking_extras(session: Session, booking: Booking) -> list[BookingExtra]:
    """The extras a booking holds (for receipts and the API)."""
    return list(session.scalars(
        sa.select(BookingExtra).where(BookingExtra.booking_id == booking.id)
        .options(selectinload(BookingExtra.extra)).order_by(BookingExtra.extra_id)
    ))


def recheck_extras(session: Session, booking: Booking) -> None:
    """After a change of a booking's times or seats: its extras must still be there."""
    current = {line.extra_id: line.quantity for line in session.scalars(
        sa.select(BookingExtra).where(BookingExtra.booking_id == booking.id))}
    if current:
        reserve_extras(session, booking, current)




def extras_during(session: Session, campaign: Campaign) -> list[tuple[CampaignExtra, int]]:
    """Each extra of the campaign with how many are free during its whole period."""
    return extras_available(session, campaign, at(campaign.starts_on, 0),
                            at(campaign.ends_on, 1440))


# ---------------------------------------------------------------------------------------
# Management by the municipality's members.


@dataclass
class ExtraData:
    name: str
    name_en: str
    description: str
    description_en: str
    quantity: int
    max_per_booking: int


def save_extra(session: Session, user: User, campaign: Campaign, data: ExtraData,
               extra: CampaignExtra | None = None) -> CampaignExtra:
    """Creates (extra None) or updates an extra of `campaign`, for one of its municipality's
    members."""
    require_part_of(user, campaign, extra)
    clash = session.scalar(sa.select(CampaignExtra.id).where(
        CampaignExtra.campaign_id == campaign.id, CampaignExtra.name == data.name.strip()
    ))
    if clash is not None and (extra is None or clash != extra.id):
        raise DomainError("extra_name_taken", field="name")
    if extra is not None:
        # Fewer than are lent out at some instant ahead would strand a booking.
        held = extras_held(session, [extra.id], clock.now(), datetime(9000, 1, 1, tzinfo=UTC))
        if data.quantity < held.get(extra.id, 0):
            raise DomainError("extra_quantity_lent", field="quantity", lent=held[extra.id])
    new = extra is None
    if extra is None:
        extra = CampaignExtra(campaign_id=campaign.id)
        session.add(extra)
    extra.name = data.name.strip()
    extra.name_en = data.name_en.strip()
    extra.description = data.description.strip()
    extra.description_en = data.description_en.strip()
    extra.quantity = data.quantity
    extra.max_per_booking = data.max_per_booking
    session.flush()
    record(session, user, "campaign_extra.create" if new else "campaign_extra.update", extra,
           campaign.organisation_id, quantity=data.quantity)
    return extra


def delete_extra(session: Session, user: User, extra: CampaignExtra) -> None:
    access.require(user, "manage", extra)
    used = session.scalar(sa.select(sa.func.count()).select_from(BookingExtra)
                          .where(BookingExtra.extra_id == extra.id))
    if used:
        raise DomainError("extra_in_use")
    record(session, user, "campaign_extra.delete", extra, extra.campaign.organisation_id)
    session.delete(extra)
    session.flush()
