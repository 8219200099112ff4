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

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import NamedTuple, cast
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from flask import current_app, has_app_context, has_request_context
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from icalendar import Calendar, Event, Timezone, vCalAddress, vText
from icalendar.parser import Contentline, Parameters
from sqlalchemy.orm import Session, selectinload

from booking import clock, db
from booking.formatting import yen
from booking.models import (
    HOLDING_STATUSES,
    Booking,
    BookingStatus,
    Organisation,
    Space,
    Unit,
    User,
)
from booking.prefectures import by_code
from booking.services import jobs
from booking.services.availability import TOKYO

PRODID = "-//Telework Space Booking//telework-booking 1.0//JA"
UID_DOMAIN = "booking.telework"
FEED_REFRESH = timedelta(hours=1)
FEED_PAST = timedelta(days=90)  # default of how far back a feed lists bookings
FEED_CACHE_BYTES = 16 * 2**20  # feeds kept in each process's memory, by ETag
FEED_FORMAT = 2  # part of the feeds' ETag: raise it when the events' text changes
FEED_OWNERS = (User, Organisation, Space)

METHOD_REQUEST = "REQUEST"
METHOD_CANCEL = "CANCEL"
METHOD_PUBLISH = "PUBLISH"


class _QuotedCN(Parameters):
    """Parameters whose CN is always in double quotes (non-ASCII names, ical4j clients)."""

    # icalendar leaves the base's tuple unannotated, so mypy takes its length as its type.
    always_quoted = (*Parameters.always_quoted, "CN")  # type: ignore[assignment]


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
            _("料金: %(price)s", price=yen(booking.price_amount)),
        ]
        if booking.subsidy_amount:
            lines.append(_("自治体の負担: %(amount)s", amount=yen(booking.subsidy_amount)))
        if space.display_access(loc):
            lines.append(_("アクセス: %(access)s", access=space.display_access(loc)))
        if booking.status == BookingStatus.CANCELLED:
            lines.append(_("この予約はキャンセルされました。"))
        lines.append(_("予約の確認・変更: %(url)s", url=booking_url(booking)))
    return "\n".join(lines)


class _locale:  # a context manager used like a function
    """force_locale when an app is there (bench and tests always have one), unless in a
    request already in that locale: force_locale drops the loaded translations, and doing
    that twice per event was a fifth of a feed's time. (get_locale needs a request.)"""

    def __init__(self, locale: str) -> None:
        switch = has_app_context() and not (has_request_context() and str(get_locale()) == locale)
        self.inner = force_locale(locale) if switch else None

    def __enter__(self):
        if self.inner is not None:
            self.inner.__enter__()
        return self

    def __exit__(self, *exc):
        if self.inner is not None:
            return self.inner.__exit__(*exc)
        return False


def _event_properties(booking: Booking, method: str, stamp: datetime | None,
                      organizer: str) -> list[tuple[str, object]]:
    """(name, value) of each property of a booking's VEVENT, as Event.add takes them."""
    space = booking.unit.space
    cancelled = booking.status == BookingStatus.CANCELLED or method == METHOD_CANCEL
    props: list[tuple[str, object]] = [
        ("uid", uid_of(booking)),
        ("dtstamp", (stamp or clock.now()).astimezone(UTC)),
        ("sequence", booking.sequence),
        ("dtstart", booking.starts_at.astimezone(TOKYO)),
        ("dtend", booking.ends_at.astimezone(TOKYO)),
        ("summary", summary_of(booking)),
        ("location", location_of(space, booking.locale)),
    ]
    if space.lat is not None and space.lon is not None:
        props.append(("geo", (space.lat, space.lon)))
    props += [
        ("url", booking_url(booking)),
        ("description", description_of(booking)),
        ("status", "CANCELLED" if cancelled else "CONFIRMED"),
        ("transp", "OPAQUE"),
        ("created", booking.created_at.astimezone(UTC)),
        ("last-modified", (booking.updated_at or booking.created_at).astimezone(UTC)),
        ("organizer", _address(organizer, space.display_name(booking.locale))),
    ]
    if method in (METHOD_REQUEST, METHOD_CANCEL):
        for email, name in recipients(booking):
            props.append(("attendee", _address(email, name, role="REQ-PARTICIPANT",
                                               partstat="ACCEPTED", cutype="INDIVIDUAL",
                                               rsvp="FALSE")))
    return props


def event_for(booking: Booking, method: str, *, stamp: datetime | None = None) -> Event:
    """The VEVENT of a booking for a METHOD (ATTENDEE only on REQUEST and CANCEL)."""
    event = Event()
    for name, value in _event_properties(booking, method, stamp, organizer_email()):
        event.add(name, value)
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


def _vtimezone(tzid: str) -> Timezone:
    """The VTIMEZONE of a TZID, made once per process by the library's own from_tzid (as
    add_missing_timezones would): generating one from zoneinfo takes ~0.2 s."""
    if tzid not in _VTIMEZONES:
        _VTIMEZONES[tzid] = Timezone.from_tzid(tzid)
    return _VTIMEZONES[tzid]


def _finish(cal: Calendar) -> bytes:
    """Add the VTIMEZONE of every TZID used, then serialise (CRLF, folded lines)."""
    for tzid in sorted(cal.get_missing_tzids()):
        cal.subcomponents.insert(0, _vtimezone(tzid))
    cal.add_missing_timezones()  # whatever is still missing (nothing, normally)
    return cal.to_ical()


def booking_ics(booking: Booking, method: str = METHOD_PUBLISH, *,
                stamp: datetime | None = None) -> bytes:
    """One booking as a calendar: REQUEST (mail), CANCEL (mail) or PUBLISH (download).
    An occurrence of a recurring series is mailed as that occurrence of the series' event
    (its UID, RECURRENCE-ID: see series_ics); its download is an event of its own.
    `stamp`: a mail's DTSTAMP (the event's time, kept with the outbox row; now by
    default); a download's is the booking's last change."""
    if method not in (METHOD_REQUEST, METHOD_CANCEL, METHOD_PUBLISH):
        raise ValueError(method)
    cal = _calendar(method)
    if method == METHOD_PUBLISH:
        stamp = booking.updated_at or booking.created_at
    if booking.series is not None and method != METHOD_PUBLISH:
        cal.add_component(_occurrence_event(booking.series, booking, method, stamp))
    else:
        cal.add_component(event_for(booking, method, stamp=stamp))
    return _finish(cal)


# --------------------------------------------------------------------------- recurring series

# Why one recurring event (RRULE, EXDATE, RECURRENCE-ID) rather than one invitation per
# occurrence: an iTIP message carries one UID (RFC 5546), so "one invitation per
# occurrence" means one mail per date, twenty for twenty Wednesdays, each accepted on
# its own; and Google Calendar reads only the first event of an invitation. One RRULE
# event is what Outlook and Google themselves send for "every Wednesday": both show it
# as one series, take EXDATE for the dates that could not be booked, and take a CANCEL
# or REQUEST naming the series' UID and one RECURRENCE-ID as "this occurrence only"
# (the way they send it themselves when one occurrence is deleted or moved). So:
# - the series' mail: METHOD:REQUEST, one VEVENT with RRULE:FREQ=WEEKLY;BYDAY=..;UNTIL=..,
#   one EXDATE line per date of the rule not held (not booked, cancelled), and an
#   overriding VEVENT (same UID, RECURRENCE-ID) for each held occurrence whose times differ
#   from the rule's (another weekday's opening hours, a changed occurrence);
# - one occurrence changed or cancelled (reservations.change/cancel, their usual mail):
#   that occurrence alone, UID of the series, RECURRENCE-ID of its date, SEQUENCE the
#   series' plus the booking's own;
# - cancel all: METHOD:CANCEL of the series when nothing of it is held any more, else a
#   REQUEST of the series with the cancelled dates now in EXDATE (the occurrences kept,
#   past their deadline, stay in calendars).
# Times are Asia/Tokyo with the VTIMEZONE, as for single bookings; RRULE's UNTIL is UTC
# (RFC 5545 requires UTC when DTSTART has a TZID). The download of one occurrence's page
# stays an event of its own (an .ics of a lone RECURRENCE-ID is not something clients
# import reliably); the series page offers the whole series as one .ics.

_BYDAY = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def series_url(series) -> str:
    return f"{public_url()}/series/{series.id}"


def series_start_min(series) -> int:
    """The time of day (minutes, Tokyo) of every occurrence the RRULE generates: the
    rule's hours for a unit let by the hour; for one let by the day the opening time of
    the series' first date (other opening hours are overriding VEVENTs)."""
    if series.start_min is not None:
        return int(series.start_min)
    from booking.services.availability import regular_window

    window = regular_window(series.unit, series.first_date)
    if window is not None:
        return (window[0] - window[0].replace(hour=0, minute=0)) // timedelta(minutes=1)
    return 9 * 60


def _series_length(series) -> timedelta:
    if series.start_min is not None and series.end_min is not None:
        return timedelta(minutes=int(series.end_min) - int(series.start_min))
    from booking.services.availability import regular_window

    window = regular_window(series.unit, series.first_date)
    return (window[1] - window[0]) if window is not None else timedelta(hours=9)


def _at(day, minutes: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=TOKYO) + timedelta(minutes=minutes)


def recurrence_id(series, booking: Booking) -> datetime:
    """The RRULE instance a booking of the series is: the rule's time on its date."""
    return _at(booking.starts_at.astimezone(TOKYO).date(), series_start_min(series))


def series_dates(series) -> list:
    """Every date the series' RRULE generates (its weekdays, first to last date)."""
    out, day = [], series.first_date
    while day <= series.last_date:
        if day.weekday() in series.weekdays:
            out.append(day)
        day += timedelta(days=1)
    return out


def _occurrence_event(series, booking: Booking, method: str, stamp: datetime | None) -> Event:
    """One occurrence as an instance of the series' event (UID, RECURRENCE-ID)."""
    event = Event()
    for name, value in _event_properties(booking, method, stamp, organizer_email()):
        if name == "uid":
            value = series.uid
        elif name == "sequence":
            value = int(series.sequence) + int(booking.sequence)
        event.add(name, value)
        if name == "uid":
            event.add("recurrence-id", recurrence_id(series, booking))
    return event


def series_ics(series, method: str = METHOD_PUBLISH, *, stamp: datetime | None = None) -> bytes:
    """The whole series as one recurring event (see above): REQUEST (its mail, and after
    some occurrences were cancelled), CANCEL (nothing of it held any more), PUBLISH (the
    series page's download: no ATTENDEE)."""
    if method not in (METHOD_REQUEST, METHOD_CANCEL, METHOD_PUBLISH):
        raise ValueError(method)
    bookings = sorted(series.bookings, key=lambda b: b.starts_at)
    if not bookings:
        raise ValueError("a series without bookings")
    held = [b for b in bookings if b.holds_seats]
    first = held[0] if held else bookings[0]
    minutes, length = series_start_min(series), _series_length(series)
    start = _at(series.first_date, minutes)
    cal = _calendar(method)
    master = Event()
    for name, value in _event_properties(first, method, stamp, organizer_email()):
        if name == "uid":
            value = series.uid
        elif name == "sequence":
            value = series.sequence
        elif name == "dtstart":
            value = start
        elif name == "dtend":
            value = start + length
        elif name == "url":
            value = series_url(series)
        elif name == "status" and method != METHOD_CANCEL:
            value = "CONFIRMED"
        elif name == "summary" and method != METHOD_CANCEL:
            value = _series_summary(first)
        elif name == "description":
            value = _series_description(series, first, held)
        master.add(name, value)
        if name == "dtend":
            master.add("rrule", {"FREQ": "WEEKLY",
                                 "BYDAY": [_BYDAY[d] for d in sorted(series.weekdays)],
                                 "UNTIL": _at(series.last_date, minutes).astimezone(UTC)})
            held_days = {b.starts_at.astimezone(TOKYO).date() for b in held}
            for day in series_dates(series):
                if day not in held_days:
                    master.add("exdate", _at(day, minutes))
    cal.add_component(master)
    if method != METHOD_CANCEL:
        for booking in held:
            instance = recurrence_id(series, booking)
            if (booking.starts_at, booking.ends_at) != (instance, instance + length) or \
                    booking.sequence:
                cal.add_component(_occurrence_event(series, booking, method, stamp))
    return _finish(cal)


def _series_description(series, first: Booking, held: Sequence[Booking]) -> str:
    """The series' DESCRIPTION: what it holds (not one occurrence's reference and price);
    each date's own page has those."""
    unit, space, loc = first.unit, first.unit.space, first.locale
    with _locale(loc):
        lines = [
            _("区画: %(unit)s", unit=unit.display_name(loc)),
            _("席数: %(n)d", n=series.seats),
            _("予約番号: %(ref)s", ref=", ".join(b.reference for b in held) or "—"),
        ]
        if space.display_access(loc):
            lines.append(_("アクセス: %(access)s", access=space.display_access(loc)))
        lines.append(_("予約の確認・変更: %(url)s", url=series_url(series)))
    return "\n".join(lines)


def _series_summary(booking: Booking) -> str:
    """The series' SUMMARY: the booking's, without a cancelled mark of one occurrence."""
    unit, space, loc = booking.unit, booking.unit.space, booking.locale
    with _locale(loc):
        return _("予約: %(space)s %(unit)s", space=space.display_name(loc),
                 unit=unit.display_name(loc))


def _fold(line: bytes) -> bytes:
    """RFC 5545 folding, as icalendar folds (pieces of at most 74 octets, never inside a
    UTF-8 character, a trailing backslash or ^ kept with what it escapes), on bytes:
    icalendar's own folding goes character by character and was half of a feed's time."""
    pieces = []
    while len(line) > 74:
        cut = 74
        while line[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte: back to its start
            cut -= 1
        if line[cut - 1] in b"\\^":
            cut -= 1
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return b"\r\n ".join(pieces)


def _content_line(name: str, value: object) -> bytes:
    """One property as a folded content line: typed by Event._encode (what Event.add does)
    and written by Contentline.from_parts (what Event.to_ical does)."""
    prop = Event._encode(name, value)
    params = getattr(prop, "params", None) or Parameters()
    return _fold(Contentline.from_parts(name.upper(), params, prop).encode("utf-8"))


def _feed_head(name: str) -> tuple[bytes, bytes]:
    """The calendar around a feed's events (serialised by icalendar as a whole), and its
    last line. A feed needs one VTIMEZONE: _event_properties writes Asia/Tokyo."""
    cal = _calendar(METHOD_PUBLISH, name)
    cal.add("refresh-interval", FEED_REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    cal.add_component(_vtimezone(str(TOKYO)))
    head, end = cal.to_ical(), b"END:VCALENDAR\r\n"
    return head.removesuffix(end), end


def _feed_event(booking: Booking, organizer: str, lines: dict[tuple, bytes]) -> bytes:
    """A booking's VEVENT in a feed, one content line at a time with the library's own
    typing and escaping (_content_line), skipping its per-component machinery that took
    ~4 s for 1,000 bookings. Many lines repeat across a feed (times, place, organiser,
    summary): each distinct line is made once per feed (`lines`)."""
    parts = [b"BEGIN:VEVENT\r\n"]
    stamp = booking.updated_at or booking.created_at
    for prop, value in _event_properties(booking, METHOD_PUBLISH, stamp, organizer):
        line = (prop, repr(value), repr(getattr(value, "params", None)))
        if line not in lines:
            lines[line] = _content_line(prop, value) + b"\r\n"
        parts.append(lines[line])
    parts.append(b"END:VEVENT\r\n")
    return b"".join(parts)


def feed_ics(bookings: Iterable[Booking], name: str) -> bytes:
    """A subscription feed: METHOD:PUBLISH, no ATTENDEE, refresh hints for clients; the
    events by language (one language switch per language), in the order given."""
    head, end = _feed_head(name)
    out = [head]
    organizer = organizer_email()
    lines: dict[tuple, bytes] = {}
    bookings = list(bookings)
    for locale in sorted({b.locale for b in bookings}):
        with _locale(locale):
            out += [_feed_event(b, organizer, lines) for b in bookings if b.locale == locale]
    out.append(end)
    return b"".join(out)


def _feed_built(session: Session, owner: User | Organisation | Space, name: str) -> bytes:
    """feed_ics(feed_bookings(owner), name), byte for byte, with each event from this
    process's memory when it was made already.

    An event is a function of its booking's, unit's and space's rows, of the settings and
    of this module (FEED_FORMAT): the feed's rows are read as plain rows (2 queries) and
    each event is kept under their versions (_feed_rows). A feed read again after one of
    its bookings changed makes that one event again (its model objects loaded, 3 queries)
    and takes the others from memory."""
    rows, places, by_version = _feed_rows(session, owner)
    settings = (FEED_FORMAT, public_url(), organizer_email())
    keys: dict[int, tuple] = {}
    events: dict[int, bytes] = {}
    with _event_cache_lock:
        for row in rows:
            key = keys[row.id] = (settings, row.version, places.get(row.unit_id))
            if (event := _event_cache.get(key)) is not None:
                _event_cache.move_to_end(key)
                events[row.id] = event
    missing = [row.id for row in rows if row.id not in events]
    if missing:
        made = session.scalars(sa.select(Booking).where(Booking.id.in_(missing))
                               .options(selectinload(Booking.unit).selectinload(Unit.space))
                               .order_by(Booking.starts_at, Booking.id)).all()
        lines: dict[tuple, bytes] = {}
        for locale in sorted({b.locale for b in made}):
            with _locale(locale):
                for booking in (b for b in made if b.locale == locale):
                    events[booking.id] = _feed_event(booking, settings[2], lines)
                    _keep_event(keys[booking.id] if by_version else _values_key(settings, booking),
                                events[booking.id])
    head, end = _feed_head(name)
    out = [head]
    for locale in sorted({row.locale for row in rows}):
        out += [events[row.id] for row in rows if row.locale == locale and row.id in events]
    out.append(end)
    return b"".join(out)


class _FeedRow(NamedTuple):
    id: int
    unit_id: int
    locale: str
    version: tuple  # what the event is kept under (with its place's)


def _feed_rows(session: Session, owner: User | Organisation | Space
               ) -> tuple[list[_FeedRow], dict[int, tuple], bool]:
    """The feed's bookings in order, with each row's version, and each unit's place
    version (unit id -> the unit's and its space's). PostgreSQL: row versions (xmin, as
    in _FEED_LOOKUP_PG: new with every committed change, never back), so a key cannot
    come back either, and an event made from objects read after these rows may be kept
    under their versions (newer than its key, never older). Reading every column instead
    was half of a fresh feed's time. SQLite: all the columns (their values are the key; an
    event is kept under the values it was made from: a unit renamed back brings back its
    key). The third value says which (True: versions)."""
    order = (Booking.starts_at, Booking.id)
    by_version = session.get_bind().dialect.name == "postgresql"
    if by_version:
        rows = [_FeedRow(i, unit, locale, (i, version))
                for i, unit, locale, version in session.execute(
                    _feed_query(owner).with_only_columns(
                        Booking.id, Booking.unit_id, Booking.locale,
                        sa.literal_column("bookings.xmin::text", sa.Text)).order_by(*order))]
        columns: tuple = (Unit.id, sa.literal_column("units.xmin::text"),
                          sa.literal_column("spaces.xmin::text"))
    else:
        rows = [_FeedRow(row.id, row.unit_id, row.locale, _frozen_row(row))
                for row in session.execute(_feed_query(owner).with_only_columns(
                    *Booking.__table__.c).order_by(*order))]
        columns = (*Unit.__table__.c, *Space.__table__.c)
    places = {}
    if rows:
        width = 2 if by_version else len(Unit.__table__.c)
        for place in session.execute(sa.select(*columns)
                                     .join_from(Unit, Space, Unit.space_id == Space.id)
                                     .where(Unit.id.in_({row.unit_id for row in rows}))):
            places[place[0]] = (_frozen_row(place[1 if by_version else 0:width]),
                                _frozen_row(place[width:]))
    return rows, places, by_version


def _values_key(settings: tuple, booking: Booking) -> tuple:
    """SQLite: the key of an event made from these objects: the values it was made from
    (read after the rows: a change in between must not file it under the rows' older
    values, which a unit renamed back would bring back)."""
    unit = booking.unit
    return (settings, _model_row(booking), (_model_row(unit), _model_row(unit.space)))


_COLUMN_KEYS: dict[type, tuple[str, ...]] = {}


def _model_row(obj: object) -> tuple:
    """A model object's columns in its table's order: the row a plain SELECT of the
    table gives (the same values, through the same column types), as a dictionary key."""
    keys = _COLUMN_KEYS.get(type(obj))
    if keys is None:
        mapper = sa.inspect(type(obj))
        keys = _COLUMN_KEYS[type(obj)] = tuple(
            mapper.get_property_by_column(column).key for column in mapper.local_table.c)
    return _frozen_row(getattr(obj, key) for key in keys)


def _frozen_row(values: Iterable[object]) -> tuple:
    """A row as a dictionary key (lists and dicts of JSON columns as tuples)."""
    row = tuple(values)
    try:
        hash(row)
    except TypeError:
        return tuple(_frozen(v) for v in row)
    return row


EVENT_CACHE_BYTES = 32 * 2**20  # feed events kept in each process's memory
_event_cache: OrderedDict[tuple, bytes] = OrderedDict()
_event_cache_lock = threading.Lock()
_event_cache_size = [0]


def _keep_event(key: tuple, event: bytes) -> None:
    with _event_cache_lock:
        if key in _event_cache:
            return
        _event_cache[key] = event
        _event_cache_size[0] += len(event)
        while _event_cache_size[0] > EVENT_CACHE_BYTES and len(_event_cache) > 1:
            _, dropped = _event_cache.popitem(last=False)
            _event_cache_size[0] -= len(dropped)


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
            # mypy types a select() of one of several classes by their common base.
            return cast("User | Organisation | Space", found)
    return None


def feed_past() -> timedelta:
    """How far back a feed lists bookings (those that ended longer ago are left out):
    CALENDAR_FEED_PAST_DAYS of the app's config, FEED_PAST by default."""
    days = current_app.config.get("CALENDAR_FEED_PAST_DAYS") if has_app_context() else None
    return FEED_PAST if days is None else timedelta(days=int(days))


def feed_since() -> datetime:
    """The start of a feed's window: Tokyo's midnight feed_past() before today. The window
    moves once a day, so a feed's validator stays the same all day when nothing changes
    (part of it: feed_version), rather than reading when its oldest booking ends."""
    first = clock.today() - feed_past()
    return datetime(first.year, first.month, first.day, tzinfo=TOKYO).astimezone(UTC)


def _feed_query(owner: User | Organisation | Space) -> sa.Select:
    """The bookings of a feed: those holding seats that ended at or after feed_since()."""
    query = sa.select(Booking).where(Booking.status.in_(HOLDING_STATUSES),
                                     # A waitlist's offer is booked only once confirmed.
                                     Booking.status != BookingStatus.OFFERED,
                                     Booking.ends_at >= feed_since())
    if isinstance(owner, User):
        return query.where(Booking.user_id == owner.id)
    if isinstance(owner, Organisation):
        return query.where(Booking.company_id == owner.id)
    return query.join(Unit, Booking.unit_id == Unit.id).where(Unit.space_id == owner.id)


def feed_bookings(session: Session, owner: User | Organisation | Space) -> Sequence[Booking]:
    """Bookings a feed lists, with their unit and space (three queries in all; a feed
    has no ATTENDEE lines, so neither attendees nor users are loaded)."""
    query = (_feed_query(owner)
             .options(selectinload(Booking.unit).selectinload(Unit.space))
             .order_by(Booking.starts_at, Booking.id))
    return session.scalars(query).all()


def _frozen(value: object) -> object:
    """A column's value as a dictionary key (JSON columns hold lists and dicts)."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


# PostgreSQL: the feed's owner and its change log (models.FeedChange, written by the
# database's triggers on bookings) in one statement: the sum of the owner's weights, which
# every committed change of one of its bookings raises (an insert, an update, a delete,
# whichever code or server made it), and a digest of the (id, xmin) of the units the log
# names and of their spaces, whose text is in the feed: `xmin` is the id of the
# transaction that wrote a row's version, so any committed change of a row brings a value
# it never had. The owner's own xmin covers its name. A booking leaving the window without
# a write is covered by the window's start (feed_since) in the ETag. So the validator
# changes with every change and never comes back to an earlier value. `rows` and `units`
# tell when the log is worth compacting (_COMPACT_PG). Reading the feed's 1,000 bookings'
# xmins instead, which this replaced, took 0.86 ms where this takes 0.28.
_FEED_LOOKUP_PG = sa.text("""
WITH o AS (
    SELECT 'User' AS kind, id, xmin::text AS v FROM users WHERE calendar_secret = :secret
    UNION ALL
    SELECT 'Organisation', id, xmin::text FROM organisations WHERE calendar_secret = :secret
    UNION ALL
    SELECT 'Space', id, xmin::text FROM spaces WHERE calendar_secret = :secret
    LIMIT 1
)
SELECT o.kind, o.id, o.v, f.changes, f.places, f.rows, f.units FROM o CROSS JOIN LATERAL (
    SELECT sum(c.weight) AS changes, sum(c.n) AS rows, count(*) AS units,
        md5(string_agg(c.unit_id::text || ':' || u.xmin::text || ':' || s.xmin::text, ','
                       ORDER BY c.unit_id)) AS places
    FROM (SELECT unit_id, sum(weight) AS weight, count(*) AS n FROM feed_changes
          WHERE owner_kind = o.kind AND owner_id = o.id GROUP BY unit_id) c
    LEFT JOIN units u ON u.id = c.unit_id LEFT JOIN spaces s ON s.id = u.space_id
) f
""")
# An owner's rows into one per unit, their weights summed, in one statement (so the sum
# is the same before and after, for every reader). A compaction running at the same time
# finds the rows this one deleted gone and leaves them; rows written since are kept.
_COMPACT_PG = sa.text("""
WITH gone AS (
    DELETE FROM feed_changes WHERE owner_kind = :kind AND owner_id = :owner_id
    RETURNING unit_id, weight
)
INSERT INTO feed_changes (owner_kind, owner_id, unit_id, weight)
SELECT :kind, :owner_id, unit_id, sum(weight) FROM gone GROUP BY unit_id
""")
COMPACT_AFTER = 16  # log rows beyond one per unit before an owner's are compacted
# Every owner's rows at once: the daily job, for feeds nobody reads (see compact_changes).
# It answers how many rows the log lost (rows deleted less rows written back).
_COMPACT_ALL_PG = sa.text("""
WITH gone AS (
    DELETE FROM feed_changes WHERE (owner_kind, owner_id, unit_id) IN (
        SELECT owner_kind, owner_id, unit_id FROM feed_changes
        GROUP BY owner_kind, owner_id, unit_id HAVING count(*) > 1)
    RETURNING owner_kind, owner_id, unit_id, weight
), kept AS (
    INSERT INTO feed_changes (owner_kind, owner_id, unit_id, weight)
    SELECT owner_kind, owner_id, unit_id, sum(weight) FROM gone
    GROUP BY owner_kind, owner_id, unit_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM kept)
""")
COMPACTION_JOB = "feed_changes"


def compact_changes(session: Session) -> int:
    """The worker's job, once a Tokyo day (PostgreSQL): the feeds' change log compacted
    into one row per owner and unit, so that it grows with what was booked, not with
    every change of it (a feed that is read compacts its own rows as it goes: _COMPACT_PG).
    Returns how many rows the log lost."""
    if session.get_bind().dialect.name != "postgresql":
        return 0
    key = clock.today().isoformat()
    if jobs.claimed(session, COMPACTION_JOB, key):
        session.rollback()
        return 0
    if not jobs.claim(session, COMPACTION_JOB, key):
        return 0  # another worker has it
    lost = session.scalar(_COMPACT_ALL_PG) or 0
    jobs.finish(session, COMPACTION_JOB, key)
    return lost


_FEED_KINDS: dict[str, type[User] | type[Organisation] | type[Space]] = {
    "User": User, "Organisation": Organisation, "Space": Space}


def _digest_rows(session: Session, owner: User | Organisation | Space) -> str:
    """Elsewhere (SQLite): every column of the feed's bookings, units and spaces, hashed
    here (one query; SQLite has no row versions to ask for)."""
    found = session.execute(
        sa.select(*Booking.__table__.c, *Unit.__table__.c, *Space.__table__.c)
        .join_from(Booking, Unit, Booking.unit_id == Unit.id)
        .join(Space, Unit.space_id == Space.id)
        .where(Booking.id.in_(_feed_query(owner).with_only_columns(Booking.id)))
        .order_by(Booking.id)).all()
    return hashlib.sha256(repr([tuple(row) for row in found]).encode()).hexdigest()


@dataclass(frozen=True)
class FeedVersion:
    """A feed's owner and its validator (the weak ETag's value)."""

    model: type[User] | type[Organisation] | type[Space]
    owner_id: int
    etag: str
    owner: User | Organisation | Space | None = None  # when it was loaded already


def _etag(*parts: object) -> str:
    seen = repr((FEED_FORMAT, public_url(), organizer_email(), feed_since(), *parts))
    return hashlib.sha256(seen.encode()).hexdigest()[:32]


def feed_version(session: Session, secret: str) -> FeedVersion | None:
    """Whose feed this secret opens and the feed's validator, without building it; None
    when the secret opens none. PostgreSQL: one query (_FEED_LOOKUP_PG), and now and
    then a second that compacts the owner's change log. SQLite: the owner (owner_of), then
    all the feed's rows, hashed (_digest_rows).

    Exact, whichever app server asks: what the database holds now of the rows the feed is
    made of, the window's start, the settings in its text and this module's format.
    Clocks of app servers and the order in which transactions commit play no part (a
    maximum of updated_at, which this replaced, missed a change committed after a later
    one, or written by a server whose clock was behind). What it does not see: a new
    translation or a new version of this module's output; raise FEED_FORMAT then."""
    if len(secret) < 20:
        return None
    if session.get_bind().dialect.name == "postgresql":
        db.read_outside_a_transaction(session)
        row = session.execute(_FEED_LOOKUP_PG, {"secret": secret}).first()
        if row is None:
            return None
        kind, owner_id, version, changes, places, rows, units = row
        if rows is not None and rows - units > COMPACT_AFTER:
            session.execute(_COMPACT_PG, {"kind": kind, "owner_id": owner_id})
        return FeedVersion(_FEED_KINDS[kind], owner_id,
                           _etag(kind, owner_id, version, changes, places))
    owner = owner_of(session, secret)
    if owner is None:
        return None
    name = feed_name(owner, getattr(owner, "locale", "ja"))
    return FeedVersion(type(owner), owner.id,
                       _etag(type(owner).__name__, owner.id, name, _digest_rows(session, owner)),
                       owner)


_feed_cache: OrderedDict[str, bytes] = OrderedDict()  # ETag -> feed, most recent last
_feed_cache_lock = threading.Lock()


def feed_body(session: Session, found: FeedVersion) -> bytes:
    """The feed of this version: from this process's memory when it was built already
    (clients poll, and many never send If-None-Match), else built and kept, the least
    recently used feeds dropped beyond FEED_CACHE_BYTES.

    The body is read after its validator: a change committed in between makes it newer
    than its key, never older. On PostgreSQL that key never comes back (row versions only
    grow); on SQLite only a change undone to the very same values (updated_at included,
    to the microsecond) could bring it back."""
    with _feed_cache_lock:
        body = _feed_cache.get(found.etag)
        if body is not None:
            _feed_cache.move_to_end(found.etag)
            return body
    owner = found.owner or cast("User | Organisation | Space | None",
                                session.get(found.model, found.owner_id))
    if owner is None:  # deleted since: an empty feed, kept by nobody
        return feed_ics([], "")
    body = _feed_built(session, owner, feed_name(owner, getattr(owner, "locale", "ja")))
    with _feed_cache_lock:
        _feed_cache[found.etag] = body
        while sum(map(len, _feed_cache.values())) > FEED_CACHE_BYTES and len(_feed_cache) > 1:
            _feed_cache.popitem(last=False)
    return body


def feed_name(owner: User | Organisation | Space, locale: str = "ja") -> str:
    with _locale(locale):
        if isinstance(owner, User):
            return _("%(name)sさんの予約", name=owner.name)
        if isinstance(owner, Organisation):
            return _("%(name)sの予約", name=owner.display_name(locale))
        return _("%(name)sの予約一覧", name=owner.display_name(locale))
