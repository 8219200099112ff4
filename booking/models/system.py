"""Cross-cutting records: the mail outbox, API tokens and the audit log."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from booking import clock
from booking.models.base import Base, enum_type


class OutboxMessage(Base):
    """A mail written in the same transaction as the change it reports; sent by a worker."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        sa.Index("ix_outbox_pending", "sent_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))  # confirmation, cancellation, reminder...
    recipient: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(300))
    # The complete RFC 5322 message, kept once written so that a retry sends the same
    # bytes. Empty until the worker writes it: from `facts` (a booking's mails) or, for a
    # reminder, from the booking as it is when due.
    message: Mapped[bytes] = mapped_column(sa.LargeBinary)
    # What a booking's mail says, as the event left it (booking.services.mail.booking_facts),
    # stored in the booking's transaction: the worker renders the message from it after
    # commit, so a later change of the booking or its space cannot alter this mail.
    facts: Mapped[dict | None] = mapped_column(sa.JSON)
    booking_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("bookings.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    next_attempt_at: Mapped[datetime] = mapped_column(default=clock.now)
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None]
    # Parked: given up after MAIL_MAX_ATTEMPTS failures (or at once for an address that
    # SMTP cannot take); last_error says why. Never claimed again until a site admin
    # retries it (booking.services.mail.retry_parked).
    failed_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(sa.String(500), default="")


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)  # sha256 hex
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=clock.now)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    organisation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(sa.String(60))
    target: Mapped[str] = mapped_column(sa.String(120))
    detail: Mapped[dict] = mapped_column(sa.JSON, default=dict)


class JobRun(Base):
    """A scheduled job's run, claimed once by whichever worker inserts it first (the
    unique key): two workers never both send the same morning's digest."""

    __tablename__ = "job_runs"
    __table_args__ = (sa.UniqueConstraint("name", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40))  # e.g. "digest"
    key: Mapped[str] = mapped_column(sa.String(100))  # e.g. the Tokyo date it is for
    started_at: Mapped[datetime] = mapped_column(default=clock.now)
    finished_at: Mapped[datetime | None]


class DocumentKind(enum.StrEnum):
    RECEIPT = "receipt"  # 領収書 (an issuer without a registration number)
    INVOICE = "invoice"  # 適格請求書 (qualified invoice; receipt form: 適格簡易請求書 allowed)
    CREDIT_NOTE = "credit_note"  # 返還インボイス, refers to the document it reverses
    USAGE_CERTIFICATE = "usage_certificate"  # 利用証明 for a free booking


class ReceiptCounter(Base):
    """The last document number an issuer gave: taken with UPDATE … (row lock), so numbers
    are unique and never reused even under concurrent issuing."""

    __tablename__ = "receipt_counters"

    issuer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    last_number: Mapped[int] = mapped_column(default=0)


class Receipt(Base):
    """A money document issued for a booking: what it says is frozen in `content` when
    issued (the PDF is drawn from it, so it reads the same whenever downloaded)."""

    __tablename__ = "receipts"
    __table_args__ = (
        sa.UniqueConstraint("issuer_id", "sequence", name="uq_receipts_issuer_sequence"),
        sa.CheckConstraint("sequence >= 1", name="sequence_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    sequence: Mapped[int]  # the issuer's counter value
    number: Mapped[str] = mapped_column(sa.String(40))  # as printed
    kind: Mapped[DocumentKind] = mapped_column(enum_type(DocumentKind, 20))
    booking_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("bookings.id", ondelete="SET NULL"), index=True
    )
    recipient_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    credit_of_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("receipts.id", ondelete="RESTRICT"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(default=clock.now)
    content: Mapped[dict] = mapped_column(sa.JSON, default=dict)
