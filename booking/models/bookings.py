"""Bookings, their attendees, and the idempotency record of the API."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking import clock
from booking.models.base import Base, enum_type
from booking.models.campaigns import CampaignSlot
from booking.models.organisations import Organisation, User
from booking.models.spaces import Unit


class BookingStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


# Statuses that hold seats.
HOLDING_STATUSES = (BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN, BookingStatus.NO_SHOW)


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        sa.CheckConstraint("starts_at < ends_at", name="times_ordered"),
        sa.CheckConstraint("seats >= 1", name="seats_positive"),
        sa.CheckConstraint("price_amount >= 0", name="price_non_negative"),
        sa.CheckConstraint("subsidy_amount >= 0", name="subsidy_non_negative"),
        sa.CheckConstraint("sequence >= 0", name="sequence_non_negative"),
        # Availability reads bookings of a unit overlapping a time range.
        sa.Index("ix_bookings_unit_time", "unit_id", "starts_at", "ends_at"),
        # Every booking counts its company's bookings of the last hour and day
        # (services/limits.py).
        sa.Index("ix_bookings_company_created", "company_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Random, not sequential: a reference is not guessable.
    reference: Mapped[str] = mapped_column(sa.String(16), unique=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id", ondelete="RESTRICT"))
    company_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    campaign_slot_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("campaign_slots.id", ondelete="RESTRICT"), index=True
    )
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    seats: Mapped[int]
    status: Mapped[BookingStatus] = mapped_column(
        enum_type(BookingStatus, 12), default=BookingStatus.CONFIRMED
    )
    price_amount: Mapped[int]  # what the company pays, yen
    subsidy_amount: Mapped[int] = mapped_column(default=0)  # what the municipality pays
    sequence: Mapped[int] = mapped_column(default=0)  # iCalendar SEQUENCE
    locale: Mapped[str] = mapped_column(sa.String(5), default="ja")
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    cancel_reason: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    cancelled_at: Mapped[datetime | None]
    checked_in_at: Mapped[datetime | None]

    unit: Mapped[Unit] = relationship()
    company: Mapped[Organisation | None] = relationship()
    user: Mapped[User | None] = relationship()
    campaign_slot: Mapped[CampaignSlot | None] = relationship()
    attendees: Mapped[list[BookingAttendee]] = relationship(
        back_populates="booking", cascade="all, delete-orphan", order_by="BookingAttendee.id"
    )

    @property
    def holds_seats(self) -> bool:
        return self.status in HOLDING_STATUSES


class BookingAttendee(Base):
    __tablename__ = "booking_attendees"
    __table_args__ = (sa.UniqueConstraint("booking_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        sa.ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(sa.String(254))
    name: Mapped[str] = mapped_column(sa.String(100), default="")

    booking: Mapped[Booking] = relationship(back_populates="attendees")


class IdempotencyRecord(Base):
    """The first answer to an API request with an Idempotency-Key, replayed on retries."""

    __tablename__ = "idempotency_records"
    __table_args__ = (sa.UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(200))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int]
    response: Mapped[dict] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class UnitLoad(Base):
    """Seats that holding bookings take on a unit during [start_min, end_min) of a Tokyo
    day: their step function, cut at midnight, one row per piece with seats > 0.

    Derived data, so that search can decide thousands of units in one query without
    reading their bookings; booking.services.loads keeps it in step with `bookings` (and
    `seats_free` with the unit's capacity) in the same transaction, and tests compare it
    with availability's count."""

    __tablename__ = "unit_loads"
    __table_args__ = (
        sa.CheckConstraint("start_min >= 0 AND start_min < end_min AND end_min <= 1440",
                           name="minutes_ordered"),
        sa.CheckConstraint("seats >= 1", name="seats_positive"),
        # Search reads the pieces of a day that leave fewer seats free than it needs and
        # keeps those of the units near the place: most pieces of a desk pool leave
        # plenty and are never read (PostgreSQL: an index-only scan of the rest).
        sa.Index("ix_unit_loads_day", "day", "seats_free",
                 postgresql_include=["unit_id", "start_min", "end_min", "seats"]),
    )

    unit_id: Mapped[int] = mapped_column(
        sa.ForeignKey("units.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    start_min: Mapped[int] = mapped_column(primary_key=True)
    end_min: Mapped[int]
    seats: Mapped[int]
    # The unit's capacity minus seats (below 0 when overbooked after a cut in capacity).
    seats_free: Mapped[int]
