"""Campaigns of municipalities (Telework Days) and the slots they offer."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_method, hybrid_property
from sqlalchemy.orm import Mapped, aliased, mapped_column, relationship

from booking import clock
from booking.models.base import Base, enum_type
from booking.models.organisations import Organisation
from booking.models.spaces import Unit


class Priced(Protocol):
    """A unit's own price: a model Unit, or a unit of the search catalogue."""

    @property  # read-only, so that the catalogue's frozen units fit
    def price_amount(self) -> int: ...


class Eligibility(enum.StrEnum):
    ANY_COMPANY = "any"
    OUTSIDE_PREFECTURE = "outside_prefecture"  # trial programmes aimed at Tokyo firms


class NationalCampaign(Base):
    """A nationwide campaign (Telework Days 2019, 2027…): its period, core days and the
    categories organisations take part in; municipalities' campaigns are its local
    programmes (Campaign.national_campaign_id)."""

    __tablename__ = "national_campaigns"
    __table_args__ = (
        sa.CheckConstraint("starts_on <= ends_on", name="dates_ordered"),
        sa.CheckConstraint("length(name) > 0", name="name_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    description_en: Mapped[str] = mapped_column(sa.Text, default="")
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    core_days: Mapped[list[str]] = mapped_column(sa.JSON, default=list)  # ISO dates
    # The participation categories and their conditions, in order:
    # [{"code": "implementing", "name": "実施団体", "name_en": …, "conditions": …,
    #   "conditions_en": …}, …] (seed-facts.md: 実施団体, 特別協力団体, 応援団体).
    categories: Mapped[list[dict]] = mapped_column(sa.JSON, default=list)
    published: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    programmes: Mapped[list[Campaign]] = relationship(back_populates="national_campaign",
                                                      order_by="Campaign.starts_on")

    def display_name(self, locale: str = "ja") -> str:
        return self.name_en if locale == "en" and self.name_en else self.name


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        sa.CheckConstraint("starts_on <= ends_on", name="dates_ordered"),
        sa.CheckConstraint("length(name) > 0", name="name_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    description_en: Mapped[str] = mapped_column(sa.Text, default="")
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    core_days: Mapped[list[str]] = mapped_column(sa.JSON, default=list)  # ISO dates
    published: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # The national campaign this is a local programme of (None: a campaign of its own).
    national_campaign_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("national_campaigns.id", ondelete="SET NULL"), index=True
    )

    organisation: Mapped[Organisation] = relationship()
    national_campaign: Mapped[NationalCampaign | None] = relationship(
        back_populates="programmes")
    slots: Mapped[list[CampaignSlot]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="CampaignSlot.start_date"
    )

    @hybrid_property
    def is_public(self) -> bool:
        """Published, by a municipality a site admin approved. In SQL too,
        `.where(Campaign.is_public)` (a correlated EXISTS on an alias of the organisation)."""
        return self.published and self.organisation.is_approved

    @is_public.inplace.expression
    @classmethod
    def _is_public_sql(cls) -> sa.ColumnElement[bool]:
        municipality = aliased(Organisation)
        return sa.and_(cls.published.is_(True),
                       sa.select(municipality.id).where(municipality.id == cls.organisation_id,
                                                        municipality.is_approved).exists())

    def display_name(self, locale: str = "ja") -> str:
        return self.name_en if locale == "en" and self.name_en else self.name

    @hybrid_method
    def ended(self, today: date | None = None) -> bool:
        """Its last day is before `today` (Tokyo's, by default): a campaign of the past."""
        return self.ends_on < (today or clock.today())


class CampaignSlot(Base):
    """Seats of a unit offered by a campaign on a date range within a daily window."""

    __tablename__ = "campaign_slots"
    __table_args__ = (
        sa.CheckConstraint("start_date <= end_date", name="dates_ordered"),
        sa.CheckConstraint(
            "daily_start_min >= 0 AND daily_end_min <= 1440 AND daily_start_min < daily_end_min",
            name="window",
        ),
        sa.CheckConstraint("seats >= 0", name="seats_non_negative"),
        sa.CheckConstraint("price_amount IS NULL OR price_amount >= 0", name="price_non_negative"),
        sa.CheckConstraint("subsidy_cap IS NULL OR subsidy_cap >= 0", name="subsidy_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id", ondelete="CASCADE"), index=True)
    start_date: Mapped[date]
    end_date: Mapped[date]
    daily_start_min: Mapped[int]
    daily_end_min: Mapped[int]
    seats: Mapped[int]
    # None: the unit's own price; 0: free.
    price_amount: Mapped[int | None]
    # The municipality pays up to this many yen per booking of the price the company owes.
    subsidy_cap: Mapped[int | None]
    max_seats_per_company_per_day: Mapped[int | None]
    max_bookings_per_company: Mapped[int | None]
    eligibility: Mapped[Eligibility] = mapped_column(
        enum_type(Eligibility, 20), default=Eligibility.ANY_COMPANY
    )
    # A slot on an operator's space needs that operator's consent before it is offered.
    operator_consent: Mapped[bool] = mapped_column(default=True)
    # The operator's answer to a municipality's proposal: when, and why when declined
    # (pending: operator_consent False and no answer yet).
    consent_answered_at: Mapped[datetime | None]
    consent_reason: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")

    campaign: Mapped[Campaign] = relationship(back_populates="slots")
    unit: Mapped[Unit] = relationship()

    @property
    def is_free(self) -> bool:
        return self.price_amount == 0

    def price_for(self, unit: Priced | None = None) -> int:
        """Yen per price unit (day, hour or night) of a booking through this slot: the
        slot's price, or the unit's own when the slot keeps it (price_amount None).
        `unit` is the slot's unit (a model Unit or a catalogue unit; slot.unit if not
        given)."""
        if self.price_amount is not None:
            return self.price_amount
        return (self.unit if unit is None else unit).price_amount

    @hybrid_property
    def is_offered(self) -> bool:
        """Offered to companies: the operator of its space consented (a municipality's own
        space needs no consent: it is given when the slot is saved) and its campaign is
        public (published, municipality approved). Whether the space itself is public is
        Space.is_public, and which dates it offers `covers`. In SQL too,
        `.where(CampaignSlot.is_offered)` (a correlated EXISTS on the campaign)."""
        return self.operator_consent and self.campaign.is_public

    @is_offered.inplace.expression
    @classmethod
    def _is_offered_sql(cls) -> sa.ColumnElement[bool]:
        campaign = aliased(Campaign)
        return sa.and_(cls.operator_consent.is_(True),
                       sa.select(campaign.id).where(campaign.id == cls.campaign_id,
                                                    campaign.is_public).exists())

    @hybrid_method
    def ended(self, today: date | None = None) -> bool:
        """History: its last day is before `today` (Tokyo's, by default). An ended slot is
        shown as what was offered (its dates, 「終了」) and never as bookable; one partly
        past is bookable from `bookable_from`. The one rule for the campaign, space,
        search and booking pages; in SQL too, `.where(~CampaignSlot.ended(today))`."""
        return self.end_date < (today or clock.today())

    def bookable_from(self, today: date | None = None) -> date | None:
        """The first of its days that can still be booked (today or later), or None when
        it has ended. (Today itself only while its window has not closed: the booking
        says so, reservations.day_period.)"""
        today = today or clock.today()
        return None if self.ended(today) else max(self.start_date, today)

    @hybrid_method
    def covers(self, first: date, last: date) -> bool:
        """Its dates include every day from `first` to `last` (inclusive)."""
        return self.start_date <= first and last <= self.end_date

    # hybrid_method.expression changes the hybrid in place already (its `inplace` is only
    # for symmetry with hybrid_property, and mypy misreads it).
    @covers.expression
    @classmethod
    def _covers_sql(cls, first: date, last: date) -> sa.ColumnElement[bool]:
        return sa.and_(cls.start_date <= first, cls.end_date >= last)
