"""Booking rules: book, change, cancel, check in. The one place that decides a booking.

Public functions (other services, the pages, the API and the operator console call these):

    book(session, unit, actor_user, periods, seats, *, slot=None, attendees=(), note="",
         locale="ja", idempotency=None, extras=None) -> list[Booking]
        Books `seats` of `unit` for each (start, end) of `periods` (one Booking per period,
        all or none) for actor_user's company. Build the periods with day_period(),
        hours_period() or nights_period(). `slot` books through a campaign slot (its price,
        its seats, its rules via campaign_rules.check_rules; the subsidy is stored). `extras`
        ({campaign extra id: quantity}) are lent with it (campaign_extras.reserve_extras).
        `idempotency` (key, request hash, answer builder): a repeat raises Replay with the
        first answer; the same key with another request is DomainError("idempotency_mismatch").
        Attendees only from a booker whose address is verified ("email_unverified"); never
        over the company's limits (services/limits.py, 429), counted under a company lock.
    change(session, booking, actor_user, *, seats=None, period=None) -> Booking
        New seats and/or times, checked exactly as a new booking would be; SEQUENCE + 1.
    cancel(session, booking, actor_user, *, reason="") -> Booking
        Frees the seats at once. A company may cancel until the unit's deadline
        (cancel_deadline_hours before the start); the space's operator and site admins may
        cancel on the customer's behalf at any time before the end (give a reason).
    check_in(session, booking, actor_user) -> Booking
        From the start of the booking's day (Asia/Tokyo) until its end; by the space's
        operator, a site admin, or the company itself.
    mark_no_show(session, booking, actor_user) -> Booking
        The operator's record that nobody came (after the start); the seats stay held.
    find(session, reference, user) -> Booking       (DomainError "not_yours" otherwise)
    visible_to(user) -> Select[Booking]              (mine and my company's)

Every function here decides in a transaction of its own (see booking.db.begin_write),
flushes on success and rolls back on any error; the caller's edge commits (in a request:
booking.unit_of_work). Errors are DomainError (booking.services.errors). Concurrency: competing bookings of
a unit are serialised by a row lock on the unit (PostgreSQL: SELECT … FOR UPDATE with a
lock_timeout; SQLite: the transaction begins IMMEDIATE); a lock wait that gives up becomes
DomainError("busy"). Availability comes only from booking.services.availability.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from itertools import pairwise

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from booking import clock
from booking.db import (
    as_flushed,
    begin_write,
    campaign_company_lock,
    company_lock,
    early_ids,
    insert_together,
    is_lock_timeout,
    next_ids,
)
from booking.formatting import hhmm
from booking.models import (
    NOT_MADE_STATUSES,
    AuditEntry,
    Booking,
    BookingAttendee,
    BookingSeries,
    BookingStatus,
    Campaign,
    CampaignSlot,
    IdempotencyRecord,
    Membership,
    Organisation,
    OutboxMessage,
    PricePer,
    Role,
    Space,
    Unit,
    UnitKind,
    User,
)
from booking.services import (
    access,
    addresses,
    audit,
    cancellation,
    limits,
    loads,
    pricing,
    space_members,
)
from booking.services.availability import (
    TOKYO,
    UnitTerms,
    at,
    regular_window,
    slot_window,
    timelines,
    tokyo_days,
)
from booking.services.campaign_extras import recheck_extras, reserve_extras
from booking.services.campaign_rules import check_rules
from booking.services.errors import DomainError
from booking.services.pricing import length_of  # re-exported: callers use reservations.length_of

Period = tuple[datetime, datetime]

MAX_SEATS = 200  # the API contract: seats between 1 and 200
MAX_ATTENDEES = 200
MAX_PERIODS = 62  # a set of days: about two months at most in one request
# Crockford-like alphabet without look-alikes (0/O, 1/I/L): easy to read out on the phone.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REFERENCE_LENGTH = 12  # 31^12 ≈ 7.9e17: not guessable


# --------------------------------------------------------------------------- periods


# A drop-in starts at the next whole five minutes at least a minute from now: a time people
# read as a time (11:05, not 11:02:37) in the mail, the calendar and the day list, still in
# the future when the booking is decided a moment later under the unit's lock (a lock wait
# gives up after seconds), and at most six minutes after the person asked.
DROP_IN_STEP = timedelta(minutes=5)
DROP_IN_MARGIN = timedelta(minutes=1)


# An hourly unit's day is offered as a grid of hours from the window's start (free_time's
# hour grid, search's free hours): the starts a person is shown.
HOUR_STEP = timedelta(hours=1)


def drop_in_start(now: datetime) -> datetime:
    """The earliest start a booking asked for at `now` gets (see DROP_IN_STEP)."""
    earliest = now + DROP_IN_MARGIN
    midnight = at(earliest.astimezone(TOKYO).date(), 0)
    steps = -(-(earliest - midnight) // DROP_IN_STEP)  # whole steps, rounded up
    return midnight + steps * DROP_IN_STEP


def first_start(now: datetime, opens: datetime, step: timedelta | None = None) -> datetime:
    """The one "today starts at" rule: the earliest start offered at `now` in a window that
    opens at `opens`. The window's start while the drop-in's (drop_in_start) is not past
    it; once it is, a day booking starts at the drop-in's start (step None: day_period),
    and an hourly unit's offer at the first start of its grid (opens + whole steps, e.g.
    HOUR_STEP) at or after it. The booking page, the free-time views and search ask
    this, so that none of them offers a start the others hide."""
    earliest = drop_in_start(now)
    if opens >= earliest:
        return opens
    if step is None:
        return earliest
    return opens + -(-(earliest - opens) // step) * step  # whole steps, rounded up


def day_period(unit: UnitTerms, day: date, slot: CampaignSlot | None = None, *,
               now: datetime | None = None) -> Period:
    """A day booking: the space's opening hours that day (or the slot's window in them).

    Today, once that window has begun, a drop-in: from drop_in_start(now) to the window's
    end, priced as any day booking (a day unit is priced per day, however much of the day
    is left); once too little of it is left, "closed" (or "campaign_closed" for a slot)
    saying that today's hours are over. A closed day gives the whole day (today: from
    now on), which the availability check then refuses as closed; a past day stays as it
    was, which the time check refuses as in the past."""
    window = slot_window(slot, day, unit) if slot is not None else regular_window(unit, day)
    start, end = window or (at(day, 0), at(day, 1440))
    moment = clock.now() if now is None else now
    if day < moment.astimezone(TOKYO).date():
        return start, end
    start = first_start(moment, start)
    if start >= end:  # today's hours are over (or nearly: less than the drop-in's step)
        code = "campaign_closed" if slot is not None and window is not None else "closed"
        raise DomainError(code, variant="today", date=day.isoformat())
    return start, end


def bookable_window(unit: UnitTerms, day: date, slot: CampaignSlot | None = None, *,
                    now: datetime | None = None) -> Period | None:
    """The period a day booking of `day` would hold if made now (day_period), or None
    when that day cannot be booked by the day: closed by its hours (or outside the slot),
    past, or today with its hours over. Today after opening it starts at the drop-in's
    start: the seats free then are min_free over this period. (Closures, seats and lead
    times are the timeline's and the booking's to decide.) For search and the free-time
    views, so that they offer what a booking would be given."""
    window = slot_window(slot, day, unit) if slot is not None else regular_window(unit, day)
    moment = clock.now() if now is None else now
    if window is None or day < moment.astimezone(TOKYO).date():
        return None
    try:
        return day_period(unit, day, slot, now=moment)
    except DomainError:
        return None


def hours_period(day: date, start_min: int, end_min: int) -> Period:
    """From start_min to end_min minutes after midnight of `day`, Asia/Tokyo."""
    return at(day, start_min), at(day, end_min)


def nights_period(unit: Unit, first_night: date, nights: int) -> Period:
    """A whole house: check-in on the first day, check-out the day after the last night."""
    return at(first_night, unit.checkin_min), at(first_night + timedelta(days=nights),
                                                 unit.checkout_min)


# --------------------------------------------------------------------------- idempotency


@dataclass
class Idempotency:
    """A client's retry key: the same key and request give the first answer again."""

    key: str
    request_hash: str
    # Builds the answer stored for replays from the bookings just made (status, body).
    respond: Callable[[list[Booking]], tuple[int, dict]]
    # That answer, built once inside the booking's transaction: the edge sends it too.
    answer: tuple[int, dict] | None = None


class Replay(Exception):  # not an error: the first answer, to send again
    def __init__(self, status_code: int, response: dict) -> None:
        super().__init__("replay")
        self.status_code = status_code
        self.response = response


def replay_if_seen(session: Session, user: User | int, idem: Idempotency | None) -> None:
    """Raise Replay with the first answer when this key was used by `user` (or that user
    id) already (and "idempotency_mismatch" when it was used for another request).

    Asked only when a request does not go through (it costs the booking that does no
    read): when it is refused (a DomainError, before or under the locks: a retry of a
    booking that took the last seat, or of a drop-in after closing, is not refused but
    answered as the first time), and when its IdempotencyRecord INSERT collides with the
    first request's (book() then rolls everything back and replays)."""
    if idem is None:
        return
    user_id = user if isinstance(user, int) else user.id
    record = session.scalar(sa.select(IdempotencyRecord).where(
        IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == idem.key))
    if record is None:
        return
    if record.request_hash != idem.request_hash:
        raise DomainError("idempotency_mismatch")
    raise Replay(record.status_code, record.response)


# --------------------------------------------------------------------------- permissions


def visible_to(user: User) -> sa.Select:
    """Bookings the user made, and all of the companies they are an admin of (a
    company's members see their own only; newest first)."""
    company_ids = sa.select(Membership.organisation_id).where(Membership.user_id == user.id,
                                                              Membership.role == Role.OWNER)
    return (
        sa.select(Booking)
        .where(sa.or_(Booking.user_id == user.id, Booking.company_id.in_(company_ids)))
        .options(selectinload(Booking.unit).selectinload(Unit.space),
                 selectinload(Booking.attendees))
        .order_by(Booking.starts_at.desc(), Booking.id.desc())
    )


def page_for(session: Session, user: User, *, status: str | None, page: int,
             per_page: int) -> tuple[int, list[Booking]]:
    """(how many in all, one page of them) of the user's bookings and their companies'."""
    query = visible_to(user).where(Booking.status.not_in(NOT_MADE_STATUSES))
    if status is not None:
        query = query.where(Booking.status == status)
    total = session.scalar(sa.select(sa.func.count()).select_from(
        query.order_by(None).options().subquery()))
    rows = list(session.scalars(query.offset((page - 1) * per_page).limit(per_page)))
    return total or 0, rows


def listed_for(session: Session, user: User, limit: int = 500) -> list[Booking]:
    """The user's bookings and their companies' (newest first), for their list. Waitlist
    offers are on the waitlist's page (services/waitlist.py), not here."""
    return list(session.scalars(visible_to(user).where(Booking.status.not_in(NOT_MADE_STATUSES))
                                .limit(limit)))


def find_all(session: Session, references: Iterable[str], user: User) -> list[Booking]:
    """The bookings of these references that `user` may see (the rest left out)."""
    found = []
    for reference in references:
        if reference:
            try:
                found.append(find(session, reference, user))
            except DomainError:
                continue
    return found


def find(session: Session, reference: str, user: User) -> Booking:
    """The booking with this reference if `user` may see it; "not_yours" (404) otherwise,
    so that a stranger cannot tell whether a reference exists."""
    booking = session.scalar(sa.select(Booking).where(Booking.reference == reference.upper()))
    if booking is None:
        raise DomainError("not_yours")
    access.require(user, "view", booking)
    return booking


# --------------------------------------------------------------------------- helpers


def new_reference() -> str:
    """Random, not sequential. 31^12 values: a collision is not worth a query inside the
    lock; the unique constraint would still refuse one."""
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


def clean_attendees(emails: Iterable[str]) -> list[str]:
    """The attendees' addresses in the one form of booking.services.addresses (blank
    entries skipped, duplicates once); a bad one is "bad_email" naming it."""
    seen: list[str] = []
    for raw in emails:
        if not (raw or "").strip():
            continue
        email = addresses.normalise(raw)
        if email not in seen:
            seen.append(email)
    if len(seen) > MAX_ATTENDEES:
        raise DomainError("too_many_attendees", limit=MAX_ATTENDEES)
    return seen


def _lock_unit(session: Session, unit_id: int) -> Unit:
    """Lock the unit a booking consumes, before anything is counted, and read it afresh.

    Two statements: first the unit's space with its organisation and opening hours, which
    the decision reads; then the unit row, locked (PostgreSQL: SELECT … FOR UPDATE OF
    units, waiting at most the lock_timeout set by begin_write; SQLite: the IMMEDIATE
    transaction is the lock; a built but unexecuted lock would lock nothing: this one is
    executed). The space is read before the lock, not with it: PostgreSQL reads a locking
    statement's other tables as they were when it began, before it waited for the lock,
    so they are no fresher that way, and turning their rows into objects under the lock
    kept every booking of a busy unit waiting half a millisecond longer. Only the unit
    row is locked: bookings of other units of the same space do not wait. The lock is held
    until the edge commits, whether or not the row is written: a new booking does not
    write it (its INSERT is the record of the decision; nothing reads lock_version), a
    change and the waitlist still bump its lock_version (_bump_unit).
    """
    unit, _has_slots = _read_and_lock(session, unit_id, slots=False)
    return unit


class SlotMayApply(Exception):  # not an error: the way back to choosing a slot
    """book() of a unit given by its id found, under the lock, a campaign slot on the unit
    that has not ended: a slot might be chosen for the request, which must be done (with
    its lock, taken before the unit's) before the unit is locked. Nothing was written;
    the caller (booking_requests.place) chooses the slot and books again."""


def _lock_unit_without_slots(session: Session, unit_id: int) -> Unit:
    """_lock_unit, its locking statement asking too whether any campaign slot on the unit
    has not ended (offered or not: a superset of what resolve_slot could choose);
    SlotMayApply when one has."""
    unit, has_slots = _read_and_lock(session, unit_id, slots=True)
    if has_slots:
        raise SlotMayApply
    return unit


def _read_and_lock(session: Session, unit_id: int, *, slots: bool) -> tuple[Unit, bool]:
    space = session.scalars(_space_statement(), {"unit_id": unit_id}).unique().one_or_none()
    row = session.execute(_lock_statement(slots),
                          {"unit_id": unit_id, "today": clock.today()}).one_or_none()
    if row is None or space is None:
        raise DomainError("unavailable")
    loads.note_locked(session, [unit_id])  # its loads are recounted under this lock
    unit = row[0]
    # The space just read, from the session (a many-to-one by key: no statement), unless
    # the unit moved to another space in between, which its lazy load then reads.
    unit.space  # noqa: B018
    return unit, bool(slots and row[1])


@cache
def _space_statement() -> sa.Select:
    """_lock_unit's read of the space of the unit `:unit_id`, with its organisation and
    opening hours, built once (its loader options took a millisecond and more to build)."""
    return (sa.select(Space)
            .where(Space.id == sa.select(Unit.space_id)
                   .where(Unit.id == sa.bindparam("unit_id")).scalar_subquery())
            .options(joinedload(Space.organisation), joinedload(Space.opening_hours))
            .execution_options(populate_existing=True))


@cache
def _lock_statement(slots: bool = False) -> sa.Select:
    """_lock_unit's SELECT … FOR UPDATE of the unit `:unit_id`, built once; `slots`: with
    whether a campaign slot on it ends on `:today` or later (an index probe of
    campaign_slots by unit)."""
    columns: list = [Unit]
    if slots:
        columns.append(sa.select(CampaignSlot.id).where(
            CampaignSlot.unit_id == Unit.id,
            CampaignSlot.end_date >= sa.bindparam("today", type_=sa.Date)).exists())
    return (sa.select(*columns).where(Unit.id == sa.bindparam("unit_id"))
            .with_for_update(of=Unit)
            .execution_options(populate_existing=True))  # what the lock holder sees


def _bump_unit(session: Session, unit_id: int) -> None:
    """Record the decision on the locked row (only when something was booked or changed:
    a refusal writes nothing and releases the lock sooner)."""
    session.execute(sa.update(Unit).where(Unit.id == unit_id)
                    .values(lock_version=Unit.lock_version + 1)
                    .execution_options(catalogue_unchanged=True))


def _bookable(unit: Unit) -> None:
    if not unit.space.is_public:
        raise DomainError("unavailable")


def _usable_slot(session: Session, slot_id: int, campaign_id: int, unit: Unit) -> CampaignSlot:
    """The slot as the locks see it: still on this unit, in the campaign whose lock was
    taken, and offered (CampaignSlot.is_offered)."""
    slot = session.scalar(
        sa.select(CampaignSlot).where(CampaignSlot.id == slot_id)
        .options(selectinload(CampaignSlot.campaign).selectinload(Campaign.organisation))
        .execution_options(populate_existing=True)
    )
    if (slot is None or slot.unit_id != unit.id or slot.campaign_id != campaign_id
            or not slot.is_offered):
        raise DomainError("campaign_closed")
    return slot


def validate_shape(unit: Unit, periods: Sequence[Period], seats: int,
                    attendees: Sequence[str]) -> None:
    if not isinstance(seats, int) or seats < 1 or seats > MAX_SEATS:
        raise DomainError("bad_seats", minimum=1, maximum=MAX_SEATS)
    if unit.kind != UnitKind.DESK and seats != 1:
        raise DomainError("whole_unit")
    if not periods or len(periods) > MAX_PERIODS:
        raise DomainError("bad_dates")
    for start, end in periods:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("aware datetimes only")
        if start >= end:
            raise DomainError("bad_range")
    ordered = sorted(periods)
    for (_s1, e1), (s2, _e2) in pairwise(ordered):
        if s2 < e1:  # the periods of one request must not overlap each other
            raise DomainError("bad_range")
    limit = seats if unit.kind == UnitKind.DESK else unit.fits_people
    if len(attendees) > limit:
        raise DomainError("too_many_attendees", limit=limit)
    _whole_stays(unit, periods)


def _whole_stays(unit: Unit, periods: Sequence[Period]) -> None:
    """A unit let by the night takes stays only: in at its check-in time, out at its
    check-out time one or more days later (nights_period). Any other shape (a day's
    opening hours, midnight to midnight) would hold nights that nobody pays for."""
    if unit.price_per != PricePer.NIGHT:
        return
    for start, end in periods:
        first, last = start.astimezone(TOKYO).date(), end.astimezone(TOKYO).date()
        if last <= first or (start, end) != nights_period(unit, first, (last - first).days):
            raise DomainError("whole_stays", checkin=hhmm(unit.checkin_min),
                              checkout=hhmm(unit.checkout_min))


def _within_horizon(unit: Unit, periods: Sequence[Period]) -> None:
    """A booking starts at most unit.max_days_ahead days after today (Tokyo)."""
    latest = clock.today() + timedelta(days=unit.max_days_ahead)
    if any(start.astimezone(TOKYO).date() > latest for start, _end in periods):
        raise DomainError("too_far_ahead", max_days_ahead=unit.max_days_ahead,
                          latest=latest.isoformat())


def _check_times(unit: Unit, periods: Sequence[Period], each: bool = False) -> None:
    """In the future, after the lead time, within the horizon, and of the unit's minimum
    to maximum length: the periods' total (one stay of several days), or `each` period
    on its own (the dates of a recurring series: every Wednesday 2 hours is 2 hours)."""
    _within_horizon(unit, periods)
    now = clock.now()
    for start, _end in periods:
        if start <= now:
            raise DomainError("in_past")
        if start < now + timedelta(hours=unit.lead_time_hours):
            raise DomainError("lead_time", hours=unit.lead_time_hours)
    lengths = [length_of(unit, s, e) for s, e in periods]
    for length in (lengths if each else [sum(lengths)]):
        if length < unit.min_length:
            raise DomainError("too_short", minimum=unit.min_length, per=unit.price_per.value)
        if length > unit.max_length:
            raise DomainError("too_long", maximum=unit.max_length, per=unit.price_per.value)


def _why_refused(unit: Unit, slot: CampaignSlot | None, start: datetime, end: datetime,
                 free: int, member: bool = False) -> DomainError:
    """The clearest reason a period cannot be booked (closed, hours, or seats)."""
    windows: list[Period] = []
    for day in tokyo_days(start, end):
        if any(c.start_date <= day <= c.end_date for c in unit.closures):
            return DomainError("closed", date=day.isoformat())
        regular = regular_window(unit, day)
        if regular is None:
            return DomainError("closed", date=day.isoformat())
        window = slot_window(slot, day) if slot is not None else regular
        if window is None:
            return DomainError("campaign_closed", date=day.isoformat())
        windows.append(window)
    covered = start
    for w0, w1 in sorted(windows):
        if w0 > covered:
            break
        covered = max(covered, w1)
    if covered < end:
        return DomainError("campaign_closed" if slot is not None else "outside_hours")
    if slot is None and unit.members_only and not member:
        return DomainError("members_only")
    if unit.kind != UnitKind.DESK:  # let whole: the hour or day is taken
        field = "start_time" if unit.price_per == PricePer.HOUR else "first_date"
        return DomainError("not_enough_seats", field=field, variant="whole", available=free)
    return DomainError("not_enough_seats", available=free)


def _is_member(session: Session, unit: Unit, company_id: int | None, email: str | None) -> bool:
    """Books this members-only unit without a campaign slot (services/space_members.py)."""
    return unit.members_only and space_members.admits(session, unit.space_id, company_id, email)


def _check_availability(session: Session, unit: Unit, slot: CampaignSlot | None,
                        periods: Sequence[Period], seats: int,
                        exclude_booking_id: int | None = None, member: bool = False,
                        note_loads: bool = False) -> None:
    """Every period has `seats` free for this request. A members-only unit takes a
    campaign slot's booking, or a member's (`member`: _is_member).

    `note_loads` (a new booking, under the unit's lock): the bookings are read for the
    whole Tokyo days of the periods and handed to the unit loads (loads.note_held), which
    then recount those days from them and the new bookings, without reading them again."""
    if slot is None and unit.members_only and not member:
        raise DomainError("members_only")
    start = min(s for s, _ in periods)
    end = max(e for _, e in periods)
    if note_loads:
        days = tokyo_days(start, end)
        start, end = at(days[0], 0), at(days[-1], 1440)
    line = timelines(session, [unit], start, end, exclude_booking_id=exclude_booking_id)[unit.id]
    if note_loads:
        loads.note_held(session, unit, days,
                        [(b.starts_at, b.ends_at, b.seats) for b in line.held])
    for s, e in periods:
        free = line.min_free(s, e, slot.id if slot is not None else None)
        if free < seats:
            raise _why_refused(unit, slot, s, e, free, member)


def _price(unit: Unit, slot: CampaignSlot | None, start: datetime, end: datetime,
           seats: int) -> tuple[int, int]:
    """(what the company pays, what the municipality pays): services/pricing.py's quote."""
    quoted = pricing.quote(unit, slot, start, end, seats)
    return quoted.company_pays, quoted.subsidy


def _set_attendees(booking: Booking, emails: Sequence[str]) -> None:
    """The booking's attendees become `emails`; those kept keep their rows (a new row for
    the same address would be inserted before the old one is deleted: a unique clash)."""
    kept = {a.email: a for a in booking.attendees}
    booking.attendees = [kept.get(e) or BookingAttendee(email=e) for e in emails]


def _decide(session: Session, work: Callable[[], object], lock: tuple[int, int] | None = None,
            company: int | None = None):
    """Run `work` in the booking transaction (begun with `lock` and `company`, see
    booking.db.begin_write) and flush it: the request's edge commits it (the locks are
    held until then). On any error, roll back (releasing the locks) and re-raise."""
    try:
        begin_write(session, lock, company)
        result = work()
        session.flush()
        return result
    except (DomainError, Replay):
        session.rollback()
        raise
    except sa.exc.DBAPIError as error:
        session.rollback()
        if is_lock_timeout(error):
            raise DomainError("busy") from None
        raise
    except BaseException:
        session.rollback()
        raise


# --------------------------------------------------------------------------- book


def book(session: Session, unit: Unit | int, actor_user: User,
         periods: Sequence[Period] | Callable[[Unit], Sequence[Period]], seats: int,
         *, slot: CampaignSlot | None = None, attendees: Iterable[str] = (), note: str = "",
         locale: str = "ja", idempotency: Idempotency | None = None,
         extras: dict[int, int] | None = None, series: BookingSeries | None = None
         ) -> list[Booking]:
    """Book `seats` of `unit` for every period (all or none); see the module docstring.
    `extras` ({campaign extra id: quantity}) are lent with each booking of a campaign slot.
    `series` (new, not yet added to the session) is saved in the same transaction and
    every booking is one of its dates: each period then has the unit's length limits on
    its own, and the series' one mail (services/series.py) replaces each confirmation.

    `unit` may be just its id, with `periods` a function of the unit as locked (no slot,
    no series): the unit is then read once, by its lock, and never before it; a unit with
    a campaign slot that has not ended raises SlotMayApply (booking_requests.place)."""
    user_id = actor_user.id
    try:
        return _book(session, unit, actor_user, periods, seats, slot=slot, attendees=attendees,
                     note=note, locale=locale, idempotency=idempotency, extras=extras,
                     series=series)
    except DomainError:
        # A retry of a request that went through is answered as the first time, even
        # when it would now be refused (the seats it took, the clock).
        replay_if_seen(session, user_id, idempotency)
        raise
    except sa.exc.IntegrityError:
        # Only the idempotency key can collide here: the same key, committed first by
        # another request (on this unit after its lock, or on another unit meanwhile).
        replay_if_seen(session, user_id, idempotency)
        raise


def _book(session: Session, unit: Unit | int, actor_user: User,
          periods: Sequence[Period] | Callable[[Unit], Sequence[Period]], seats: int,
          *, slot: CampaignSlot | None, attendees: Iterable[str], note: str, locale: str,
          idempotency: Idempotency | None, extras: dict[int, int] | None,
          series: BookingSeries | None) -> list[Booking]:
    from booking.services import mail

    emails = clean_attendees(attendees)
    if actor_user.email_verified_at is None and any(e != actor_user.email for e in emails):
        raise DomainError("email_unverified")  # books for itself only until verified
    by_id = isinstance(unit, int)
    if by_id and (slot is not None or series is not None):
        raise ValueError("a unit given by its id books without a slot or a series")
    asked = periods if callable(periods) else None
    if not isinstance(unit, int):
        periods = sorted(periods)  # type: ignore[arg-type]  # a sequence when unit is one
        validate_shape(unit, periods, seats, emails)
    company = actor_user.company
    if company is None:
        raise DomainError("no_company")
    unit_id = unit if isinstance(unit, int) else unit.id
    user_id, company_id = actor_user.id, company.id
    # What the mails say of the booker and their company, as the request loaded them:
    # beginning the booking's transaction expires every object read before it.
    booker = (actor_user.email, actor_user.name)
    company_names = (company.name, company.name_en)
    member_email = space_members.member_email(actor_user)
    # The operator members told of the booking (their notices' recipients), read before the
    # lock: who they are decides nothing here, and the unit is held the shorter.
    operator_id = (sa.select(Space.organisation_id).join(Unit, Unit.space_id == Space.id)
                   .where(Unit.id == unit_id).scalar_subquery()
                   if isinstance(unit, int) else unit.space.organisation_id)
    operators = ([(u.email, u.name, u.locale) for u in mail.operator_recipients(
                    session, operator_id=operator_id)]
                 if series is None else None)  # a series' one mail reads its own
    slot_id = slot.id if slot is not None else None
    campaign_id = slot.campaign_id if slot is not None else None
    # A campaign's rules count the company's bookings on every unit of the campaign: they
    # are decided under a lock per (campaign, company), taken before the unit lock.
    lock = campaign_company_lock(campaign_id, company_id) if campaign_id is not None else None
    # The company's limits count its bookings on every unit: under a lock per company,
    # taken first of all (services/limits.py).
    per_company = company_lock(company_id) if limits.enabled() else None
    # The new bookings' ids before the unit's lock where the database allows (one for a
    # unit given by its id: its periods are known under the lock; the rest there).
    ids = early_ids(session, Booking, 1 if callable(periods) else len(periods))

    def work() -> list[Booking]:
        nonlocal periods
        if asked is None:
            locked_unit = _lock_unit(session, unit_id)
        else:  # by id: the request's periods, of the unit as locked
            locked_unit = _lock_unit_without_slots(session, unit_id)
            _bookable(locked_unit)
            periods = sorted(asked(locked_unit))
            validate_shape(locked_unit, periods, seats, emails)
        assert not callable(periods)
        limits.check(session, company_id, bookings=len(periods),
                     invitations=limits.invitations_of(len(periods), len(emails)))
        _bookable(locked_unit)
        the_slot = (_usable_slot(session, slot_id, campaign_id, locked_unit)
                    if slot_id is not None and campaign_id is not None else None)
        _check_times(locked_unit, periods, each=series is not None)
        member = the_slot is None and _is_member(session, locked_unit, company_id, member_email)
        _check_availability(session, locked_unit, the_slot, periods, seats, member=member,
                            note_loads=True)
        if series is not None:
            session.add(series)
            session.flush()
        # Only the campaign rules need the company row (one query less otherwise).
        company_row = session.get(Organisation, company_id) if the_slot is not None else None
        made: list[Booking] = []
        # What goes with the bookings (their rows, audit entries, mails, unit loads and the
        # idempotency record): inserted together at the end, in one round trip under the
        # lock. A campaign's rules count the bookings made before, and extras are lent to
        # a stored booking: those bookings are inserted as they are made.
        ids.extend(next_ids(session, Booking, len(periods) - len(ids)))
        insert_now = the_slot is not None or bool(extras)
        rows: list[dict] = []
        entries: list[dict] = []
        mails: list[dict] = []
        for (start, end), booking_id in zip(periods, ids, strict=True):
            if the_slot is not None and company_row is not None:
                check_rules(session, the_slot, company_row, start, end, seats)
            price, subsidy = _price(locked_unit, the_slot, start, end, seats)
            booking = Booking(
                id=booking_id, reference=new_reference(), unit_id=unit_id,
                company_id=company_id, user_id=user_id,
                campaign_slot_id=the_slot.id if the_slot else None,
                series_id=series.id if series is not None else None, starts_at=start,
                ends_at=end, seats=seats, price_amount=price,
                subsidy_amount=subsidy, status=BookingStatus.CONFIRMED, sequence=0,
                locale=locale if locale in ("ja", "en") else "ja", note=(note or "")[:500],
            )
            row = as_flushed(session, booking)
            if insert_now:
                insert_together(session, [(Booking, [row])])
            else:
                rows.append(row)
            loads.note_added(session, booking)
            # Flushed after the booking's row is in (the flush that ends _decide, or
            # reserve_extras'): no query until then flushes them (no_autoflush below).
            # Its collection is empty (as_flushed): extended, not replaced by
            # _set_attendees, whose assignment cost 0.8 ms a booking under the lock
            # (bench.booking_server_time, 6 x 200: p50 9.21 -> 10.08 ms).
            booking.attendees.extend(BookingAttendee(email=e) for e in emails)
            if extras:
                reserve_extras(session, booking, extras)
            entries.append(audit.entry(
                user_id, "booking.create", booking, locked_unit.space.organisation_id,
                reference=booking.reference, seats=seats, start=start.isoformat(),
                price=price, subsidy=subsidy))
            mails += mail.confirmation_rows(session, booking, booker=booker,
                                            company=company_names, operators=operators)
            made.append(booking)
        if series is not None:  # what its answer lists, before the bookings' rows are in
            set_committed_value(series, "bookings", list(made))
        records: list[dict] = []
        if idempotency is not None:
            # The answer, built once here: stored for replays and sent by the edge.
            idempotency.answer = status, body = idempotency.respond(made)
            records.append({"user_id": user_id, "key": idempotency.key,
                            "request_hash": idempotency.request_hash,
                            "status_code": status, "response": body})
        insert_together(session, [(Booking, rows), loads.unwritten(session),
                                  (AuditEntry, entries), (OutboxMessage, mails),
                                  (IdempotencyRecord, records)])
        return made

    def work_without_autoflush() -> list[Booking]:
        with session.no_autoflush:
            return work()

    return _decide(session, work_without_autoflush, lock, per_company)


# --------------------------------------------------------------------------- status

_CONFIRMED = frozenset({BookingStatus.CONFIRMED})
_HELD = frozenset({BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN, BookingStatus.NO_SHOW})

# The one table of a booking's status changes: action -> (statuses it may start from, the
# status it leaves). `_transition` applies a row with the status it read in the UPDATE's
# WHERE clause, so that of two racing changes only the first takes effect and the other is
# refused, with nothing changed (PostgreSQL re-reads the row it waited for; SQLite runs one
# writer at a time). The loads hook (services/loads.py) locks the booking's unit before the
# UPDATE, so the unit's loads are recounted one change after the other.
TRANSITIONS: dict[str, tuple[frozenset[BookingStatus], BookingStatus]] = {
    "change": (_CONFIRMED, BookingStatus.CONFIRMED),  # new seats or times
    "check_in": (_CONFIRMED, BookingStatus.CHECKED_IN),
    "no_show": (_CONFIRMED, BookingStatus.NO_SHOW),
    # A seat not checked in within the unit's release time, given back by the worker
    # (services/no_shows.py).
    "release": (_CONFIRMED, BookingStatus.RELEASED),
    # A waitlist offer (services/waitlist.py): confirmed by its company, or expired.
    "confirm_offer": (frozenset({BookingStatus.OFFERED}), BookingStatus.CONFIRMED),
    "expire_offer": (frozenset({BookingStatus.OFFERED}), BookingStatus.EXPIRED),
    "cancel": (_CONFIRMED, BookingStatus.CANCELLED),  # by the customer, before the deadline
    # By the space's operator or a site admin, at any time before the end.
    "cancel_on_behalf": (_HELD, BookingStatus.CANCELLED),
}


def _reread(session: Session, booking_id: int) -> Booking:
    """The booking as the transaction sees it now (not the session's copy)."""
    current = session.get(Booking, booking_id, populate_existing=True)
    if current is None:
        raise DomainError("not_yours")
    return current


def _refusal(status: BookingStatus | None) -> DomainError:
    """Why a booking in `status` cannot take the change asked (409)."""
    if status == BookingStatus.RELEASED:  # the no-show rule gave its seats back
        return DomainError("released")
    return DomainError("already_cancelled" if status == BookingStatus.CANCELLED
                       else "bad_status")


def _may(current: Booking, action: str) -> None:
    if current.status not in TRANSITIONS[action][0]:
        raise _refusal(current.status)


def _transition(session: Session, current: Booking, action: str, **values) -> Booking:
    """Move `current` (as read in this transaction) by `action` of TRANSITIONS, writing
    `values` with it, in one UPDATE guarded by the status read. A booking that another
    request changed meanwhile is refused (already_cancelled or bad_status, 409) and left
    as that request left it. Returns `current`, reread."""
    _may(current, action)
    now = clock.now()
    done = session.execute(
        sa.update(Booking)
        .where(Booking.id == current.id, Booking.status == current.status)
        .values(status=TRANSITIONS[action][1], updated_at=now, **values)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]  # a CursorResult for an UPDATE
    if done != 1:  # lost a race: say why, as the winner left it
        raise _refusal(session.scalar(sa.select(Booking.status).where(Booking.id == current.id)))
    session.refresh(current)
    return current


# --------------------------------------------------------------------------- change


def change(session: Session, booking: Booking, actor_user: User, *, seats: int | None = None,
           period: Period | None = None, attendees: Iterable[str] | None = None) -> Booking:
    """New seats, period and/or attendees, re-checked as a new booking; SEQUENCE + 1.
    Attendees no longer invited are sent the cancellation."""
    from booking.services import mail, waitlist

    booking_id, unit_id = booking.id, booking.unit_id  # a booking never moves to another unit
    access.require(actor_user, "manage", booking)
    new_seats = booking.seats if seats is None else seats
    start, end = period if period is not None else (booking.starts_at, booking.ends_at)
    before_emails = [a.email for a in booking.attendees]
    emails = clean_attendees(attendees) if attendees is not None else before_emails
    if (new_seats == booking.seats and (start, end) == (booking.starts_at, booking.ends_at)
            and emails == before_emails):
        raise DomainError("no_change")
    if emails != before_emails and actor_user.email_verified_at is None and any(
            e != actor_user.email for e in emails):
        raise DomainError("email_unverified")
    validate_shape(booking.unit, [(start, end)], new_seats, emails)
    if booking.series_id is not None and (start.astimezone(TOKYO).date()
                                          != booking.starts_at.astimezone(TOKYO).date()):
        # A date of a recurring series is known to calendars by its date (RECURRENCE-ID):
        # moved to another day it would no longer match its place in the series.
        raise DomainError("series_date_fixed", field="first_date")
    operator = access.allowed(actor_user, "operate", booking)
    slot_id = booking.campaign_slot_id
    campaign_id = booking.campaign_slot.campaign_id if booking.campaign_slot is not None else None
    # The campaign's rules are decided as for a new booking: under the (campaign, company)
    # lock, taken before the unit lock.
    lock = (campaign_company_lock(campaign_id, booking.company_id)
            if campaign_id is not None and booking.company_id is not None else None)

    def work() -> Booking:
        unit = _lock_unit(session, unit_id)
        current = _reread(session, booking_id)  # as locked
        _may(current, "change")
        if not operator:
            _before_deadline(current)
        _bookable(unit)
        slot = (_usable_slot(session, slot_id, campaign_id, unit)
                if slot_id is not None and campaign_id is not None else None)
        _check_times(unit, [(start, end)])
        member = (slot is None and unit.members_only  # reads the booker only then
                  and _is_member(session, unit, current.company_id,
                                 space_members.member_email(current.user)))
        _check_availability(session, unit, slot, [(start, end)], new_seats,
                            exclude_booking_id=current.id, member=member)
        if slot is not None and current.company is not None:
            check_rules(session, slot, current.company, start, end, new_seats,
                        exclude_booking_id=current.id)
        _bump_unit(session, unit_id)
        price, subsidy = _price(unit, slot, start, end, new_seats)
        before = (current.seats, current.starts_at.isoformat(), current.ends_at.isoformat())
        before_seats, before_period = current.seats, (current.starts_at, current.ends_at)
        _transition(session, current, "change", seats=new_seats, starts_at=start, ends_at=end,
                    price_amount=price, subsidy_amount=subsidy,
                    sequence=Booking.sequence + 1)
        uninvited = [e for e in before_emails if e not in emails]
        if emails != before_emails:
            _set_attendees(current, emails)
        recheck_extras(session, current)  # lent extras must be there for the new times too
        audit.record(session, actor_user, "booking.change", current,
                     unit.space.organisation_id, reference=current.reference,
                     before=before, seats=new_seats, start=start.isoformat())
        mail.enqueue_update(session, current)
        if uninvited:
            mail.enqueue_uninvited(session, current, uninvited)
        if new_seats < before_seats or (start, end) != before_period:
            # Fewer seats or other times: what it held before may go to the waitlist.
            waitlist.offer_freed(session, unit_id, *before_period)
        return current

    return _decide(session, work, lock)


# --------------------------------------------------------------------------- cancel


def _before_deadline(booking: Booking) -> None:
    # The one deadline rule (cancellation.deadline_of / has_passed): the booking page
    # offers a button exactly when this would let it through.
    deadline = cancellation.deadline_of(booking.unit, booking.starts_at)
    if cancellation.has_passed(deadline):
        raise DomainError("cancel_deadline", deadline=deadline.astimezone(TOKYO).isoformat())


def may_cancel_on_behalf(booking: Booking, now: datetime) -> bool:
    """The space's operator (or a site admin) cancels for the customer: a booking still
    held (confirmed, checked in or marked no-show) until its end; the day list offers
    the action exactly then."""
    return booking.status in TRANSITIONS["cancel_on_behalf"][0] and now < booking.ends_at


def cancel(session: Session, booking: Booking, actor_user: User, *, reason: str = "") -> Booking:
    """Cancel and free the seats at once; sends METHOD:CANCEL to everyone invited."""
    from booking.services import mail, waitlist

    booking_id = booking.id
    access.require(actor_user, "manage", booking)
    operator = access.allowed(actor_user, "operate", booking)

    def work() -> Booking:
        current = _reread(session, booking_id)
        action = "cancel_on_behalf" if operator else "cancel"
        _may(current, action)
        if not operator:
            _before_deadline(current)
        elif not may_cancel_on_behalf(current, clock.now()):
            raise DomainError("bad_status")
        _transition(session, current, action, cancelled_at=clock.now(),
                    cancel_reason=(reason or "")[:500], sequence=Booking.sequence + 1)
        audit.record(session, actor_user, "booking.cancel", current,
                     current.unit.space.organisation_id, reference=current.reference,
                     reason=reason or "", on_behalf=operator and current.user_id != actor_user.id)
        mail.enqueue_cancellation(session, current)
        # The seats it held go to the unit's waitlist, in this transaction.
        waitlist.offer_freed(session, current.unit_id, current.starts_at, current.ends_at)
        return current

    return _decide(session, work)


# --------------------------------------------------------------------------- check-in


def may_check_in(booking: Booking, now: datetime) -> bool:
    """Arrival is recorded from the start of the booking's Tokyo day until its end."""
    opens = at(booking.starts_at.astimezone(TOKYO).date(), 0)
    return booking.status == BookingStatus.CONFIRMED and opens <= now < booking.ends_at


def may_mark_no_show(booking: Booking, now: datetime) -> bool:
    """Nobody came: once the booking has begun."""
    return booking.status == BookingStatus.CONFIRMED and now >= booking.starts_at


def check_in(session: Session, booking: Booking, actor_user: User) -> Booking:
    """Record arrival: from the start of the booking's Tokyo day until its end."""
    booking_id = booking.id
    access.require(actor_user, "manage", booking)

    def work() -> Booking:
        current = _reread(session, booking_id)
        _may(current, "check_in")
        now = clock.now()
        if not may_check_in(current, now):
            raise DomainError("not_checkin_time")
        _transition(session, current, "check_in", checked_in_at=now)
        audit.record(session, actor_user, "booking.check_in", current,
                     current.unit.space.organisation_id, reference=current.reference)
        return current

    return _decide(session, work)


def mark_no_show(session: Session, booking: Booking, actor_user: User) -> Booking:
    """The operator records that nobody came (only after the start)."""
    booking_id = booking.id
    access.require(actor_user, "operate", booking)

    def work() -> Booking:
        current = _reread(session, booking_id)
        _may(current, "no_show")
        if not may_mark_no_show(current, clock.now()):
            raise DomainError("bad_status")
        _transition(session, current, "no_show")
        audit.record(session, actor_user, "booking.no_show", current,
                     current.unit.space.organisation_id, reference=current.reference)
        return current

    return _decide(session, work)
