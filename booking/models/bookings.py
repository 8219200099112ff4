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
    # Seats offered to the first company on a unit's waitlist: held for it until the
    # offer expires, booked only when the company confirms (services/waitlist.py).
    OFFERED = "offered"
    # An offer the company let expire or declined: it never held a booking.
    EXPIRED = "expired"
    # A seat not checked in within the unit's release time, given back (services/no_shows).
    RELEASED = "released"


# Statuses that hold seats (an offer holds them for the company it was made to).
HOLDING_STATUSES = (BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN, BookingStatus.NO_SHOW,
                    BookingStatus.OFFERED)
# Rows of `bookings` that are not bookings a company made: a waitlist's offer not yet
# confirmed, and one that expired or was declined. Lists, reports and exports of bookings
# leave them out (an offer is on the company's waitlist page).
NOT_MADE_STATUSES = (BookingStatus.OFFERED, BookingStatus.EXPIRED)


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
    # One of a recurring series ("every Wednesday"): each occurrence is a booking of its own.
    series_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("booking_series.id", ondelete="SET NULL"), index=True
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
    series: Mapped[BookingSeries | None] = relationship(back_populates="bookings")
    attendees: Mapped[list[BookingAttendee]] = relationship(
        back_populates="booking", cascade="all, delete-orphan", order_by="BookingAttendee.id"
    )

    @property
    def holds_seats(self) -> bool:
        return self.status in HOLDING_STATUSES


class BookingSeries(Base):
    """A recurring booking ("every Wednesday from … to …", or every weekday): the rule a
    company asked for; each date it gave is a Booking of its own (series_id)."""

    __tablename__ = "booking_series"
    __table_args__ = (
        sa.CheckConstraint("first_date <= last_date", name="dates_ordered"),
        sa.CheckConstraint("seats >= 1", name="seats_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The series' identity in calendars (e.g. the UID of a recurring event).
    uid: Mapped[str] = mapped_column(sa.String(100), unique=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id", ondelete="RESTRICT"),
                                         index=True)
    company_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Monday = 0, as date.weekday(): [2] every Wednesday, [0, 1, 2, 3, 4] every weekday.
    weekdays: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    first_date: Mapped[date]
    last_date: Mapped[date]
    # Minutes after midnight (Tokyo) of each occurrence; None for a unit let by the day.
    start_min: Mapped[int | None]
    end_min: Mapped[int | None]
    seats: Mapped[int] = mapped_column(default=1)
    sequence: Mapped[int] = mapped_column(default=0)  # iCalendar SEQUENCE of the series
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    unit: Mapped[Unit] = relationship()
    company: Mapped[Organisation | None] = relationship()
    user: Mapped[User | None] = relationship()
    bookings: Mapped[list[Booking]] = relationship(back_populates="series",
                                                   order_by="Booking.starts_at")


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"  # in line
    OFFERED = "offered"  # seats held for it (offer_booking_id) until offer_expires_at
    BOOKED = "booked"  # the company confirmed the offer
    EXPIRED = "expired"  # the offer ran out or was declined; the next in line is asked
    LEFT = "left"  # the company left the line (or its wanted time passed)


class WaitlistEntry(Base):
    """A company waiting for seats of a full unit for a period (a day or hours)."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        sa.CheckConstraint("starts_at < ends_at", name="times_ordered"),
        sa.CheckConstraint("seats >= 1", name="seats_positive"),
        # The line of a unit: who waits, first come first served.
        sa.Index("ix_waitlist_entries_line", "unit_id", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    campaign_slot_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("campaign_slots.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    seats: Mapped[int] = mapped_column(default=1)
    status: Mapped[WaitlistStatus] = mapped_column(
        enum_type(WaitlistStatus, 10), default=WaitlistStatus.WAITING
    )
    # The held booking (status offered) while offered; the confirmed one once booked.
    offer_booking_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("bookings.id", ondelete="SET NULL"), index=True
    )
    offered_at: Mapped[datetime | None]
    offer_expires_at: Mapped[datetime | None]
    locale: Mapped[str] = mapped_column(sa.String(5), default="ja")
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    unit: Mapped[Unit] = relationship()
    company: Mapped[Organisation] = relationship()
    user: Mapped[User | None] = relationship()
    campaign_slot: Mapped[CampaignSlot | None] = relationship()
    offer_booking: Mapped[Booking | None] = relationship()


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
        # Search reads the pieces of a day, in the map squares of the units it considers,
        # that leave fewer seats free than it needs: most pieces of a desk pool leave
        # plenty and are never read, nor those of the rest of the country (PostgreSQL: an
        # index-only scan).
        sa.Index("ix_unit_loads_day_area", "day", "area", "seats_free",
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
    # The unit's map square (Unit.area, which never changes).
    area: Mapped[int] = mapped_column(server_default="-1")
