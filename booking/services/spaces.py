"""What the public may see of spaces, and what campaigns offer in them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from booking.models import CampaignSlot, Space, Unit

FEATURED = 12  # spaces on the home page


def public_spaces() -> sa.Select:
    """Public spaces (Space.is_public), with hours and units loaded."""
    return (
        sa.select(Space)
        .where(Space.is_public)
        .options(
            selectinload(Space.opening_hours),
            selectinload(Space.units),
            selectinload(Space.photos),
        )
    )


def featured(session: Session) -> list[Space]:
    """The spaces the home page shows: public ones, by prefecture."""
    return list(session.scalars(
        public_spaces().order_by(Space.prefecture_code, Space.id).limit(FEATURED)))


def public_space(session: Session, *, slug: str | None = None,
                 space_id: int | None = None) -> Space | None:
    """A public space by its slug or its id; None when there is none (or it is not public)."""
    query = public_spaces()
    query = query.where(Space.slug == slug) if slug is not None else query.where(Space.id == space_id)
    return session.scalar(query)


def public_unit(session: Session, unit_id: int) -> Unit | None:
    """A unit of a public space; None otherwise."""
    unit = session.get(Unit, unit_id)
    if unit is None or public_space(session, space_id=unit.space_id) is None:
        return None
    return unit


def campaign_offers(session: Session, space: Space) -> list[CampaignSlot]:
    """The slots offered (CampaignSlot.is_offered) on this space's units."""
    return list(session.scalars(
        sa.select(CampaignSlot)
        .join(Unit, CampaignSlot.unit_id == Unit.id)
        .where(Unit.space_id == space.id, CampaignSlot.is_offered)
        .options(selectinload(CampaignSlot.campaign), selectinload(CampaignSlot.unit))
        .order_by(CampaignSlot.start_date.desc(), CampaignSlot.id)
    ))
