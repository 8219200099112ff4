"""The terms a municipality's campaign and a national campaign share: a period in order,
core days inside it, and a slug no other campaign of the same kind uses."""

from __future__ import annotations

from datetime import date
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.models import Campaign, NationalCampaign
from booking.services.errors import DomainError


class Terms(Protocol):
    """What both kinds' data carry (campaign_management.CampaignData, NationalData)."""

    slug: str
    name: str
    name_en: str
    description: str
    description_en: str
    starts_on: date
    ends_on: date
    core_days: list[date]
    published: bool


def apply(target: Campaign | NationalCampaign, data: Terms) -> None:
    """Write the checked terms onto the campaign (texts trimmed, core days once, sorted)."""
    target.slug = data.slug
    target.name = data.name.strip()
    target.name_en = data.name_en.strip()
    target.description = data.description.strip()
    target.description_en = data.description_en.strip()
    target.starts_on = data.starts_on
    target.ends_on = data.ends_on
    target.core_days = sorted(d.isoformat() for d in set(data.core_days))
    target.published = data.published


def check(session: Session, kind: type[Campaign] | type[NationalCampaign], *, slug: str,
          starts_on: date, ends_on: date, core_days: list[date], current_id: int | None
          ) -> None:
    """Refuse, naming the field: the last day before the first, a core day outside the
    period, a slug taken by another row of `kind` (`current_id`: the one being edited)."""
    if starts_on > ends_on:
        raise DomainError("bad_range", field="ends_on")
    if any(not starts_on <= day <= ends_on for day in core_days):
        raise DomainError("campaign_core_day_outside", field="core_days")
    taken = session.scalar(sa.select(kind.id).where(kind.slug == slug))
    if taken is not None and taken != current_id:
        raise DomainError("campaign_slug_taken", field="slug")
