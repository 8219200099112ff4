"""Extras lent with a booking through a campaign slot (pocket Wi-Fi, projector), limited in
number: the municipality's management of them, and how many are free when.

Management asks booking.services.access itself (through campaign_management); it flushes
and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking import clock
from booking.models import BookingExtra, Campaign, CampaignExtra, User
from booking.services import access
from booking.services.audit import record
from booking.services.availability import at
from booking.services.campaign_management import require_part_of
from booking.services.campaigns import extras_available, extras_held
from booking.services.errors import DomainError


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
            raise DomainError("slot_has_bookings", field="quantity")
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
