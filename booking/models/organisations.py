"""Organisations, users and their memberships."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from booking import clock
from booking.models.base import Base, enum_type


class OrgKind(enum.StrEnum):
    MUNICIPALITY = "municipality"
    OPERATOR = "operator"
    COMPANY = "company"


class Role(enum.StrEnum):
    # An operator's or municipality's owner (manages its people and settings); a
    # company's admin, who sees and manages all the company's bookings.
    OWNER = "owner"
    # An operator's staff; a company's member, who sees the bookings they made.
    STAFF = "staff"


class TeleworkCategory(enum.StrEnum):
    """How a company takes part in Telework Days (seed-facts.md)."""

    IMPLEMENTING = "implementing"  # 実施団体
    SPECIAL = "special"  # 特別協力団体


class Organisation(Base):
    __tablename__ = "organisations"
    __table_args__ = (
        sa.CheckConstraint("prefecture_code BETWEEN 1 AND 47", name="prefecture_code"),
        sa.CheckConstraint("length(name) > 0", name="name_not_empty"),
        sa.CheckConstraint("core_day_staff >= 0", name="core_day_staff_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[OrgKind] = mapped_column(enum_type(OrgKind, 20))
    name: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200), default="")
    prefecture_code: Mapped[int | None]
    address: Mapped[str] = mapped_column(sa.String(300), default="")
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    # Supporter organisations are public only once a site admin approved them; companies
    # need no approval and get approved_at at creation.
    approved_at: Mapped[datetime | None]
    telework_category: Mapped[TeleworkCategory | None] = mapped_column(
        enum_type(TeleworkCategory, 20)
    )
    core_day_staff: Mapped[int | None]
    # 適格請求書発行事業者の登録番号 ("T" and 13 digits, check digit valid; None: not
    # registered: its receipts say they are not qualified invoices).
    invoice_registration_number: Mapped[str | None] = mapped_column(sa.String(14))
    postal_code: Mapped[str] = mapped_column(sa.String(8), default="", server_default="")
    # Secret of the company's subscription feed (/calendar/<secret>.ics); None: no feed.
    calendar_secret: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="organisation", cascade="all, delete-orphan"
    )

    @hybrid_property
    def is_approved(self) -> bool:
        """A site admin approved it (companies: at creation). In SQL too:
        `.where(Organisation.is_approved)`."""
        return self.approved_at is not None

    @is_approved.inplace.expression
    @classmethod
    def _is_approved_sql(cls) -> sa.ColumnElement[bool]:
        return cls.approved_at.is_not(None)

    @property
    def is_supporter(self) -> bool:
        return self.kind in (OrgKind.MUNICIPALITY, OrgKind.OPERATOR)

    def display_name(self, locale: str = "ja") -> str:
        return self.name_en if locale == "en" and self.name_en else self.name


class User(UserMixin, Base):
    __tablename__ = "users"
    __table_args__ = (sa.CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased, so the unique index is case-insensitive on every database.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    locale: Mapped[str] = mapped_column(sa.String(5), default="ja")
    is_admin: Mapped[bool] = mapped_column(default=False)
    # Changing it logs the user out everywhere (it is part of the session identity).
    session_token: Mapped[str] = mapped_column(sa.String(64))
    calendar_secret: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    # When the owner of the address proved it (the link mailed at sign-up,
    # services/accounts.py); None: unverified. A new address is unverified again.
    email_verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # What this person is mailed about (each switchable on the account page): bookings of
    # their organisation's spaces (new, changed, cancelled), a morning digest of the day's
    # arrivals, and campaign consents (requests to operators, answers to municipalities).
    notify_bookings: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    notify_digest: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    notify_consents: Mapped[bool] = mapped_column(default=True, server_default=sa.true())

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @validates("email")
    def _new_address_is_unverified(self, _key: str, value: str) -> str:
        if self.email is not None and value != self.email:
            self.email_verified_at = None
        return value

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    def organisations(self, kind: OrgKind | None = None) -> list[Organisation]:
        return [
            m.organisation
            for m in self.memberships
            if kind is None or m.organisation.kind == kind
        ]

    def role_in(self, organisation_id: int) -> Role | None:
        for m in self.memberships:
            if m.organisation_id == organisation_id:
                return m.role
        return None

    @property
    def company(self) -> Organisation | None:
        companies = self.organisations(OrgKind.COMPANY)
        return companies[0] if companies else None


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (sa.UniqueConstraint("user_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(enum_type(Role, 10))

    user: Mapped[User] = relationship(back_populates="memberships")
    organisation: Mapped[Organisation] = relationship(back_populates="memberships")


class Invitation(Base):
    """An owner's invitation of a person, by e-mail, to join the organisation with a role.
    Only a digest of its secret is stored (the secret is in the mailed link)."""

    __tablename__ = "invitations"
    __table_args__ = (sa.CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(sa.String(254))
    role: Mapped[Role] = mapped_column(enum_type(Role, 10))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)  # sha256 hex
    invited_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    accepted_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship()
    invited_by: Mapped[User | None] = relationship(foreign_keys=[invited_by_id])
