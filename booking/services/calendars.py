"""iCalendar output: invitations (REQUEST), cancellations (CANCEL), downloads and feeds
(PUBLISH), written with the icalendar library as shared/ICALENDAR.md describes.

- One event per booking, UID `<reference>@booking.telework` for its whole life, SEQUENCE
  from the booking (raised by every change and by the cancellation), DTSTAMP now.
- Times in Asia/Tokyo with its VTIMEZONE (add_missing_timezones); never floating times.
  Day bookings use the opening hours, not all-day events.
- ORGANIZER is the facility (CN = its name, always quoted: ical4j drops unquoted
  non-ASCII CNs); ATTENDEE lines on invitations and cancellations only, never in feeds.
- LOCATION (address), GEO, URL (the booking's page), DESCRIPTION (seats, price, access,
  reference), SUMMARY in the booker's language.

Feed secrets: a user, a company and a space each may have a secret; `/calendar/<secret>.ics`
finds its owner in the three tables. Renewing replaces it (the old URL stops working at
once); revoking removes it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from flask import current_app, has_app_context
from flask_babel import force_locale
from flask_babel import gettext as _
from icalendar import Calendar, Event, Timezone, vCalAddress, vText
from icalendar.parser import Parameters
from sqlalchemy.orm import Session, selectinload

from booking.models import (
    HOLDING_STATUSES,
    Booking,
    BookingStatus,
    Organisation,
    Space,
    Unit,
    User,
    utcnow,
)
from booking.prefectures import by_code
from booking.services.availability import TOKYO

PRODID = "-//Telework Space Booking//telework-booking 1.0//JA"
UID_DOMAIN = "booking.telework"
FEED_REFRESH = timedelta(hours=1)
FEED_PAST = timedelta(days=90)  # how far back a feed lists bookings
FEED_OWNERS = (User, Organisation, Space)

METHOD_REQUEST = "REQUEST"
METHOD_CANCEL = "CANCEL"
METHOD_PUBLISH = "PUBLISH"


class _QuotedCN(Parameters):
    """Parameters whose CN is always in double quotes (non-ASCII names, ical4j clients)."""

    always_quoted = (*Parameters.always_quoted, "CN")


def _setting(name: str, default: str) -> str:
    if has_app_context():
        return current_app.config.get(name) or default
    return default


def public_url() -> str:
    return _setting("PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")


def booking_url(booking: Booking) -> str:
    return f"{public_url()}/bookings/{booking.reference}"


def ics_url(booking: Booking) -> str:
    return f"{booking_url(booking)}.ics"


def feed_url(secret: str) -> str:
    return f"{public_url()}/calendar/{secret}.ics"


def webcal_url(secret: str) -> str:
    """The same feed as webcal:// (calendar apps subscribe on a click)."""
    parts = urlsplit(feed_url(secret))
    return urlunsplit(("webcal", parts.netloc, parts.path, "", ""))


def uid_of(booking: Booking) -> str:
    return f"{booking.reference.lower()}@{UID_DOMAIN}"


def organizer_email() -> str:
    return parseaddr(_setting("MAIL_FROM", "noreply@telework.example.jp"))[1] or \
        "noreply@telework.example.jp"


def _address(email: str, name: str = "", **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{email}")
    values = {k.upper().replace("_", "-"): v for k, v in params.items()}
    if name:
        values["CN"] = name
    address.params = _QuotedCN(values)
    return address


def location_of(space: Space, locale: str = "ja") -> str:
    prefecture = by_code(space.prefecture_code)
    pref_name = ""
    if prefecture is not None:
        pref_name = prefecture.name if locale == "ja" else prefecture.name_en
    address = f"{pref_name}{space.address}" if locale == "ja" else \
        ", ".join(p for p in (space.address, pref_name) if p)
    return f"{space.display_name(locale)}, {address}"


def recipients(booking: Booking) -> list[tuple[str, str]]:
    """(email, name) of everyone invited: the booker first, then each attendee."""
    people: list[tuple[str, str]] = []
    if booking.user is not None:
        people.append((booking.user.email, booking.user.name))
    for attendee in booking.attendees:
        if attendee.email not in [p[0] for p in people]:
            people.append((attendee.email, attendee.name))
    return people


def _yen(amount: int) -> str:
    return _("無料") if amount == 0 else f"¥{amount:,}"


def summary_of(booking: Booking) -> str:
    unit, space = booking.unit, booking.unit.space
    loc = booking.locale
    with _locale(loc):
        if booking.status == BookingStatus.CANCELLED:
            return _("【キャンセル】%(space)s %(unit)s", space=space.display_name(loc),
                     unit=unit.display_name(loc))
        return _("予約: %(space)s %(unit)s", space=space.display_name(loc),
                 unit=unit.display_name(loc))


def description_of(booking: Booking) -> str:
    unit, space = booking.unit, booking.unit.space
    loc = booking.locale
    with _locale(loc):
        lines = [
            _("予約番号: %(ref)s", ref=booking.reference),
            _("区画: %(unit)s", unit=unit.display_name(loc)),
            _("席数: %(n)d", n=booking.seats),
            _("料金: %(price)s", price=_yen(booking.price_amount)),
        ]
        if booking.subsidy_amount:
            lines.append(_("自治体の負担: %(amount)s", amount=_yen(booking.subsidy_amount)))
        if space.display_access(loc):
            lines.append(_("アクセス: %(access)s", access=space.display_access(loc)))
        if booking.status == BookingStatus.CANCELLED:
            lines.append(_("この予約はキャンセルされました。"))
        lines.append(_("予約の確認・変更: %(url)s", url=booking_url(booking)))
    return "\n".join(lines)


class _locale:  # noqa: N801 — a context manager used like a function
    """force_locale when an app is there (bench and tests always have one)."""

    def __init__(self, locale: str) -> None:
        self.inner = force_locale(locale) if has_app_context() else None

    def __enter__(self):
        if self.inner is not None:
            self.inner.__enter__()
        return self

    def __exit__(self, *exc):
        if self.inner is not None:
            return self.inner.__exit__(*exc)
        return False


def event_for(booking: Booking, method: str, *, stamp: datetime | None = None) -> Event:
    """The VEVENT of a booking for a METHOD (ATTENDEE only on REQUEST and CANCEL)."""
    space = booking.unit.space
    event = Event()
    event.add("uid", uid_of(booking))
    event.add("dtstamp", (stamp or utcnow()).astimezone(UTC))
    event.add("sequence", booking.sequence)
    event.add("dtstart", booking.starts_at.astimezone(TOKYO))
    event.add("dtend", booking.ends_at.astimezone(TOKYO))
    event.add("summary", summary_of(booking))
    event.add("location", location_of(space, booking.locale))
    if space.lat is not None and space.lon is not None:
        event.add("geo", (space.lat, space.lon))
    event.add("url", booking_url(booking))
    event.add("description", description_of(booking))
    cancelled = booking.status == BookingStatus.CANCELLED or method == METHOD_CANCEL
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    event.add("created", booking.created_at)
    event.add("last-modified", booking.updated_at or booking.created_at)
    event.add("organizer", _address(organizer_email(), space.display_name(booking.locale)))
    if method in (METHOD_REQUEST, METHOD_CANCEL):
        for email, name in recipients(booking):
            event.add("attendee", _address(email, name, role="REQ-PARTICIPANT",
                                           partstat="ACCEPTED", cutype="INDIVIDUAL",
                                           rsvp="FALSE"))
    return event


def _calendar(method: str, name: str | None = None) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    if name:
        # As TEXT explicitly: the library types NAME/X-WR-CALNAME so that a CR/LF in a
        # company or space name is not escaped and serialising fails (a 500 on the feed).
        cal.add("name", vText(name))
        cal.add("x-wr-calname", vText(name))
    return cal


_VTIMEZONES: dict[str, Timezone] = {}


def _finish(cal: Calendar) -> bytes:
    """Add the VTIMEZONE of every TZID used, then serialise (CRLF, folded lines).

    Generating a VTIMEZONE from zoneinfo takes ~0.2 s, inside the booking transaction; so
    each is made once per process (by the library's own from_tzid, as
    add_missing_timezones would) and reused."""
    for tzid in sorted(cal.get_missing_tzids()):
        if tzid not in _VTIMEZONES:
            _VTIMEZONES[tzid] = Timezone.from_tzid(tzid)
        cal.subcomponents.insert(0, _VTIMEZONES[tzid])
    cal.add_missing_timezones()  # whatever is still missing (nothing, normally)
    return cal.to_ical()


def booking_ics(booking: Booking, method: str = METHOD_PUBLISH) -> bytes:
    """One booking as a calendar: REQUEST (mail), CANCEL (mail) or PUBLISH (download)."""
    if method not in (METHOD_REQUEST, METHOD_CANCEL, METHOD_PUBLISH):
        raise ValueError(method)
    cal = _calendar(method)
    stamp = None if method != METHOD_PUBLISH else (booking.updated_at or booking.created_at)
    cal.add_component(event_for(booking, method, stamp=stamp))
    return _finish(cal)


def feed_ics(bookings: Iterable[Booking], name: str) -> bytes:
    """A subscription feed: METHOD:PUBLISH, no ATTENDEE, refresh hints for clients."""
    cal = _calendar(METHOD_PUBLISH, name)
    cal.add("refresh-interval", FEED_REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    for booking in bookings:
        cal.add_component(event_for(booking, METHOD_PUBLISH,
                                    stamp=booking.updated_at or booking.created_at))
    return _finish(cal)


# --------------------------------------------------------------------------- feed secrets


def renew_secret(owner: User | Organisation | Space) -> str:
    """A new secret for the owner's feed; the previous URL stops working."""
    owner.calendar_secret = secrets.token_urlsafe(32)
    return owner.calendar_secret


def ensure_secret(owner: User | Organisation | Space) -> str:
    return owner.calendar_secret or renew_secret(owner)


def revoke_secret(owner: User | Organisation | Space) -> None:
    owner.calendar_secret = None


def owner_of(session: Session, secret: str) -> User | Organisation | Space | None:
    """Whose feed this secret opens (a user, a company or a space), if anyone's.

    Secrets are made in several places (account page, operator console, here), all with
    `secrets.token_urlsafe`; each table keeps them unique, so we look in the three."""
    if len(secret) < 20:
        return None
    for model in FEED_OWNERS:
        found = session.scalar(sa.select(model).where(model.calendar_secret == secret))
        if found is not None:
            return found
    return None


def feed_bookings(session: Session, owner: User | Organisation | Space) -> Sequence[Booking]:
    """Bookings a feed lists: those holding seats, from FEED_PAST ago on."""
    query = (
        sa.select(Booking)
        .where(Booking.status.in_(HOLDING_STATUSES), Booking.ends_at >= utcnow() - FEED_PAST)
        .options(selectinload(Booking.unit).selectinload(Unit.space),
                 selectinload(Booking.attendees), selectinload(Booking.user))
        .order_by(Booking.starts_at, Booking.id)
    )
    if isinstance(owner, User):
        query = query.where(Booking.user_id == owner.id)
    elif isinstance(owner, Organisation):
        query = query.where(Booking.company_id == owner.id)
    else:
        query = query.join(Unit, Booking.unit_id == Unit.id).where(Unit.space_id == owner.id)
    return session.scalars(query).all()


def feed_name(owner: User | Organisation | Space, locale: str = "ja") -> str:
    with _locale(locale):
        if isinstance(owner, User):
            return _("%(name)sさんの予約", name=owner.name)
        if isinstance(owner, Organisation):
            return _("%(name)sの予約", name=owner.display_name(locale))
        return _("%(name)sの予約一覧", name=owner.display_name(locale))
