"""Test data with sensible defaults: make.space(), make.unit(), make.booking(), ..."""

from __future__ import annotations

import itertools
import secrets
from datetime import date, datetime

from sqlalchemy.orm import Session

from booking import clock
from booking.models import (
    Booking,
    BookingStatus,
    Campaign,
    CampaignSlot,
    OpeningHours,
    Organisation,
    OrgKind,
    PricePer,
    Space,
    SpaceKind,
    Unit,
    UnitKind,
    User,
)
from booking.services import accounts

_seq = itertools.count(1)


class Factory:
    PASSWORD = "correct-horse-battery"

    def __init__(self, session: Session) -> None:
        self.session = session

    def _save(self, obj):
        self.session.add(obj)
        self.session.commit()
        return obj

    def user(self, email: str | None = None, *, organisation: Organisation | None = None,
             role: str = "owner", **kw) -> User:
        n = next(_seq)
        # Test users have verified their address (tests of verification pass False).
        user = accounts.create_user(self.session, email=email or f"user{n}@example.jp",
                                    password=kw.pop("password", self.PASSWORD),
                                    name=kw.pop("name", f"利用者{n}"),
                                    verified=kw.pop("verified", True), **kw)
        if organisation is not None:
            from booking.models import Membership, Role

            self.session.add(Membership(user_id=user.id, organisation_id=organisation.id,
                                        role=Role(role)))
        self.session.commit()
        return user

    def organisation(self, kind: OrgKind = OrgKind.OPERATOR, *, approved: bool = True,
                     **kw) -> Organisation:
        n = next(_seq)
        kw.setdefault("name", f"団体{n}")
        kw.setdefault("prefecture_code", 22)
        return self._save(Organisation(kind=kind, approved_at=clock.now() if approved else None,
                                       **kw))

    def company(self, **kw) -> Organisation:
        kw.setdefault("prefecture_code", 13)
        return self.organisation(OrgKind.COMPANY, **kw)

    def space(self, organisation: Organisation | None = None, *, hours=(range(7), 540, 1080),
              **kw) -> Space:
        organisation = organisation or self.organisation()
        n = next(_seq)
        kw.setdefault("slug", f"space-{n}-{secrets.token_hex(3)}")
        kw.setdefault("name", f"施設{n}")
        kw.setdefault("kind", SpaceKind.COWORKING)
        kw.setdefault("prefecture_code", 22)
        kw.setdefault("city", "静岡市葵区")
        kw.setdefault("address", "静岡市葵区御幸町")
        kw.setdefault("lat", 34.9738)
        kw.setdefault("lon", 138.3866)
        kw.setdefault("closed_on_holidays", False)
        space = Space(organisation_id=organisation.id, **kw)
        self.session.add(space)
        self.session.flush()
        days, opens, closes = hours
        for weekday in days:
            self.session.add(OpeningHours(space_id=space.id, weekday=weekday, opens_min=opens,
                                          closes_min=closes))
        self.session.commit()
        return space

    def unit(self, space: Space | None = None, **kw) -> Unit:
        space = space or self.space()
        kw.setdefault("name", f"区画{next(_seq)}")
        kw.setdefault("kind", UnitKind.DESK)
        kw.setdefault("capacity", 10)
        kw.setdefault("price_amount", 1000)
        kw.setdefault("price_per", PricePer.DAY)
        return self._save(Unit(space_id=space.id, **kw))

    def booking(self, unit: Unit, start: datetime, end: datetime, seats: int = 1, *,
                company: Organisation | None = None, **kw) -> Booking:
        kw.setdefault("status", BookingStatus.CONFIRMED)
        kw.setdefault("price_amount", 0)
        return self._save(Booking(
            reference=secrets.token_hex(5).upper(), unit_id=unit.id, starts_at=start,
            ends_at=end, seats=seats, company_id=company.id if company else None, **kw,
        ))

    def campaign(self, organisation: Organisation | None = None, **kw) -> Campaign:
        organisation = organisation or self.organisation(OrgKind.MUNICIPALITY)
        n = next(_seq)
        kw.setdefault("slug", f"campaign-{n}-{secrets.token_hex(3)}")
        kw.setdefault("name", f"キャンペーン{n}")
        kw.setdefault("starts_on", date(2027, 7, 22))
        kw.setdefault("ends_on", date(2027, 9, 6))
        kw.setdefault("published", True)
        return self._save(Campaign(organisation_id=organisation.id, **kw))

    def slot(self, campaign: Campaign, unit: Unit, **kw) -> CampaignSlot:
        kw.setdefault("start_date", campaign.starts_on)
        kw.setdefault("end_date", campaign.ends_on)
        kw.setdefault("daily_start_min", 540)
        kw.setdefault("daily_end_min", 1080)
        kw.setdefault("seats", 5)
        kw.setdefault("price_amount", 0)
        return self._save(CampaignSlot(campaign_id=campaign.id, unit_id=unit.id, **kw))
