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


class FeedChange(Base):
    """The calendar feeds' change log (PostgreSQL): a row for each feed owner and unit of
    every booking a statement inserted, updated or deleted, written by the database's
    triggers (FEED_CHANGE_TRIGGERS) in that statement's transaction, whichever code path
    wrote it. A feed's validator is the sum of its owner's weights (it grows with every
    committed change, never comes back) and the row versions of the units and spaces the
    rows name (their text is in the feed): one small index read, not the feed's bookings.
    calendars compacts an owner's rows into one per unit, weights summed, in one statement.

    owner_kind is the model's name ("User", "Organisation", "Space"). No foreign keys: the
    log outlives what it names. SQLite keeps the table empty (its feeds hash their rows)."""

    __tablename__ = "feed_changes"
    __table_args__ = (
        # The validator's read: index only, by owner.
        sa.Index("ix_feed_changes_owner", "owner_kind", "owner_id", "unit_id", "weight"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                                    primary_key=True)
    owner_kind: Mapped[str] = mapped_column(sa.String(12))
    owner_id: Mapped[int]
    unit_id: Mapped[int]
    weight: Mapped[int] = mapped_column(server_default="1")


def _noting(bookings: str) -> str:
    """The INSERT of the log's rows for the owners and units of these bookings' rows."""
    return f"""INSERT INTO feed_changes (owner_kind, owner_id, unit_id)
    SELECT DISTINCT o.kind, o.id, b.unit_id FROM {bookings} b JOIN units u ON u.id = b.unit_id
    CROSS JOIN LATERAL (VALUES ('User', b.user_id), ('Organisation', b.company_id),
                               ('Space', u.space_id)) AS o (kind, id)
    WHERE o.id IS NOT NULL;"""


# The triggers that write feed_changes. Statement-level, from transition tables: one
# INSERT per statement, however many bookings it touched. An UPDATE notes the owners and
# units before and after (a booking moved, or its company gone); a unit moved to another
# space is news to the new space's feed (the old one sees the unit's row version change).
# TRUNCATE bypasses them (no feed may rely on a truncated table).
FEED_CHANGE_TRIGGERS = f"""
CREATE OR REPLACE FUNCTION note_feed_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_noting("changed_bookings")}
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION note_feed_changes_of_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_noting("(SELECT user_id, company_id, unit_id FROM old_bookings "
            "UNION SELECT user_id, company_id, unit_id FROM changed_bookings)")}
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION note_unit_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO feed_changes (owner_kind, owner_id, unit_id) VALUES ('Space', NEW.space_id, NEW.id);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS feed_changes_inserted ON bookings;
CREATE TRIGGER feed_changes_inserted AFTER INSERT ON bookings
    REFERENCING NEW TABLE AS changed_bookings
    FOR EACH STATEMENT EXECUTE FUNCTION note_feed_changes();
DROP TRIGGER IF EXISTS feed_changes_updated ON bookings;
CREATE TRIGGER feed_changes_updated AFTER UPDATE ON bookings
    REFERENCING OLD TABLE AS old_bookings NEW TABLE AS changed_bookings
    FOR EACH STATEMENT EXECUTE FUNCTION note_feed_changes_of_update();
DROP TRIGGER IF EXISTS feed_changes_deleted ON bookings;
CREATE TRIGGER feed_changes_deleted AFTER DELETE ON bookings
    REFERENCING OLD TABLE AS changed_bookings
    FOR EACH STATEMENT EXECUTE FUNCTION note_feed_changes();
DROP TRIGGER IF EXISTS feed_changes_unit_moved ON units;
CREATE TRIGGER feed_changes_unit_moved AFTER UPDATE OF space_id ON units
    FOR EACH ROW WHEN (OLD.space_id IS DISTINCT FROM NEW.space_id)
    EXECUTE FUNCTION note_unit_moved();
"""
sa.event.listen(Base.metadata, "after_create",
                sa.DDL(FEED_CHANGE_TRIGGERS).execute_if(dialect="postgresql"))


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
