"""Koto's real members (issue 19): the demo's members-only desk, 会員デスク of テレワーク
オフィス「Koto」(駒ヶ根市), gets a member list, so that its members book it directly while
everyone else books it only through a campaign slot (Telework Days).

- a member company: 大手町コンサルティング株式会社 of the history (booking/seeds/history.py), whose
  people log in with the demo password (hayashi@otemachi-consulting.example.jp, its admin);
- a member by e-mail: 石川 翔 of 港デジタル株式会社 (ishikawa@minato-digital.example.jp):
  that person, not the rest of the company.

Loaded after the history (the companies exist then); idempotent (demo.get_or_add).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.models import Organisation, Space, SpaceMember
from booking.seeds import demo

SPACE = "koto-komagane"
MEMBER_COMPANY = "大手町コンサルティング株式会社"
MEMBER_COMPANY_LOGIN = "hayashi@otemachi-consulting.example.jp"
MEMBER_PERSON = "ishikawa@minato-digital.example.jp"


def load(session: Session) -> dict[str, int]:
    """Adds Koto's members; how many rows it created."""
    space = session.scalar(sa.select(Space).where(Space.slug == SPACE))
    company = session.scalar(sa.select(Organisation).where(Organisation.name == MEMBER_COMPANY))
    if space is None or company is None:
        return {"space_members": 0}
    made = 0
    _row, new = demo.get_or_add(session, SpaceMember,
                                {"space_id": space.id, "company_id": company.id},
                                note="101")  # a membership number (the note is the operator's)
    made += new
    _row, new = demo.get_or_add(session, SpaceMember, {"space_id": space.id, "email": MEMBER_PERSON},
                                note="102")
    made += new
    return {"space_members": made}
