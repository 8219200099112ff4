"""Spaces (places on the map), their bookable units, hours, closures and overrides."""

from __future__ import annotations

import enum
import math
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, aliased, mapped_column, relationship

from booking import clock
from booking.formatting import hhmm
from booking.models.base import Base, enum_type
from booking.models.organisations import Organisation

AMENITIES = (
    "wifi", "printer", "projector", "whiteboard", "monitors", "private_booths",
    "phone_booths", "nursery", "parking", "shower", "kitchen", "equipment_lending",
)


class SpaceKind(enum.StrEnum):
    SATELLITE_OFFICE = "satellite_office"
    COWORKING = "coworking"
    WORKATION_HOUSE = "workation_house"
    PUBLIC_FACILITY = "public_facility"


class UnitKind(enum.StrEnum):
    DESK = "desk"  # a pool of desks: capacity = seats
    MEETING_ROOM = "meeting_room"  # taken whole: capacity 1, fits_people says how many
    PRIVATE_ROOM = "private_room"
    WHOLE_HOUSE = "whole_house"


class PricePer(enum.StrEnum):
    DAY = "day"
    HOUR = "hour"
    NIGHT = "night"


class Space(Base):
    __tablename__ = "spaces"
    __table_args__ = (
        sa.CheckConstraint("prefecture_code BETWEEN 1 AND 47", name="prefecture_code"),
        sa.CheckConstraint("lat IS NULL OR (lat BETWEEN -90 AND 90)", name="lat_range"),
        sa.CheckConstraint("lon IS NULL OR (lon BETWEEN -180 AND 180)", name="lon_range"),
        sa.CheckConstraint("length(name) > 0", name="name_not_empty"),
        # The search narrows candidates by a bounding box before any exact distance.
        sa.Index("ix_spaces_lat_lon", "lat", "lon"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    kind: Mapped[SpaceKind] = mapped_column(enum_type(SpaceKind, 20))
    name: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    description_en: Mapped[str] = mapped_column(sa.Text, default="")
    prefecture_code: Mapped[int]
    city: Mapped[str] = mapped_column(sa.String(100))
    address: Mapped[str] = mapped_column(sa.String(300))
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    coordinates_approximate: Mapped[bool] = mapped_column(default=False)
    nearest_station: Mapped[str] = mapped_column(sa.String(100), default="")
    access: Mapped[str] = mapped_column(sa.String(300), default="")
    access_en: Mapped[str] = mapped_column(sa.String(300), default="")
    # Whom a customer calls or writes to about a booking (after the cancellation deadline:
    # the only way to change it). Optional; without them pages show the operator's name
    # and the space's address.
    contact_phone: Mapped[str] = mapped_column(sa.String(30), default="", server_default="")
    contact_email: Mapped[str] = mapped_column(sa.String(254), default="", server_default="")
    postal_code: Mapped[str] = mapped_column(sa.String(8), default="", server_default="")
    amenities: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    closed_on_holidays: Mapped[bool] = mapped_column(default=True)
    published: Mapped[bool] = mapped_column(default=True)
    calendar_secret: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    organisation: Mapped[Organisation] = relationship()
    opening_hours: Mapped[list[OpeningHours]] = relationship(
        back_populates="space", cascade="all, delete-orphan", order_by="OpeningHours.weekday"
    )
    units: Mapped[list[Unit]] = relationship(
        back_populates="space", cascade="all, delete-orphan", order_by="Unit.id"
    )
    photos: Mapped[list[Photo]] = relationship(
        back_populates="space", cascade="all, delete-orphan", order_by="Photo.id"
    )

    @hybrid_property
    def is_public(self) -> bool:
        """What the public may see, search and book: published, by an organisation a site
        admin approved. In SQL too, `.where(Space.is_public)`: a correlated EXISTS on the
        organisation (an alias of its own, so it works beside any join of organisations)."""
        return self.published and self.organisation.is_approved

    @is_public.inplace.expression
    @classmethod
    def _is_public_sql(cls) -> sa.ColumnElement[bool]:
        owner = aliased(Organisation)
        return sa.and_(cls.published.is_(True),
                       sa.select(owner.id).where(owner.id == cls.organisation_id,
                                                 owner.is_approved).exists())

    def display_name(self, locale: str = "ja") -> str:
        return self.name_en if locale == "en" and self.name_en else self.name

    def display_description(self, locale: str = "ja") -> str:
        return self.description_en if locale == "en" and self.description_en else self.description

    def display_access(self, locale: str = "ja") -> str:
        return self.access_en if locale == "en" and self.access_en else self.access

    def hours_on(self, weekday: int) -> OpeningHours | None:
        return next((h for h in self.opening_hours if h.weekday == weekday), None)


class OpeningHours(Base):
    """One row per open weekday; a weekday without a row is closed. Minutes after midnight,
    so that a workation house can be open 0–1440 (all day) without a '24:00' time value."""

    __tablename__ = "opening_hours"
    __table_args__ = (
        sa.UniqueConstraint("space_id", "weekday"),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        sa.CheckConstraint("opens_min >= 0 AND closes_min <= 1440", name="minutes_range"),
        sa.CheckConstraint("opens_min < closes_min", name="opens_before_closes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(sa.ForeignKey("spaces.id", ondelete="CASCADE"))
    weekday: Mapped[int]  # Monday = 0, as date.weekday()
    opens_min: Mapped[int]
    closes_min: Mapped[int]

    space: Mapped[Space] = relationship(back_populates="opening_hours")

    # (Kept for callers of OpeningHours.fmt; booking.formatting.hhmm is the rule.)
    fmt = staticmethod(hhmm)

    @property
    def label(self) -> str:
        return f"{hhmm(self.opens_min)}–{hhmm(self.closes_min)}"


# The map square of a place without coordinates.
NO_AREA = -1


def map_area(lat: float | None, lon: float | None) -> int:
    """The map square a point lies in, as one integer: a quarter of a degree each way
    (some 28 by 23 km in Japan); NO_AREA without coordinates. Exact on every database
    and in Python alike: multiplying a float by 4 loses nothing."""
    if lat is None or lon is None:
        return NO_AREA
    return (math.floor(lat * 4) + 360) * 1440 + math.floor(lon * 4) + 720


def _area_of_new_unit(context) -> int:
    """A new unit's square: its space's, read in the inserting transaction."""
    found = context.connection.execute(
        sa.select(Space.lat, Space.lon).where(Space.id == context.get_current_parameters()["space_id"])
    ).first()
    return NO_AREA if found is None else map_area(found.lat, found.lon)


class Unit(Base):
    __tablename__ = "units"
    __table_args__ = (
        sa.CheckConstraint("capacity >= 0", name="capacity_non_negative"),
        # A room or a house is taken whole (fits_people says how many it holds).
        sa.CheckConstraint("kind = 'desk' OR capacity = 1", name="whole_unit_capacity"),
        sa.CheckConstraint("fits_people >= 1", name="fits_people_positive"),
        sa.CheckConstraint("price_amount >= 0", name="price_non_negative"),
        sa.CheckConstraint("min_length >= 1", name="min_length_positive"),
        sa.CheckConstraint("max_length >= min_length", name="max_length_ge_min"),
        sa.CheckConstraint("lead_time_hours >= 0", name="lead_time_non_negative"),
        sa.CheckConstraint("cancel_deadline_hours >= 0", name="cancel_deadline_non_negative"),
        sa.CheckConstraint("length(name) > 0", name="name_not_empty"),
        sa.CheckConstraint("max_days_ahead BETWEEN 1 AND 1830", name="max_days_ahead_range"),
        sa.CheckConstraint("no_show_release_minutes IS NULL OR no_show_release_minutes >= 1",
                           name="no_show_release_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(
        sa.ForeignKey("spaces.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[UnitKind] = mapped_column(enum_type(UnitKind, 20))
    name: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200), default="")
    # How many one-seat bookings may overlap; a room or house taken whole has capacity 1.
    capacity: Mapped[int]
    fits_people: Mapped[int] = mapped_column(default=1)
    price_amount: Mapped[int]  # yen
    price_per: Mapped[PricePer] = mapped_column(enum_type(PricePer, 10))
    # Booking length in price units (days, hours or nights).
    min_length: Mapped[int] = mapped_column(default=1)
    max_length: Mapped[int] = mapped_column(default=30)
    lead_time_hours: Mapped[int] = mapped_column(default=0)
    cancel_deadline_hours: Mapped[int] = mapped_column(default=24)
    # The booking horizon: a booking may start at most this many days after today (Tokyo).
    # At most booking.dates.DAYS_AHEAD (1830), the furthest date any request may name.
    max_days_ahead: Mapped[int] = mapped_column(default=365, server_default="365")
    # Members only: the public books it only through a campaign slot.
    members_only: Mapped[bool] = mapped_column(default=False)
    # Release a seat not checked in this many minutes after its start (None: never, the
    # default); services/no_shows.py runs it from the worker.
    no_show_release_minutes: Mapped[int | None]
    # Whole houses: check-in on the first day, check-out on the day after the last night.
    checkin_min: Mapped[int] = mapped_column(default=15 * 60)
    checkout_min: Mapped[int] = mapped_column(default=10 * 60)
    # Bumped on every booking decision: the row a booking transaction locks and writes.
    lock_version: Mapped[int] = mapped_column(default=0)
    # The map square (map_area) of its space when the unit was made, kept for good: its
    # unit_loads rows carry it, and search reads a day's loads by the squares of the units
    # it considers. Never changed, so it needs no lock and never goes stale; a space moved
    # afterwards only makes its units' loads come with those of the old square too. (SQL
    # that names none, as code older than it writes: NO_AREA, for its loads too.)
    area: Mapped[int] = mapped_column(default=_area_of_new_unit, server_default=str(NO_AREA))

    space: Mapped[Space] = relationship(back_populates="units")
    closures: Mapped[list[Closure]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", order_by="Closure.start_date"
    )
    capacity_overrides: Mapped[list[CapacityOverride]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", order_by="CapacityOverride.day"
    )

    def display_name(self, locale: str = "ja") -> str:
        return self.name_en if locale == "en" and self.name_en else self.name


class Closure(Base):
    """Dates (inclusive) on which a unit takes no booking, e.g. お盆 8/13–8/16."""

    __tablename__ = "closures"
    __table_args__ = (sa.CheckConstraint("start_date <= end_date", name="dates_ordered"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id", ondelete="CASCADE"), index=True)
    start_date: Mapped[date]
    end_date: Mapped[date]
    reason: Mapped[str] = mapped_column(sa.String(200), default="")

    unit: Mapped[Unit] = relationship(back_populates="closures")


class CapacityOverride(Base):
    """Fewer (or more) seats on one date, e.g. 10 of 85 desks kept for members."""

    __tablename__ = "capacity_overrides"
    __table_args__ = (
        sa.UniqueConstraint("unit_id", "day"),
        sa.CheckConstraint("capacity >= 0", name="capacity_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id", ondelete="CASCADE"))
    day: Mapped[date]
    capacity: Mapped[int]
    reason: Mapped[str] = mapped_column(sa.String(200), default="")

    unit: Mapped[Unit] = relationship(back_populates="capacity_overrides")


class Photo(Base):
    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(sa.ForeignKey("spaces.id", ondelete="CASCADE"))
    # A random file name chosen by us, never the uploader's.
    filename: Mapped[str] = mapped_column(sa.String(80), unique=True)
    alt: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    space: Mapped[Space] = relationship(back_populates="photos")


class SpaceMember(Base):
    """A member of a space (a company, or one person by e-mail): books its members-only
    units directly; everyone else books them only through a campaign slot."""

    __tablename__ = "space_members"
    __table_args__ = (
        sa.CheckConstraint("(company_id IS NULL) <> (email IS NULL)", name="company_or_person"),
        sa.CheckConstraint("email IS NULL OR email = lower(email)", name="email_lowercase"),
        sa.UniqueConstraint("space_id", "company_id", name="uq_space_members_company"),
        sa.UniqueConstraint("space_id", "email", name="uq_space_members_email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(sa.ForeignKey("spaces.id", ondelete="CASCADE"),
                                          index=True)
    company_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str | None] = mapped_column(sa.String(254))
    note: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    space: Mapped[Space] = relationship()
    company: Mapped[Organisation | None] = relationship()


class CatalogueChange(Base):
    """The search catalogue's change log: one row per space whose catalogue entry (the
    space, its units and opening hours, what touches its units: closures, capacity
    overrides, offered campaign slots; its organisation's approval) a transaction changed,
    written in that transaction (booking.services.catalogue). A process refreshes only the
    spaces named since the position it holds; space_id NULL means everything (SQL that
    bypassed the Session: `derived.rebuild`). Inserts never wait on each other, so unrelated
    edits do not queue behind one row.

    `txid` is the writing transaction's id on PostgreSQL (pg_current_xact_id()): a reader
    asks for the rows of the transactions its last snapshot did not see (in progress, or
    begun after it), so a change committed late under an early id is never missed. On
    SQLite writers run one at a time and ids grow in commit order (txid stays NULL)."""

    __tablename__ = "catalogue_changes"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                                    primary_key=True)
    space_id: Mapped[int | None]  # no foreign key: a deleted space's removal is news too
    changed_at: Mapped[datetime] = mapped_column(default=clock.now)
    txid: Mapped[int | None] = mapped_column(sa.BigInteger, index=True)
