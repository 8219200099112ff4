"""Members of a space: who books its members-only units directly (Koto's 会員デスク).

A member is a company (all its people) or one person by e-mail. Everyone else books a
members-only unit only through a campaign slot (reservations._check_availability)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.models import SpaceMember


def admits(session: Session, space_id: int, company_id: int | None, email: str | None) -> bool:
    """The company, or the person with this address, is on the space's member list."""
    who = []
    if company_id is not None:
        who.append(SpaceMember.company_id == company_id)
    if email:
        who.append(SpaceMember.email == email.lower())
    if not who:
        return False
    return session.scalar(
        sa.select(SpaceMember.id).where(SpaceMember.space_id == space_id, sa.or_(*who)).limit(1)
    ) is not None
