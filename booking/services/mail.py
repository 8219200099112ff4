"""The transactional outbox: mail is written in the booking's transaction, sent by a worker.

- enqueue_confirmation / enqueue_update / enqueue_cancellation are called by
  reservations inside the transaction that decides the booking: if it rolls back, no mail;
  if it commits, the mail is in the outbox even if SMTP is down.
- Each person invited (the booker and every attendee) gets a message of their own, To
  them, multipart/mixed → multipart/alternative [text/plain, text/html,
  text/calendar; method=REQUEST|CANCEL; charset=UTF-8] + the same .ics attached, also
  text/calendar with the same method (RFC 6047; METHOD once in each, equal to it).
- Messages are NOT rendered in that transaction (it holds the unit's lock): it stores
  with each row the facts the mail tells (booking_facts: the booking, its unit and
  space, the people, the extras, the DTSTAMP — as the event left them) in
  OutboxMessage.facts, and the worker renders the message from them after commit, before
  the first send (render_row), keeping the bytes so that a retry sends the same. A later
  change of the booking or its space cannot alter an earlier mail. The rows of one event
  go in with one INSERT (executemany); a new booking's, with its audit entry and
  idempotency record, in one statement (confirmation_rows, booking.db.insert_together).
- The space's operator is told too (enqueue_for_operators, from the same three calls):
  each member who keeps User.notify_bookings on and has verified their address gets a
  message of their own (text and HTML, no .ics), in their language, with the company's
  note to the facility; kinds operator_confirmation / _update / _cancellation.
- A reminder is queued for REMINDER_HOURS_BEFORE hours before the start (due in the
  outbox's next_attempt_at; its message is written by the worker when due); a change
  moves it, a cancellation deletes it, and the worker drops any reminder whose booking no
  longer holds seats.
- `flask outbox run` (the worker): claims one due row at a time (PostgreSQL: FOR UPDATE
  SKIP LOCKED, so several workers share the work; SQLite: an IMMEDIATE transaction) by
  leasing it for a few minutes and counting the attempt, sends it through SMTP (MAIL_URL)
  or writes an .eml file into MAIL_DIR (no MAIL_URL: development), and marks it sent.
  Delivery is at least once. No transaction is open while SMTP works.
- Poison cannot stop it: ANY exception while building or sending one message fails that
  message only, which is retried with exponential backoff (1 min, 2, 4 … up to 1 h) and
  parked (failed_at, with the reason in last_error) after MAIL_MAX_ATTEMPTS attempts; a
  recipient that breaks the address rule (booking.services.addresses; rows from before
  it) is parked at once; a message whose workers died while sending it is parked when
  its claims reach the limit. Parked messages are listed by `flask outbox status` and on
  the site admin's /admin/outbox page, which can retry one.
- A cancellation reason is user text mailed to every attendee: it goes out as plain text,
  cut to CANCEL_REASON_MAIL_MAX characters, with anything a mail client would make a link
  of (URLs, host names, addresses) replaced by a marker (reason_for_mail).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
import smtplib
import ssl
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.encoders import encode_base64
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import cast
from urllib.parse import unquote, urlsplit

import click
import sqlalchemy as sa
from flask import current_app, render_template
from flask.cli import with_appcontext
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from booking import clock
from booking.db import begin_write
from booking.formatting import local_period, local_stamp
from booking.models import Booking, OutboxMessage, Space, Unit, User
from booking.services import addresses, audit, calendars
from booking.services.errors import DomainError

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # a claimed row is retried after this if its worker died
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)
DEFAULT_MAX_ATTEMPTS = 30  # MAIL_MAX_ATTEMPTS: then the message is parked
KIND_CONFIRMATION = "confirmation"
KIND_UPDATE = "update"
KIND_CANCELLATION = "cancellation"
KIND_REMINDER = "reminder"
SMTP_POLICY = compat32.clone(linesep="\r\n")  # the wire format: CRLF line ends


# --------------------------------------------------------------------------- building


def _date_label(booking: Booking) -> str:
    return local_period(booking.starts_at, booking.ends_at, booking.locale)


def _subject(kind: str, booking: Booking) -> str:
    space = booking.unit.space.display_name(booking.locale)
    when = _date_label(booking)
    if kind == KIND_CONFIRMATION:
        return _("【予約確定】%(space)s %(when)s", space=space, when=when)
    if kind == KIND_UPDATE:
        return _("【予約変更】%(space)s %(when)s", space=space, when=when)
    if kind == KIND_CANCELLATION:
        return _("【予約キャンセル】%(space)s %(when)s", space=space, when=when)
    return _("【明日のご予約】%(space)s %(when)s", space=space, when=when)


@dataclass(frozen=True)
class Rendered:
    """One person's message, as the outbox stores it (retries send these same bytes)."""

    recipient: str
    subject: str
    message: bytes


def _one_line(value: str) -> str:
    """A header value on one line: a CR or LF in a space's name must not start a header
    of its own (the compat32 policy used below does not check this for us)."""
    return " ".join(value.splitlines())


# --------------------------------------------------------------------------- the cancellation reason

CANCEL_REASON_MAIL_MAX = 200  # characters of the reason in a mail (the booking keeps 500)
_HOST = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})"
_STOP = "\\s<>\"'()\\[\\]{}、。「」『』（）【】〈〉《》\u3000"
# What mail clients make links of: a scheme or www. up to a space, bracket or Japanese
# punctuation (IRIs included); and without one, a host name with a top-level domain, an
# e-mail address, an IPv4 address. On NFKC text, so that full-width ｈｔｔｐ：／／ counts too.  # noqa: RUF003 - the full-width spelling is the point
# Deliberately wide ("Mr.Tanaka" goes too): a lost word costs less than a live link.
_LINKISH = re.compile(
    rf"(?:[a-z][a-z0-9+.\-]{{1,30}}://|(?:mailto|tel|sms|callto|sip|xmpp|data|javascript):"
    rf"|www\.)[^{_STOP}]+"
    rf"|(?<![a-z0-9@._%+\-])(?:[a-z0-9._%+\-]+@)?{_HOST}(?![a-z0-9\-])"
    rf"(?::\d{{1,5}})?(?:[/?#][^{_STOP}]*)?"
    rf"|(?<![0-9.])\d{{1,3}}(?:\.\d{{1,3}}){{3}}(?![0-9])(?::\d{{1,5}})?(?:[/?#][^{_STOP}]*)?",
    re.IGNORECASE)


def reason_for_mail(reason: str, marker: str = "[…]",
                    limit: int = CANCEL_REASON_MAIL_MAX) -> str:
    """The cancellation reason as mailed to everyone invited: plain text (the HTML part
    escapes it), normalised (NFKC), without control or format characters (bidi overrides,
    zero-width joiners), with every link-like piece replaced by `marker`, and at most
    CANCEL_REASON_MAIL_MAX characters (or `limit`: the company's note to the facility,
    mailed to the operator, the same way). The booking's page shows it as it was written.

    Why replace rather than break links (hxxps://, a zero-width joiner, [.]): whatever
    still shows the address can be copied into a browser and still looks like a link
    to the reader, and clients link bare host names (evil.example) on their own; a
    reason does not need a link to say why a booking was cancelled."""
    text = unicodedata.normalize("NFKC", reason or "").replace("\r\n", "\n")
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf"))

    text = _LINKISH.sub(marker, text)
    text = re.sub(r"\n{3,}", "\n\n", text.strip())
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return text


def render(kind: str, booking: Booking, people: Sequence[tuple[str, str]], *,
           stamp: datetime | None = None) -> list[Rendered]:
    """The message of each person in `people` ((email, name), To them), describing
    `booking` (the transient one of from_facts, or for a reminder the booking as it is
    when due); `stamp` is the .ics DTSTAMP (the event's time; now by default).

    What all of them share (subject, date, the iCalendar part) is made once. The MIME tree
    is built with the email package's compat32 classes: the same structure as the
    EmailMessage API, at about a third of its CPU time (its header registry parses and
    refolds every header)."""
    method = {KIND_CANCELLATION: calendars.METHOD_CANCEL}.get(kind, calendars.METHOD_REQUEST)
    ics = calendars.booking_ics(booking, method, stamp=stamp) if kind != KIND_REMINDER else None
    made = []
    with force_locale(booking.locale):
        subject = _one_line(_subject(kind, booking))
        context = {
            "kind": kind, "booking": booking, "space": booking.unit.space,
            "unit": booking.unit, "when": _date_label(booking),
            "url": calendars.booking_url(booking), "ics_url": calendars.ics_url(booking),
            "location": calendars.location_of(booking.unit.space, booking.locale),
            "loc": booking.locale,
            # User text mailed to everyone invited: plain, cut, without links.
            "reason": reason_for_mail(booking.cancel_reason, _("[リンク省略]"))
            if kind == KIND_CANCELLATION and booking.cancel_reason else "",
        }
        booker = booking.user.email if booking.user is not None else None
        for email, name in people:
            # Only the booker may open the receipt (services/receipts.py): the link is
            # theirs alone.
            person = {"recipient_name": name, "is_booker": email == booker}
            text = render_template("bookings/mail/message.txt", **person, **context)
            html = render_template("bookings/mail/message.html", **person, **context)
            made.append(Rendered(email, subject,
                                 message_bytes(_mime(text, html, ics, method), subject, email)))
    return made


def message_bytes(msg: Message, subject: str, recipient: str) -> bytes:
    """The message with the headers every mail of ours carries, as it goes on the wire:
    the subject (encoded), From (MAIL_FROM), To, Date, Message-ID at the sender's domain,
    and Auto-Submitted (no auto-replies to it)."""
    sender = parseaddr(current_app.config["MAIL_FROM"])
    msg["Subject"] = Header(subject, "utf-8")  # type: ignore[assignment]  # compat32 folds a Header
    msg["From"] = formataddr(sender, charset="utf-8")
    msg["To"] = _one_line(recipient)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender[1].rpartition("@")[2] or "localhost")
    msg["Auto-Submitted"] = "auto-generated"
    return msg.as_bytes(policy=SMTP_POLICY)


def mime_text(text: str, html: str) -> Message:
    """A mail's text and HTML parts (multipart/alternative), without a calendar."""
    return _mime(text, html, None, "")


def calendar_part(ics: bytes, method: str, filename: str | None = None) -> Message:
    """An iCalendar object as RFC 6047 (iMIP) wants it: `text/calendar; method=…;
    charset=UTF-8`, the method parameter equal to the object's one METHOD property
    (Outlook rejects a mismatch; a ValueError here, never a mail that says two things),
    written unquoted as in the RFC's examples. Base64 keeps the CRLF line ends and the
    folding exact. With `filename`, an attachment of that name."""
    if ics.count(b"\r\nMETHOD:") != 1 or f"\r\nMETHOD:{method}\r\n".encode() not in ics:
        raise ValueError(f"the calendar's METHOD is not {method} (once)")
    part = MIMEBase("text", "calendar")
    part.replace_header("Content-Type", f"text/calendar; method={method}; charset=UTF-8")
    part.set_payload(ics)
    encode_base64(part)
    if filename is not None:
        part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def _mime(text: str, html: str, ics: bytes | None, method: str) -> Message:
    """multipart/alternative [text/plain, text/html(, text/calendar)], and with a calendar
    the same .ics attached beside it in a multipart/mixed, also as text/calendar with the
    same method (RFC 6047 registers no other type for it; application/ics is not one)."""
    parts: list[Message] = [MIMEText(text, "plain", "utf-8"), MIMEText(html, "html", "utf-8")]
    if ics is None:
        return MIMEMultipart("alternative", _subparts=parts)
    filename = "invite.ics" if method == calendars.METHOD_REQUEST else "cancel.ics"
    return MIMEMultipart("mixed", _subparts=[
        MIMEMultipart("alternative", _subparts=[*parts, calendar_part(ics, method)]),
        calendar_part(ics, method, filename)])


# --------------------------------------------------------------------------- facts

# What the booking mails read of each object (the templates, the .ics, the operator's
# mail): stored as the event left it, rebuilt as transient objects to render from.
_BOOKING_FIELDS = ("id", "reference", "unit_id", "company_id", "user_id", "campaign_slot_id",
                   "series_id", "starts_at", "ends_at", "seats", "status", "price_amount",
                   "subsidy_amount", "sequence", "locale", "note", "cancel_reason",
                   "created_at", "updated_at", "cancelled_at")
_UNIT_FIELDS = ("id", "space_id", "kind", "name", "name_en", "capacity", "fits_people",
                "price_amount", "price_per", "min_length", "max_length",
                "cancel_deadline_hours", "checkin_min", "checkout_min")
_SPACE_FIELDS = ("id", "organisation_id", "slug", "name", "name_en", "prefecture_code",
                 "city", "address", "lat", "lon", "access", "access_en")
FACTS_VERSION = 1


def _encode(model, fields: Sequence[str], obj) -> dict:
    out = {}
    for name in fields:
        value = getattr(obj, name)
        if isinstance(value, datetime):
            value = {"datetime": value.isoformat()}
        elif isinstance(value, enum.Enum):
            value = value.value
        out[name] = value
    return out


def _decode(model, values: dict):
    columns = model.__table__.c
    kwargs = {}
    for name, value in values.items():
        kind = columns[name].type
        if value is not None and isinstance(kind, sa.Enum) and kind.enum_class is not None:
            value = kind.enum_class(value)
        elif isinstance(value, dict):
            value = datetime.fromisoformat(value["datetime"])
        kwargs[name] = value
    return model(**kwargs)


def booking_facts(booking: Booking, stamp: datetime | None = None, *,
                  booker: tuple[str, str] | None = None) -> dict:
    """What a mail of `booking` tells, as it is now (inside the event's transaction):
    JSON for OutboxMessage.facts; from_facts rebuilds it. `stamp`: the event's time
    (the .ics DTSTAMP), now by default. `booker`: the booker's (email, name) as the
    caller has them (else the booking's user is read). Reads nothing the transaction has
    not loaded but, when not given, the booking's user and attendees and, for a campaign
    booking, its extras."""
    from booking.services.calendars import series_start_min
    from booking.services.campaign_extras import booking_extras

    unit, space = booking.unit, booking.unit.space
    series = None
    if booking.series_id is not None and booking.series is not None:
        series = {"uid": booking.series.uid, "sequence": booking.series.sequence,
                  "start_min": series_start_min(booking.series)}
    extras = []
    if booking.campaign_slot_id is not None:
        session = sa.inspect(booking).session
        if session is not None:
            extras = [[line.extra.name, line.extra.name_en, line.quantity]
                      for line in booking_extras(session, booking)]
    return {
        "v": FACTS_VERSION,
        "stamp": (stamp or clock.now()).isoformat(),
        "booking": _encode(Booking, _BOOKING_FIELDS, booking),
        "unit": _encode(Unit, _UNIT_FIELDS, unit),
        "space": _encode(Space, _SPACE_FIELDS, space),
        "user": ({"email": booker[0], "name": booker[1]} if booker is not None
                 else {"email": booking.user.email, "name": booking.user.name}
                 if booking.user is not None else None),
        "attendees": [[a.email, a.name] for a in booking.attendees],
        "series": series,
        "extras": extras,
    }


def _company_facts(booking: Booking, names: tuple[str, str] | None = None) -> dict | None:
    if names is not None:
        return {"name": names[0], "name_en": names[1]}
    company = booking.company
    return {"name": company.name, "name_en": company.name_en} if company is not None else None


def _people(facts: dict) -> list[tuple[str, str]]:
    """(email, name) of everyone invited, from the facts: calendars.recipients' rule."""
    people: list[tuple[str, str]] = []
    if facts.get("user") is not None:
        people.append((facts["user"]["email"], facts["user"]["name"]))
    for email, name in facts.get("attendees", []):
        if email not in [p[0] for p in people]:
            people.append((email, name))
    return people


def from_facts(facts: dict) -> tuple[Booking, datetime]:
    """The booking of booking_facts as transient objects (in no session: nothing is read
    from the database, whatever happened since), and the event's time."""
    from booking.models import BookingAttendee, BookingSeries, CampaignExtra, Organisation

    booking = _decode(Booking, facts["booking"])
    unit = _decode(Unit, facts["unit"])
    unit.space = _decode(Space, facts["space"])
    booking.unit = unit
    if facts.get("user") is not None:
        booking.user = User(email=facts["user"]["email"], name=facts["user"]["name"])
    booking.attendees = [BookingAttendee(email=email, name=name)
                         for email, name in facts.get("attendees", [])]
    if facts.get("company") is not None:
        booking.company = Organisation(name=facts["company"]["name"],
                                       name_en=facts["company"]["name_en"])
    if facts.get("series") is not None:
        booking.series = BookingSeries(**facts["series"])
    # The lines booking_extra_lines (the templates' global) gives for this booking.
    booking.mail_extra_lines = [  # type: ignore[attr-defined]
        _ExtraLine(CampaignExtra(name=name, name_en=name_en), quantity)
        for name, name_en, quantity in facts.get("extras", [])]
    return booking, datetime.fromisoformat(facts["stamp"])


@dataclass(frozen=True)
class _ExtraLine:
    extra: object
    quantity: int


def _rows(session: Session, rows: list[dict]) -> None:
    """Insert outbox rows in one statement (executemany): the ids follow their order."""
    if rows:
        session.execute(sa.insert(cast("sa.Table", OutboxMessage.__table__)), rows)


def _row(kind: str, recipient: str, booking_id: int | None, *, facts: dict | None = None,
         due: datetime | None = None) -> dict:
    return {"kind": kind, "recipient": recipient, "subject": "", "message": b"",
            "booking_id": booking_id, "facts": facts, "next_attempt_at": due or clock.now()}


def _booking_rows(kind: str, booking: Booking, facts: dict,
                  recipients: list[tuple[str, str]] | None = None) -> list[dict]:
    """One row per person invited (To them), each to be rendered from `facts`."""
    people = _people(facts) if recipients is None else recipients
    return [_row(kind, email, booking.id, facts={**facts, "to": [email, name]})
            for email, name in people]


def render_row(row: OutboxMessage) -> Rendered:
    """The message of a row written from facts (a booking's mail), rendered now."""
    facts = row.facts or {}
    booking, stamp = from_facts(facts)
    kind = row.kind
    if kind in OPERATOR_KINDS.values():
        email, name, locale = facts["to"]
        user = User(email=email, name=name, locale=locale)
        base = next(k for k, v in OPERATOR_KINDS.items() if v == kind)
        return render_for_operator(base, booking, user)
    [done] = render(kind, booking, [tuple(facts["to"])], stamp=stamp)
    return done


def message_of(row: OutboxMessage) -> bytes:
    """The message a row sends: as written, or rendered from its facts (not stored)."""
    if row.message or not row.facts:
        return row.message
    return render_row(row).message


def _write_from_facts(session: Session, row: OutboxMessage) -> None:
    done = render_row(row)
    row.subject, row.message = done.subject[:300], done.message
    session.commit()


def _drop_reminders(session: Session, booking: Booking) -> None:
    session.execute(sa.delete(OutboxMessage).where(
        OutboxMessage.booking_id == booking.id, OutboxMessage.kind == KIND_REMINDER,
        OutboxMessage.sent_at.is_(None)))


def _reminder_rows(booking: Booking, people: list[tuple[str, str]] | None = None) -> list[dict]:
    """The day-before reminder; none when that moment has already passed.

    Its message is left empty here and written by the worker when it is due, from the
    booking as it is then (and kept, so that a retry sends the same bytes): it costs the
    booking transaction nothing, and says what is true the day before."""
    hours = int(current_app.config.get("REMINDER_HOURS_BEFORE", 24))
    due = booking.starts_at - timedelta(hours=hours)
    if due <= clock.now():
        return []
    return [_row(KIND_REMINDER, email, booking.id, due=due)
            for email, _name in (calendars.recipients(booking) if people is None else people)]


def schedule_reminder(session: Session, booking: Booking) -> None:
    """The day-before reminder's rows (see _reminder_rows)."""
    _rows(session, _reminder_rows(booking))


def _write_reminder(session: Session, row: OutboxMessage) -> None:
    booking = session.get(Booking, row.booking_id)
    assert booking is not None  # a reminder's booking_id is a foreign key, never null
    people = dict(calendars.recipients(booking))
    [done] = render(KIND_REMINDER, booking, [(row.recipient, people.get(row.recipient, ""))])
    row.subject, row.message = done.subject[:300], done.message
    session.commit()


def enqueue_confirmation(session: Session, booking: Booking, *,
                         booker: tuple[str, str] | None = None,
                         company: tuple[str, str] | None = None,
                         operators: Sequence[tuple[str, str, str]] | None = None) -> None:
    """The booking's confirmation to everyone invited, its reminders and the notices to
    the space's operator: rows with the facts, one INSERT. `booker` ((email, name)),
    `company` ((name, name_en)) and `operators` (the operator members told, (email, name,
    locale)): as the caller has them (reservations.book: read before its transaction
    began, not under its lock), else read from the booking."""
    _rows(session, confirmation_rows(session, booking, booker=booker, company=company,
                                     operators=operators))


def confirmation_rows(session: Session, booking: Booking, *,
                      booker: tuple[str, str] | None = None,
                      company: tuple[str, str] | None = None,
                      operators: Sequence[tuple[str, str, str]] | None = None) -> list[dict]:
    """enqueue_confirmation's outbox rows, not yet inserted (reservations.book inserts
    them with its other rows in one statement: booking.db.insert_together)."""
    if booking.series_id is not None:
        # An occurrence of a recurring series: the series' one mail (enqueue_series) says
        # it; each occurrence keeps its own reminder.
        return _reminder_rows(booking)
    facts = booking_facts(booking, booker=booker)
    return [*_booking_rows(KIND_CONFIRMATION, booking, facts),
            *_reminder_rows(booking, _people(facts)),
            *_operator_rows(session, KIND_CONFIRMATION, booking, facts, company, operators)]


def enqueue_update(session: Session, booking: Booking) -> None:
    facts = booking_facts(booking)
    _drop_reminders(session, booking)
    _rows(session, [*_booking_rows(KIND_UPDATE, booking, facts), *_reminder_rows(booking),
                    *_operator_rows(session, KIND_UPDATE, booking, facts)])


def enqueue_cancellation(session: Session, booking: Booking) -> None:
    facts = booking_facts(booking)
    _drop_reminders(session, booking)
    _rows(session, [*_booking_rows(KIND_CANCELLATION, booking, facts),
                    *_operator_rows(session, KIND_CANCELLATION, booking, facts)])


def enqueue_uninvited(session: Session, booking: Booking, emails: list[str]) -> None:
    """The cancellation, for attendees taken off a booking that goes on without them."""
    _rows(session, _booking_rows(KIND_CANCELLATION, booking, booking_facts(booking),
                                 [(e, "") for e in emails]))


# --------------------------------------------------------------------------- recurring series

KIND_SERIES_CONFIRMATION = "series_confirmation"
KIND_SERIES_UPDATE = "series_update"  # some occurrences cancelled, others kept
KIND_SERIES_CANCELLATION = "series_cancellation"  # nothing of it held any more


def _series_subject(kind: str, space: str, what: str) -> str:
    if kind == KIND_SERIES_CONFIRMATION:
        return _("【定期予約確定】%(space)s %(what)s", space=space, what=what)
    if kind == KIND_SERIES_UPDATE:
        return _("【定期予約の一部キャンセル】%(space)s %(what)s", space=space, what=what)
    return _("【定期予約キャンセル】%(space)s %(what)s", space=space, what=what)


def enqueue_series(session: Session, series, bookings: Sequence[Booking], kind: str, *,
                   kept: Sequence[Booking] = ()) -> list[OutboxMessage]:
    """ONE mail per person invited for a recurring series (not one per occurrence): its
    confirmation with the series as one recurring event (REQUEST), or, when `bookings`
    were cancelled, the series again with those dates excluded (REQUEST, `kept` still
    held) or its CANCEL (nothing held any more). See calendars.series_ics. The space's
    operator members who want booking mails get one notice of it too."""
    if kind not in (KIND_SERIES_CONFIRMATION, KIND_SERIES_UPDATE, KIND_SERIES_CANCELLATION):
        raise ValueError(kind)
    first = bookings[0]
    cancelling = kind != KIND_SERIES_CONFIRMATION
    if cancelling:
        for booking in bookings:
            _drop_reminders(session, booking)
    method = calendars.METHOD_CANCEL if kind == KIND_SERIES_CANCELLATION else \
        calendars.METHOD_REQUEST
    ics = calendars.series_ics(series, method)
    space, unit, loc = first.unit.space, first.unit, first.locale
    rows = []
    with force_locale(loc):
        what = series_label(series, loc)
        subject = _one_line(_series_subject(kind, space.display_name(loc), what))
        context = {"kind": kind, "series": series, "bookings": list(bookings),
                   "kept": list(kept), "space": space, "unit": unit, "what": what, "loc": loc,
                   "url": calendars.series_url(series),
                   "location": calendars.location_of(space, loc)}
        for email, name in calendars.recipients(first):
            text = render_template("series/mail/message.txt", recipient_name=name, **context)
            html = render_template("series/mail/message.html", recipient_name=name, **context)
            row = OutboxMessage(kind=kind, recipient=email, subject=subject[:300],
                                message=message_bytes(_mime(text, html, ics, method),
                                                      subject, email),
                                booking_id=first.id, next_attempt_at=clock.now())
            session.add(row)
            rows.append(row)
    operator_kind = "operator_" + (KIND_SERIES_CONFIRMATION if not cancelling
                                   else KIND_SERIES_CANCELLATION)
    for user in operator_recipients(session, first):
        ulang = user.locale if user.locale in ("ja", "en") else "ja"

        def values(user=user, ulang=ulang) -> dict:
            return {"series": series, "bookings": list(bookings), "kept": list(kept),
                    "space": space, "unit": unit, "what": series_label(series, ulang),
                    "cancelled": cancelling, "recipient_name": user.name,
                    "company": first.company,
                    "note": reason_for_mail(first.note, _("[リンク省略]"), NOTE_MAIL_MAX)
                    if first.note else ""}

        def title(ulang=ulang, cancelling=cancelling) -> str:
            what = series_label(series, ulang)
            name = space.display_name(ulang)
            if cancelling:
                return _("【定期予約のキャンセル】%(space)s %(what)s", space=name, what=what)
            return _("【新しい定期予約】%(space)s %(what)s", space=name, what=what)

        rows.append(enqueue_notice(session, operator_kind, user.email, ulang,
                                   "series/mail/operator", title, values, booking_id=first.id))
    return rows


def series_label(series, locale: str) -> str:
    """'毎週水曜日 2026年12月9日(水)〜2027年3月3日(水)', 'Every Wednesday, … – …' (call
    it inside the locale: the weekday names are translated)."""
    from booking.formatting import local_date
    from booking.labels import weekday_name

    days = sorted(int(d) for d in series.weekdays)
    if days == [0, 1, 2, 3, 4]:
        every = _("毎週平日(月〜金)")
    else:
        separator = "・" if locale == "ja" else ", "
        every = _("毎週%(days)s", days=separator.join(weekday_name(d) for d in days))
    return _("%(every)s %(first)s〜%(last)s", every=every,
             first=local_date(series.first_date, locale), last=local_date(series.last_date, locale))


# --------------------------------------------------------------------------- transports


@dataclass
class SmtpSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool  # smtps://: TLS from the start
    starttls: bool  # smtp://…?starttls=1

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"MAIL_URL must be smtp:// or smtps://, not {parts.scheme}://")
        tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            starttls="starttls=1" in parts.query or "starttls=true" in parts.query
            or parts.port == 587,
        )


class SmtpTransport:
    def __init__(self, settings: SmtpSettings, sender: str, timeout: float = 15) -> None:
        self.settings, self.sender, self.timeout = settings, sender, timeout
        self.conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.tls:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout,
                                                  context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(s.host, s.port, timeout=self.timeout)
            if s.starttls:
                conn.starttls(context=ssl.create_default_context())
        if s.username:
            conn.login(s.username, s.password or "")
        return conn

    def send(self, row: Outgoing) -> None:
        if self.conn is None:
            self.conn = self._connect()
        refused = self.conn.sendmail(self.sender, [row.recipient], row.message)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)

    def close(self) -> None:
        """Also after a failure in the middle of a mail transaction: whatever state the
        connection is in, the next message gets a new one."""
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.quit()
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


class FileTransport:
    """Development: each message as an .eml file (open it with any mail client)."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def send(self, row: Outgoing) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{row.id:06d}-{row.kind}.eml"
        path.write_bytes(row.message)
        log.info("mail %s to %s written to %s", row.kind, row.recipient, path)

    def close(self) -> None:
        pass


def transport_from_config(config) -> SmtpTransport | FileTransport:
    if config.get("MAIL_URL"):
        sender = parseaddr(config["MAIL_FROM"])[1]
        return SmtpTransport(SmtpSettings.from_url(config["MAIL_URL"]), sender)
    return FileTransport(config["MAIL_DIR"])


# --------------------------------------------------------------------------- worker


def backoff(attempts: int) -> timedelta:
    """1 min, 2, 4, 8 … at most an hour: an outage delays mail, never loses it."""
    return min(BACKOFF_FIRST * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def max_attempts() -> int:
    """How many attempts a message gets before it is parked (MAIL_MAX_ATTEMPTS). The
    default, 30, is about a day with the backoff above: an SMTP outage of a day parks
    nothing; a message that cannot be sent stops being tried by then."""
    return max(int(current_app.config.get("MAIL_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)), 1)


@dataclass(frozen=True)
class Outgoing:
    """What a transport needs of one message, read before it is sent: no database
    transaction (and on SQLite no lock) is held while SMTP takes its time."""

    id: int
    kind: str
    recipient: str  # the envelope address, in the rule's ASCII form
    message: bytes


def _due() -> sa.ColumnElement[bool]:
    return sa.and_(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None),
                   OutboxMessage.next_attempt_at <= clock.now())


def claim_next(session: Session) -> int | None:
    """Lease ONE due message to this worker (committed: other workers skip it) and count
    the attempt; its id, or None when nothing is due.

    One at a time, so that a worker that is slow on a message, or dies in the middle of
    it, holds only that message back (until its LEASE runs out), never a batch. The
    attempt is counted here, before the send: a message that kills its worker every time
    still reaches MAIL_MAX_ATTEMPTS and is parked (see _deliver)."""
    now = clock.now()
    begin_write(session)
    try:
        query = (sa.select(OutboxMessage.id).where(_due())
                 .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(1))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row_id = session.scalar(query)
        if row_id is not None:
            session.execute(sa.update(OutboxMessage).where(OutboxMessage.id == row_id)
                            .values(next_attempt_at=now + LEASE,
                                    attempts=OutboxMessage.attempts + 1))
        session.commit()
        return row_id
    except BaseException:
        session.rollback()
        raise


def _still_wanted(session: Session, row: OutboxMessage) -> bool:
    if row.kind != KIND_REMINDER:
        return True
    booking = session.get(Booking, row.booking_id) if row.booking_id else None
    return booking is not None and booking.holds_seats and booking.starts_at > clock.now()


def _park(session: Session, row_id: int, reason: str) -> None:
    session.execute(sa.update(OutboxMessage).where(OutboxMessage.id == row_id)
                    .values(failed_at=clock.now(), last_error=reason[:500]))
    session.commit()


def _failed(session: Session, row_id: int, error: BaseException) -> str:
    """Record a failed attempt on its row alone: retried after the backoff, or parked
    once it has had its attempts. Returns "failed" or "parked"."""
    row = session.get(OutboxMessage, row_id, populate_existing=True)
    if row is None:  # deleted meanwhile (a cancelled booking's reminder, personal data)
        session.commit()
        return "failed"
    reason = f"{type(error).__name__}: {error}"[:500]
    parked = row.attempts >= max_attempts()
    if parked:
        row.failed_at = clock.now()
    else:
        row.next_attempt_at = clock.now() + backoff(row.attempts)
    row.last_error = reason
    row_info = (row.id, row.kind, row.recipient, row.attempts)
    session.commit()
    if parked:
        log.error("mail %s (%s to %s) parked after %d attempts: %s", *row_info, reason)
    else:
        log.warning("mail %s (%s to %s) failed (attempt %d): %s", *row_info, reason)
    return "parked" if parked else "failed"


def _prepare(session: Session, row_id: int) -> Outgoing | str:
    """The message of a claimed row, ready to send; or what became of it instead
    ("dropped", "parked", "skipped")."""
    row = session.get(OutboxMessage, row_id, populate_existing=True)
    if row is None or row.sent_at is not None or row.failed_at is not None:
        session.commit()
        return "skipped"
    if not _still_wanted(session, row):
        session.delete(row)  # a reminder of a cancelled or past booking
        session.commit()
        return "dropped"
    if row.attempts > max_attempts():
        # Claimed that many times without an answer: its workers stopped while sending it.
        _park(session, row_id, f"the worker stopped while sending it ({row.attempts - 1} "
                               "attempts); it may or may not have been delivered")
        log.error("mail %s (%s to %s) parked: its worker stopped while sending it, "
                  "%d times", row.id, row.kind, row.recipient, row.attempts - 1)
        return "parked"
    problem = addresses.why_not_sendable(row.recipient)
    if problem is not None:
        # Never sendable (a row written before the address rule, or by hand): no retry.
        _park(session, row_id, problem)
        log.error("mail %s (%s) parked: %s", row_id, row.kind, problem)
        return "parked"
    if not row.message:
        if row.facts:
            _write_from_facts(session, row)  # a booking's mail: from its event's facts
        else:
            _write_reminder(session, row)
    outgoing = Outgoing(row.id, row.kind, addresses.normalise(row.recipient), row.message)
    session.commit()  # ends the read transaction before SMTP
    return outgoing


def _deliver(session: Session, transport, row_id: int) -> str:
    """Build and send one claimed message. ANY exception while doing so fails this
    message only ("failed", retried with backoff; "parked" after its attempts); the
    worker goes on with the next. An error while recording the outcome (the database
    gone) is not the message's fault and is raised; the lease brings the row back."""
    try:
        outgoing = _prepare(session, row_id)
        if isinstance(outgoing, str):
            return outgoing
        transport.send(outgoing)
    except Exception as error:  # any exception: one message must not stop the worker
        session.rollback()
        transport.close()  # the connection may be mid-transaction: start afresh
        return _failed(session, row_id, error)
    except BaseException:
        # Stopped (Ctrl-C, SIGTERM turned into SystemExit): hand the message back at
        # once instead of after the lease. It may have been sent: at least once.
        session.rollback()
        with contextlib.suppress(Exception):
            session.execute(sa.update(OutboxMessage).where(OutboxMessage.id == row_id)
                            .values(next_attempt_at=clock.now()))
            session.commit()
        raise
    session.execute(sa.update(OutboxMessage).where(OutboxMessage.id == row_id)
                    .values(sent_at=clock.now(), last_error=""))
    session.commit()
    return "sent"


class Counts(dict):
    """sent / failed / dropped of one round (failed includes the messages parked in it,
    which `parked` counts again)."""

    parked: int = 0


def run_once(session: Session, transport=None, limit: int = 50) -> Counts:
    """Send up to `limit` due messages, one claimed at a time; returns counts of sent,
    failed (retried later or parked) and dropped messages."""
    transport = transport or transport_from_config(current_app.config)
    counts = Counts(sent=0, failed=0, dropped=0)
    try:
        for _ in range(limit):
            row_id = claim_next(session)
            if row_id is None:
                break
            outcome = _deliver(session, transport, row_id)
            if outcome == "parked":
                counts.parked += 1
                outcome = "failed"
            if outcome in counts:
                counts[outcome] += 1
    finally:
        transport.close()
    return counts


# --------------------------------------------------------------------------- what the admin sees


STATES = ("queued", "retrying", "parked", "sent")


def _state() -> sa.Case:
    return sa.case(
        (OutboxMessage.sent_at.is_not(None), "sent"),
        (OutboxMessage.failed_at.is_not(None), "parked"),
        (OutboxMessage.last_error != "", "retrying"),
        else_="queued")


def counts_by_state(session: Session) -> dict[str, int]:
    """How many messages are queued (not yet tried, or due later), retrying (failed at
    least once, tried again after the backoff), parked (given up, a site admin decides)
    and sent."""
    state = _state().label("state")
    found = {str(name): int(count) for name, count in
             session.execute(sa.select(state, sa.func.count()).group_by(state))}
    return {name: int(found.get(name, 0)) for name in STATES}


def parked(session: Session, limit: int = 200) -> list[tuple[OutboxMessage, str | None]]:
    """The parked messages, the latest first, each with its booking's reference."""
    return [(row, reference) for row, reference in session.execute(
        sa.select(OutboxMessage, Booking.reference)
        .outerjoin(Booking, Booking.id == OutboxMessage.booking_id)
        .where(OutboxMessage.failed_at.is_not(None))
        .order_by(OutboxMessage.failed_at.desc(), OutboxMessage.id.desc()).limit(limit))]


def retry_parked(session: Session, message_id: int, actor: User) -> OutboxMessage:
    """A site admin sends a parked message again: due now, with a fresh count of attempts
    (the last reason stays until it is sent). "not_found" when it is not parked."""
    row = session.scalar(sa.select(OutboxMessage).where(
        OutboxMessage.id == message_id, OutboxMessage.failed_at.is_not(None),
        OutboxMessage.sent_at.is_(None)).with_for_update())
    if row is None:
        raise DomainError("not_found")
    row.failed_at = None
    row.attempts = 0
    row.next_attempt_at = clock.now()
    audit.record(session, actor, "outbox.retry", row, None, kind=row.kind,
                 recipient=row.recipient, reason=row.last_error)
    session.flush()
    return row


def pending(session: Session) -> Sequence[OutboxMessage]:
    return session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
        .order_by(OutboxMessage.id)).all()


@click.group("outbox")
def outbox_cli() -> None:
    """The mail outbox."""


@outbox_cli.command("run")
@click.option("--once", is_flag=True, help="Send what is due and stop.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between rounds.")
@click.option("--batch", default=50, show_default=True, help="Messages sent per round at most.")
@with_appcontext
def run_command(once: bool, interval: float, batch: int) -> None:
    """The mail worker: sends due messages, retries failures with backoff, parks a
    message that keeps failing (see `flask outbox status`); each round it first runs the
    scheduled jobs (booking.services.jobs: no-show release, the morning digest, …)."""
    from booking.extensions import db
    from booking.services import jobs

    while True:
        try:  # the scheduled jobs first (their mail goes out in this round); never fatal
            jobs.run_due(db.session())
        except Exception:
            log.exception("scheduled jobs failed; the mail goes on")
        try:
            counts = run_once(db.session(), limit=batch)
        except Exception:  # the database or the transport as a whole
            if once:
                raise
            log.exception("outbox round failed; trying again in %s s", interval)
            counts = None
        if counts is not None and (any(counts.values()) or once):
            line = (f"outbox: sent={counts['sent']} failed={counts['failed']} "
                    f"dropped={counts['dropped']}")
            click.echo(line + (f" (parked={counts.parked})" if counts.parked else ""))
        db.session.remove()
        if once:
            return
        time.sleep(interval)


@outbox_cli.command("status")
@with_appcontext
def status_command() -> None:
    """Messages by state, and every parked message with its reason."""
    from booking.extensions import db

    counts = counts_by_state(db.session())
    click.echo(f"outbox: pending: {counts['queued'] + counts['retrying']} (queued: "
               f"{counts['queued']}, retrying: {counts['retrying']}), parked: {counts['parked']}, "
               f"sent: {counts['sent']}")
    rows = parked(db.session(), limit=1000)
    if rows:
        click.echo("parked (retry one on /admin/outbox):")
    for row, booking_reference in rows:
        when = local_stamp(row.failed_at) if row.failed_at else "?"
        reference = f" booking {booking_reference}" if booking_reference else ""
        click.echo(f"  #{row.id} {row.kind} to {row.recipient}{reference}, parked {when} "
                   f"after {row.attempts} attempts: {row.last_error}")
    retrying = [row for row in pending(db.session()) if row.last_error]
    for row in retrying:
        click.echo(f"  retrying #{row.id} {row.kind} to {row.recipient}: "
                   f"attempts={row.attempts} {row.last_error}")


# --------------------------------------------------------------------------- the operator's mails

OPERATOR_KINDS = {KIND_CONFIRMATION: "operator_confirmation", KIND_UPDATE: "operator_update",
                  KIND_CANCELLATION: "operator_cancellation"}
NOTE_MAIL_MAX = 500  # the whole note (Booking.note keeps 500 characters)


def operator_recipients(session: Session, booking: Booking | None = None, *,
                        operator_id: int | sa.ColumnElement[int] | None = None) -> list[User]:
    """Who at the space's operator is told of the booking: every member (owners and
    staff) who keeps User.notify_bookings on and has verified their address. Verified,
    because the mail carries a customer's booking and note: an address nobody has proven
    to be theirs gets none of it (the booker's own confirmation is theirs to have).
    `operator_id`: the space's organisation (or SQL giving it), for a booking not made yet
    (reservations.book reads them before its lock)."""
    from booking.models import Membership

    if operator_id is None:
        assert booking is not None
        operator_id = booking.unit.space.organisation_id
    return list(session.scalars(
        sa.select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == operator_id,
               User.notify_bookings.is_(True), User.email_verified_at.is_not(None))
        .order_by(User.id)))


def _operator_subject(kind: str, space: str, when: str) -> str:
    if kind == KIND_CONFIRMATION:
        return _("【新しい予約】%(space)s %(when)s", space=space, when=when)
    if kind == KIND_UPDATE:
        return _("【予約の変更】%(space)s %(when)s", space=space, when=when)
    return _("【予約のキャンセル】%(space)s %(when)s", space=space, when=when)


def render_for_operator(kind: str, booking: Booking, user: User) -> Rendered:
    """One operator member's message about a booking of their space, in their language
    (User.locale), with the company's note to the facility. Text and HTML only: no .ics,
    since staff are not invited to the customer's booking (a REQUEST to a non-attendee
    makes calendar clients offer to accept it as their own); the space's calendar feed
    (services/exports.py) is the way to have bookings in a calendar."""
    loc = user.locale if user.locale in ("ja", "en") else "ja"
    space = booking.unit.space
    day = booking.starts_at.astimezone(clock.TOKYO).date().isoformat()
    with force_locale(loc):
        when = local_period(booking.starts_at, booking.ends_at, loc)
        subject = _one_line(_operator_subject(kind, space.display_name(loc), when))
        context = {
            "kind": kind, "booking": booking, "space": space, "unit": booking.unit,
            "when": when, "loc": loc, "recipient_name": user.name,
            "day_url": f"{calendars.public_url()}/operator/spaces/{space.id}/day?day={day}",
            # User text from the company, mailed: plain, without links (the day list and
            # the CSV show it as written).
            "note": reason_for_mail(booking.note, _("[リンク省略]"), NOTE_MAIL_MAX)
            if booking.note else "",
            "reason": reason_for_mail(booking.cancel_reason, _("[リンク省略]"))
            if kind == KIND_CANCELLATION and booking.cancel_reason else "",
        }
        text = render_template("operator/mail/booking.txt", **context)
        html = render_template("operator/mail/booking.html", **context)
    return Rendered(user.email, subject, message_bytes(mime_text(text, html), subject, user.email))


def _operator_rows(session: Session, kind: str, booking: Booking, facts: dict,
                   company: tuple[str, str] | None = None,
                   operators: Sequence[tuple[str, str, str]] | None = None) -> list[dict]:
    """A new, changed or cancelled booking, told to the space's operator members who want
    it (operator_recipients; `operators`: their (email, name, locale) as the caller read
    them): one outbox row each, in the booking's transaction, like the company's own
    mails, rendered by the worker from the same facts (with the booking's company, which
    only these mails name); a bad address fails its own row only (the worker parks it)."""
    if operators is None:
        operators = [(u.email, u.name, u.locale) for u in operator_recipients(session, booking)]
    if not operators:
        return []
    facts = {**facts, "company": _company_facts(booking, company)}
    return [_row(OPERATOR_KINDS[kind], email, booking.id,
                 facts={**facts, "to": [email, name, locale]})
            for email, name, locale in operators]


def enqueue_for_operators(session: Session, kind: str, booking: Booking) -> None:
    """The operator members' rows of _operator_rows, on their own."""
    _rows(session, _operator_rows(session, kind, booking, booking_facts(booking)))


# --------------------------------------------------------------------------- notices


def enqueue_notice(session: Session, kind: str, recipient: str, locale: str, template: str,
                   subject: Callable[[], str], context: dict | Callable[[], dict],
                   booking_id: int | None = None) -> OutboxMessage:
    """One plain notice (text and HTML, no calendar file) to one address, rendered now in
    `locale` from `<template>.txt` and `<template>.html`, written to the outbox in the
    caller's transaction (same guarantees as a confirmation). `subject` (and `context`,
    when it is a function: for text it translates) is called inside the locale. The one
    way every notice family (consents, invitations, waitlist offers, released seats,
    digests) writes its mail."""
    loc = locale if locale in ("ja", "en") else "ja"
    with force_locale(loc):
        title = _one_line(subject())
        values = {"loc": loc, **(context() if callable(context) else context)}
        text = render_template(f"{template}.txt", **values)
        html = render_template(f"{template}.html", **values)
    row = OutboxMessage(kind=kind, recipient=recipient, subject=title[:300],
                        message=message_bytes(mime_text(text, html), title, recipient),
                        booking_id=booking_id, next_attempt_at=clock.now())
    session.add(row)
    return row

