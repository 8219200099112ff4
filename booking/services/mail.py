"""The transactional outbox: mail is written in the booking's transaction, sent by a worker.

- enqueue_confirmation / enqueue_update / enqueue_cancellation are called by
  reservations inside the transaction that decides the booking: if it rolls back, no mail;
  if it commits, the mail is in the outbox even if SMTP is down.
- Each person invited (the booker and every attendee) gets a message of their own, To
  them, multipart/mixed → multipart/alternative [text/plain, text/html,
  text/calendar; method=REQUEST|CANCEL; charset=UTF-8] + the same .ics attached.
- Messages are rendered in that transaction, from the booking as the event left it: a
  later change cannot rewrite an earlier mail, and the row holds the final bytes. (The
  worker could render them instead only from a snapshot stored with the row; the
  outbox has no column for one.)
- A reminder is queued for REMINDER_HOURS_BEFORE hours before the start (due in the
  outbox's next_attempt_at; its message is written by the worker when due); a change
  moves it, a cancellation deletes it, and the worker drops any reminder whose booking no
  longer holds seats.
- `flask outbox run` (the worker): claims due rows (PostgreSQL: FOR UPDATE SKIP LOCKED, so
  several workers share the work; SQLite: an IMMEDIATE transaction) by leasing them for a
  few minutes, sends them through SMTP (MAIL_URL) or writes .eml files into MAIL_DIR
  (no MAIL_URL: development), marks them sent, and on failure retries with exponential
  backoff (1 min, 2, 4 … up to 1 h). Delivery is at least once.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.encoders import encode_base64
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from pathlib import Path
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
from booking.models import Booking, OutboxMessage
from booking.services import calendars
from booking.services.availability import TOKYO

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # a claimed row is retried after this if its worker died
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)
KIND_CONFIRMATION = "confirmation"
KIND_UPDATE = "update"
KIND_CANCELLATION = "cancellation"
KIND_REMINDER = "reminder"
SMTP_POLICY = compat32.clone(linesep="\r\n")  # the wire format: CRLF line ends


# --------------------------------------------------------------------------- building


def _date_label(booking: Booking) -> str:
    start = booking.starts_at.astimezone(TOKYO)
    end = booking.ends_at.astimezone(TOKYO)
    if booking.locale == "ja":
        weekdays = "月火水木金土日"
        first = f"{start.year}年{start.month}月{start.day}日({weekdays[start.weekday()]})"
        if end.date() == start.date():
            return f"{first} {start:%H:%M}–{end:%H:%M}"
        last = f"{end.month}月{end.day}日({weekdays[end.weekday()]})"
        return f"{first} {start:%H:%M} – {last} {end:%H:%M}"
    if end.date() == start.date():
        return f"{start:%a %d %b %Y} {start:%H:%M}–{end:%H:%M}"
    return f"{start:%a %d %b %Y %H:%M} – {end:%a %d %b %Y %H:%M}"


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


def render(kind: str, booking: Booking, people: Sequence[tuple[str, str]]) -> list[Rendered]:
    """The message of each person in `people` ((email, name), To them), describing the
    booking as it is now, at the event: it is rendered inside the booking's transaction.

    What all of them share (subject, date, the iCalendar part) is made once. The MIME tree
    is built with the email package's compat32 classes: the same structure as the
    EmailMessage API, at about a third of its CPU time (its header registry parses and
    refolds every header), which is paid while the unit's row lock is held."""
    config = current_app.config
    sender = formataddr(parseaddr(config["MAIL_FROM"]), charset="utf-8")
    sender_domain = parseaddr(config["MAIL_FROM"])[1].rpartition("@")[2] or "localhost"
    method = {KIND_CANCELLATION: calendars.METHOD_CANCEL}.get(kind, calendars.METHOD_REQUEST)
    ics = calendars.booking_ics(booking, method) if kind != KIND_REMINDER else None
    made = []
    with force_locale(booking.locale):
        subject = _one_line(_subject(kind, booking))
        context = {
            "kind": kind, "booking": booking, "space": booking.unit.space,
            "unit": booking.unit, "when": _date_label(booking),
            "url": calendars.booking_url(booking), "ics_url": calendars.ics_url(booking),
            "location": calendars.location_of(booking.unit.space, booking.locale),
            "loc": booking.locale,
        }
        for email, name in people:
            text = render_template("bookings/mail/message.txt", recipient_name=name, **context)
            html = render_template("bookings/mail/message.html", recipient_name=name, **context)
            msg = _mime(text, html, ics, method)
            msg["Subject"] = Header(subject, "utf-8")
            msg["From"] = sender
            msg["To"] = _one_line(email)
            msg["Date"] = formatdate(localtime=False)
            msg["Message-ID"] = make_msgid(domain=sender_domain)
            msg["Auto-Submitted"] = "auto-generated"
            made.append(Rendered(email, subject, msg.as_bytes(policy=SMTP_POLICY)))
    return made


def _mime(text: str, html: str, ics: bytes | None, method: str) -> Message:
    """multipart/alternative [text/plain, text/html(, text/calendar)], and with a calendar
    the same .ics attached beside it in a multipart/mixed."""
    parts: list[Message] = [MIMEText(text, "plain", "utf-8"), MIMEText(html, "html", "utf-8")]
    if ics is None:
        return MIMEMultipart("alternative", _subparts=parts)
    # The method parameter must equal METHOD in the body (Outlook rejects a mismatch);
    # base64 keeps the CRLF line ends and folding exact.
    calendar = MIMEBase("text", "calendar", method=method, charset="UTF-8")
    calendar.set_payload(ics)
    encode_base64(calendar)
    attachment = MIMEApplication(ics, "ics")
    attachment.add_header("Content-Disposition", "attachment",
                          filename="invite.ics" if method == "REQUEST" else "cancel.ics")
    return MIMEMultipart("mixed", _subparts=[
        MIMEMultipart("alternative", _subparts=[*parts, calendar]), attachment])


def _enqueue(session: Session, kind: str, booking: Booking, *,
             due: datetime | None = None) -> list[OutboxMessage]:
    rows = []
    for done in render(kind, booking, calendars.recipients(booking)):
        row = OutboxMessage(kind=kind, recipient=done.recipient, subject=done.subject[:300],
                            message=done.message, booking_id=booking.id,
                            next_attempt_at=due or clock.now())
        session.add(row)
        rows.append(row)
    return rows


def _drop_reminders(session: Session, booking: Booking) -> None:
    session.execute(sa.delete(OutboxMessage).where(
        OutboxMessage.booking_id == booking.id, OutboxMessage.kind == KIND_REMINDER,
        OutboxMessage.sent_at.is_(None)))


def schedule_reminder(session: Session, booking: Booking) -> list[OutboxMessage]:
    """The day-before reminder; none when that moment has already passed.

    Its message is left empty here and written by the worker when it is due, from the
    booking as it is then (and kept, so that a retry sends the same bytes): it costs the
    booking transaction nothing, and says what is true the day before."""
    hours = int(current_app.config.get("REMINDER_HOURS_BEFORE", 24))
    due = booking.starts_at - timedelta(hours=hours)
    if due <= clock.now():
        return []
    rows = []
    for email, _name in calendars.recipients(booking):
        row = OutboxMessage(kind=KIND_REMINDER, recipient=email, subject="", message=b"",
                            booking_id=booking.id, next_attempt_at=due)
        session.add(row)
        rows.append(row)
    return rows


def _write_reminder(session: Session, row: OutboxMessage) -> None:
    booking = session.get(Booking, row.booking_id)
    people = dict(calendars.recipients(booking))
    [done] = render(KIND_REMINDER, booking, [(row.recipient, people.get(row.recipient, ""))])
    row.subject, row.message = done.subject[:300], done.message
    session.commit()


def enqueue_confirmation(session: Session, booking: Booking) -> None:
    _enqueue(session, KIND_CONFIRMATION, booking)
    schedule_reminder(session, booking)


def enqueue_update(session: Session, booking: Booking) -> None:
    _enqueue(session, KIND_UPDATE, booking)
    _drop_reminders(session, booking)
    schedule_reminder(session, booking)


def enqueue_cancellation(session: Session, booking: Booking) -> None:
    _enqueue(session, KIND_CANCELLATION, booking)
    _drop_reminders(session, booking)


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

    def send(self, row: OutboxMessage) -> None:
        if self.conn is None:
            self.conn = self._connect()
        refused = self.conn.sendmail(self.sender, [row.recipient], row.message)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.conn.quit()
            self.conn = None


class FileTransport:
    """Development: each message as an .eml file (open it with any mail client)."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def send(self, row: OutboxMessage) -> None:
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


def claim(session: Session, limit: int = 50) -> list[int]:
    """Lease due rows to this worker; returns their ids (committed: others skip them)."""
    now = clock.now()
    begin_write(session)
    try:
        query = (
            sa.select(OutboxMessage.id)
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if ids:
            session.execute(sa.update(OutboxMessage).where(OutboxMessage.id.in_(ids))
                            .values(next_attempt_at=now + LEASE,
                                    attempts=OutboxMessage.attempts + 1))
        session.commit()
        return ids
    except BaseException:
        session.rollback()
        raise


def _still_wanted(session: Session, row: OutboxMessage) -> bool:
    if row.kind != KIND_REMINDER:
        return True
    booking = session.get(Booking, row.booking_id) if row.booking_id else None
    return booking is not None and booking.holds_seats and booking.starts_at > clock.now()


def run_once(session: Session, transport=None, limit: int = 50) -> dict[str, int]:
    """Send what is due now; returns counts of sent, failed and dropped messages."""
    transport = transport or transport_from_config(current_app.config)
    counts = {"sent": 0, "failed": 0, "dropped": 0}
    ids = claim(session, limit)
    try:
        for row_id in ids:
            row = session.get(OutboxMessage, row_id)
            if row is None or row.sent_at is not None:
                continue
            if not _still_wanted(session, row):
                session.delete(row)  # a reminder of a cancelled or past booking
                session.commit()
                counts["dropped"] += 1
                continue
            if not row.message:
                _write_reminder(session, row)
            try:
                transport.send(row)
            except (smtplib.SMTPException, OSError) as error:
                transport.close()  # a broken connection: reconnect for the next one
                row.next_attempt_at = clock.now() + backoff(row.attempts)
                row.last_error = f"{type(error).__name__}: {error}"[:500]
                session.commit()
                counts["failed"] += 1
                log.warning("mail %s to %s failed (attempt %d): %s", row.id, row.recipient,
                            row.attempts, error)
                continue
            row.sent_at = clock.now()
            row.last_error = ""
            session.commit()
            counts["sent"] += 1
    finally:
        transport.close()
    return counts


def pending(session: Session) -> Sequence[OutboxMessage]:
    return session.scalars(sa.select(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
                           .order_by(OutboxMessage.id)).all()


@click.group("outbox")
def outbox_cli() -> None:
    """The mail outbox."""


@outbox_cli.command("run")
@click.option("--once", is_flag=True, help="Send what is due and stop.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between rounds.")
@click.option("--batch", default=50, show_default=True, help="Messages claimed per round.")
@with_appcontext
def run_command(once: bool, interval: float, batch: int) -> None:
    """The mail worker: sends due messages, retries failures with backoff."""
    from booking.extensions import db

    while True:
        counts = run_once(db.session, limit=batch)
        if counts["sent"] or counts["failed"] or counts["dropped"] or once:
            click.echo(f"outbox: sent={counts['sent']} failed={counts['failed']} "
                       f"dropped={counts['dropped']}")
        db.session.remove()
        if once:
            return
        time.sleep(interval)


@outbox_cli.command("status")
@with_appcontext
def status_command() -> None:
    """How many messages wait, and the last error of each failing one."""
    from booking.extensions import db

    rows = pending(db.session)
    click.echo(f"outbox: {len(rows)} pending")
    for row in rows:
        if row.last_error:
            click.echo(f"  #{row.id} {row.kind} to {row.recipient}: attempts={row.attempts} "
                       f"{row.last_error}")
