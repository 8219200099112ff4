"""What the public may see of spaces, and what campaigns offer in them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from booking.models import Campaign, CampaignSlot, Organisation, Space, Unit


def public_spaces() -> sa.Select:
    """Published spaces of approved organisations, with hours and units loaded."""
    return (
        sa.select(Space)
        .join(Organisation, Space.organisation_id == Organisation.id)
        .where(Space.published.is_(True), Organisation.approved_at.is_not(None))
        .options(
            selectinload(Space.opening_hours),
            selectinload(Space.units),
            selectinload(Space.photos),
        )
    )


def campaign_offers(session: Session, space: Space) -> list[CampaignSlot]:
    """Slots of published campaigns of approved municipalities on this space's units."""
    return list(session.scalars(
        sa.select(CampaignSlot)
        .join(Unit, CampaignSlot.unit_id == Unit.id)
        .join(Campaign, CampaignSlot.campaign_id == Campaign.id)
        .join(Organisation, Campaign.organisation_id == Organisation.id)
        .where(
            Unit.space_id == space.id,
            Campaign.published.is_(True),
            CampaignSlot.operator_consent.is_(True),
            Organisation.approved_at.is_not(None),
        )
        .options(selectinload(CampaignSlot.campaign), selectinload(CampaignSlot.unit))
        .order_by(CampaignSlot.start_date.desc(), CampaignSlot.id)
    ))
