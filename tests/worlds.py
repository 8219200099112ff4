"""Helpers the booking tests share: a day ahead in Tokyo, and the small world they book in."""

from __future__ import annotations

from datetime import date, timedelta

from booking import clock
from booking.extensions import db
from booking.models import OrgKind
from booking.services import tokens
from tests.factories import Factory


def future_day(days: int = 10) -> date:
    """Tokyo's date `days` from today: by default far enough ahead for any lead time."""
    return clock.today() + timedelta(days=days)


def world(make: Factory, *, capacity: int = 10, price: int = 1000, owner: bool = False,
          token: bool = False, **space) -> dict:
    """A company with its booker, and an operator's space with one desk unit (per day).

    Keys: company, booker, org (the operator), space, desks; with owner=True also owner
    (the operator's owner), with token=True also headers (the booker's API bearer token).
    Other keywords go to make.space (hours=..., name=...).
    """
    company = make.company(name="デモ商事")
    booker = make.user("booker@example.jp", organisation=company, name="予約 太郎")
    org = make.organisation(OrgKind.OPERATOR, name="エニシア静岡")
    space = make.space(org, **{"name": "テレワーク静岡", **space})
    desks = make.unit(space, name="フリーデスク", capacity=capacity, price_amount=price)
    out = {"company": company, "booker": booker, "org": org, "space": space, "desks": desks}
    if owner:
        out["owner"] = make.user(organisation=org, role="owner", name="運営 太郎")
    if token:
        secret, _ = tokens.issue(db.session, booker, 1)
        db.session.commit()
        out["headers"] = {"Authorization": f"Bearer {secret}"}
    return out
