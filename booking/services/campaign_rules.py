"""The rules a booking through a campaign slot obeys, and who pays what.

The booking path calls these inside the booking transaction (which slot a booking goes
through is booking_requests.resolve_slot's to say): `check_rules` refuses a company the
slot excludes (outside-prefecture only, bookings per company, seats per company per day;
the days a booking touches are half-open), and `split_price` divides a booking's price
between the company and the municipality.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.models import (
    HOLDING_STATUSES,
    Booking,
    CampaignSlot,
    Eligibility,
    Organisation,
)
from booking.services.availability import overlaps, tokyo_days
from booking.services.errors import DomainError


def check_rules(session: Session, slot: CampaignSlot, company: Organisation, start: datetime,
                end: datetime, seats: int, *, exclude_booking_id: int | None = None) -> None:
    """Raises DomainError (403) naming the rule that excludes this company."""
    space = slot.unit.space
    if (slot.eligibility == Eligibility.OUTSIDE_PREFECTURE
            and company.prefecture_code == space.prefecture_code):
        raise DomainError("campaign_outside_prefecture")
    mine = sa.select(Booking).where(
        Booking.campaign_slot_id.in_(
            sa.select(CampaignSlot.id).where(CampaignSlot.campaign_id == slot.campaign_id)
        ),
        Booking.company_id == company.id,
        Booking.status.in_(HOLDING_STATUSES),
    )
    if exclude_booking_id is not None:
        mine = mine.where(Booking.id != exclude_booking_id)
    if slot.max_bookings_per_company is not None:
        count = session.scalar(sa.select(sa.func.count()).select_from(mine.subquery())) or 0
        if count >= slot.max_bookings_per_company:
            raise DomainError("campaign_bookings_per_company",
                              limit=slot.max_bookings_per_company)
    if slot.max_seats_per_company_per_day is not None:
        same_slot = list(session.scalars(mine.where(
            Booking.campaign_slot_id == slot.id,
            overlaps(Booking.starts_at, Booking.ends_at, start, end),
        )))
        for day in tokyo_days(start, end):
            # The days a booking touches: half-open, one rule (a booking that ends at
            # midnight does not touch the next day).
            taken = sum(b.seats for b in same_slot if day in tokyo_days(b.starts_at, b.ends_at))
            if taken + seats > slot.max_seats_per_company_per_day:
                raise DomainError("campaign_seats_per_day",
                                  limit=slot.max_seats_per_company_per_day)


def split_price(slot: CampaignSlot | None, full_price: int) -> tuple[int, int]:
    """(what the company pays, what the municipality pays) for a booking costing full_price
    at the slot's price (or the unit's, when the slot keeps it)."""
    if slot is None or slot.subsidy_cap is None:
        return full_price, 0
    subsidy = min(full_price, slot.subsidy_cap)
    return full_price - subsidy, subsidy
