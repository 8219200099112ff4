"""A space's bookings taken elsewhere: as a CSV file for a spreadsheet, and as a calendar
feed whose secret address the space's staff issue and revoke."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from booking.formatting import local_stamp
from booking.labels import booking_status_label
from booking.models import Booking, BookingStatus, Space, User
from booking.services import access, calendars
from booking.services.audit import record
from booking.services.availability import at
from booking.services.csvexport import csv_text
from booking.services.front_desk import bookings_between

CSV_HEADER = ("予約番号", "区画", "開始", "終了", "席数", "状態", "会社", "予約者", "メール",
              "参加者", "料金(円)", "自治体負担(円)", "キャンペーン", "予約日時", "キャンセル理由",
              "施設へのメモ")


def bookings_csv(session: Session, user: User, space: Space, first: date, last: date) -> str:
    """Bookings touching [first, last] as CSV text, with a BOM so that Excel reads UTF-8,
    every text cell guarded against formula injection (services/csvexport.py)."""
    access.require(user, "manage", space)
    rows = []
    # Bookings made: not a waitlist's offer still waiting for its company's confirmation.
    made = bookings_between(space, at(first, 0), at(last, 1440)).where(
        Booking.status != BookingStatus.OFFERED)
    for b in session.scalars(made):
        slot = b.campaign_slot
        rows.append((
            b.reference, b.unit.name, local_stamp(b.starts_at),
            local_stamp(b.ends_at), b.seats, booking_status_label(b.status),
            b.company.name if b.company else "", b.user.name if b.user else "",
            b.user.email if b.user else "", " ".join(a.email for a in b.attendees),
            b.price_amount, b.subsidy_amount, slot.campaign.name if slot else "",
            local_stamp(b.created_at), b.cancel_reason, b.note,
        ))
    return csv_text(CSV_HEADER, rows)


def csv_filename(space: Space, first: date, last: date) -> str:
    return f"bookings-{space.id}-{first:%Y%m%d}-{last:%Y%m%d}.csv"


def new_calendar_secret(session: Session, user: User, space: Space) -> str:
    """A new secret feed address; the old one stops working at once."""
    access.require(user, "manage", space)
    secret = calendars.renew_secret(space)
    record(session, user, "space.calendar_secret", space, space.organisation_id)
    session.flush()
    return secret


def revoke_calendar_secret(session: Session, user: User, space: Space) -> None:
    access.require(user, "manage", space)
    calendars.revoke_secret(space)
    record(session, user, "space.calendar_revoke", space, space.organisation_id)
    session.flush()
