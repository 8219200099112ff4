"""What a campaign offers besides seats (extras lent for the stay), and the factors a
municipality uses to estimate what its campaign avoided (commuting time, CO2)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking import clock
from booking.models.base import Base
from booking.models.bookings import Booking
from booking.models.campaigns import Campaign


class CampaignExtra(Base):
    """A thing lent with a booking of the campaign, e.g. a pocket Wi-Fi for the stay.

    `quantity` of them exist; at every instant the extras held by bookings that hold
    seats never exceed it (a lent router is away for the whole booking)."""

    __tablename__ = "campaign_extras"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "name", name="uq_campaign_extras_campaign_name"),
        sa.CheckConstraint("quantity >= 0", name="quantity_non_negative"),
        sa.CheckConstraint("max_per_booking >= 1", name="max_per_booking_positive"),
        sa.CheckConstraint("length(name) > 0", name="name_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200), default="")
    description: Mapped[str] = mapped_column(sa.String(500), default="")
    description_en: Mapped[str] = mapped_column(sa.String(500), default="")
    quantity: Mapped[int]
    # Lent free, as the documents describe (Shizuoka's pocket Wi-Fi, 立科's projector).
    max_per_booking: Mapped[int] = mapped_column(default=1)
    # Bumped by every booking that takes some: the row a booking transaction locks.
    lock_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    campaign: Mapped[Campaign] = relationship()

    def display_name(self, locale: str = "ja") -> str:
        return self.name_en if locale == "en" and self.name_en else self.name

    def display_description(self, locale: str = "ja") -> str:
        return self.description_en if locale == "en" and self.description_en else self.description


class BookingExtra(Base):
    """How many of an extra a booking holds (for the booking's whole time range)."""

    __tablename__ = "booking_extras"
    __table_args__ = (
        sa.UniqueConstraint("booking_id", "extra_id", name="uq_booking_extras_booking_extra"),
        sa.CheckConstraint("quantity >= 1", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        sa.ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    extra_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaign_extras.id", ondelete="RESTRICT"), index=True
    )
    quantity: Mapped[int]

    booking: Mapped[Booking] = relationship()
    extra: Mapped[CampaignExtra] = relationship()


class ReportFactors(Base):
    """A municipality's factors for the estimated commuting time and CO2 avoided.

    The defaults and their sources are in booking/services/reports.py (DEFAULT_FACTORS);
    a municipality sees them on its factors page and may change them."""

    __tablename__ = "report_factors"
    __table_args__ = (
        sa.UniqueConstraint("organisation_id", name="uq_report_factors_organisation_id"),
        sa.CheckConstraint("detour_factor >= 1", name="detour_factor_min"),
        sa.CheckConstraint("speed_kmh > 0", name="speed_positive"),
        sa.CheckConstraint("rail_share_pct BETWEEN 0 AND 100", name="rail_share_range"),
        sa.CheckConstraint("rail_g_per_pkm >= 0 AND car_g_per_pkm >= 0", name="co2_non_negative"),
        sa.CheckConstraint("max_one_way_km > 0", name="max_one_way_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE")
    )
    detour_factor: Mapped[float]
    speed_kmh: Mapped[float]
    rail_share_pct: Mapped[float]
    rail_g_per_pkm: Mapped[float]
    car_g_per_pkm: Mapped[float]
    max_one_way_km: Mapped[float]
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
